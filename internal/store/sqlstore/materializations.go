package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

type materializations struct{ *tx }

func (s materializations) Put(ctx context.Context, m *domain.Materialization) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, `INSERT INTO materializations (realization, state, reason, generation, waiting_since, suspect, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (realization) DO UPDATE SET state = excluded.state, reason = excluded.reason, generation = excluded.generation,
			waiting_since = excluded.waiting_since, suspect = excluded.suspect, updated_at = excluded.updated_at`,
			m.Realization, m.State, m.Reason, m.Generation, micros(m.WaitingSince), m.Suspect, micros(m.UpdatedAt))
		return err
	})
	if err != nil && s.f.foreignKey(err) {
		return domain.NotFound("realization %q not found", m.Realization)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: put materialization: %w", err)
	}
	return nil
}

func (s materializations) Get(ctx context.Context, realization string) (*domain.Materialization, error) {
	m := domain.Materialization{Realization: realization}
	var waiting, updated int64
	err := s.queryRow(ctx, "SELECT state, reason, generation, waiting_since, suspect, updated_at FROM materializations WHERE realization = ?", realization).
		Scan(&m.State, &m.Reason, &m.Generation, &waiting, &m.Suspect, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("realization %q has no materialization", realization)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get materialization: %w", err)
	}
	m.WaitingSince, m.UpdatedAt = fromMicros(waiting), fromMicros(updated)
	rows, err := s.query(ctx, "SELECT kind, name, provider, state, reason, address, updated_at FROM materialization_elements WHERE realization = ? ORDER BY kind DESC, name", realization)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get materialization elements: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e domain.ElementState
		var at int64
		if err := rows.Scan(&e.Kind, &e.Name, &e.Provider, &e.State, &e.Reason, &e.Address, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: get materialization elements: %w", err)
		}
		e.UpdatedAt = fromMicros(at)
		m.Elements = append(m.Elements, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get materialization elements: %w", err)
	}
	return &m, nil
}

func (s materializations) ReplaceElements(ctx context.Context, realization, provider string, els []domain.ElementState) error {
	if _, err := s.exec(ctx, "DELETE FROM materialization_elements WHERE realization = ? AND provider = ?", realization, provider); err != nil {
		return fmt.Errorf("sqlstore: replace materialization elements: %w", err)
	}
	for _, e := range els {
		err := s.guard(ctx, func() error {
			_, err := s.exec(ctx, `INSERT INTO materialization_elements (realization, kind, name, provider, state, reason, address, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (realization, kind, name) DO UPDATE SET provider = excluded.provider, state = excluded.state, reason = excluded.reason,
				address = excluded.address, updated_at = excluded.updated_at`,
				realization, e.Kind, e.Name, provider, e.State, e.Reason, e.Address, micros(e.UpdatedAt))
			return err
		})
		if err != nil && s.f.foreignKey(err) {
			return domain.NotFound("realization %q has no materialization", realization)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: replace materialization elements: %w", err)
		}
	}
	return nil
}

func (s materializations) Silent(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.query(ctx, "SELECT realization FROM materializations WHERE waiting_since > 0 AND waiting_since < ? AND NOT suspect ORDER BY waiting_since LIMIT ?", micros(cutoff), pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: silent materializations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: silent materializations: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
