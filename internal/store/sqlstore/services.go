package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type services struct{ *tx }

const serviceColumns = "name, public_key, secret_hash, state, created_at"

func scanService(row interface{ Scan(...any) error }) (*store.Service, error) {
	var s store.Service
	var created int64
	if err := row.Scan(&s.Name, &s.PublicKey, &s.SecretHash, &s.State, &created); err != nil {
		return nil, err
	}
	// The column not in use is empty; callers see nil.
	if len(s.PublicKey) == 0 {
		s.PublicKey = nil
	}
	if len(s.SecretHash) == 0 {
		s.SecretHash = nil
	}
	s.CreatedAt = fromMicros(created)
	return &s, nil
}

func (s services) Create(ctx context.Context, v *store.Service) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO services ("+serviceColumns+") VALUES (?, ?, ?, ?, ?)",
			v.Name, append([]byte{}, v.PublicKey...), append([]byte{}, v.SecretHash...), v.State, micros(v.CreatedAt))
		return err
	})
	if err == nil {
		return nil
	}
	if _, dup := s.f.unique(err); dup {
		desc := fmt.Sprintf("a service named %q is registered already", v.Name)
		return &domain.Error{
			Code:       domain.CodeAlreadyExists,
			Message:    "name: " + desc,
			Violations: []domain.Violation{{Field: "name", Rule: "name.duplicate", Description: desc}},
		}
	}
	return fmt.Errorf("sqlstore: create service: %w", err)
}

func (s services) Get(ctx context.Context, name string) (*store.Service, error) {
	v, err := scanService(s.queryRow(ctx, "SELECT "+serviceColumns+" FROM services WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("service %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get service: %w", err)
	}
	return v, nil
}

func (s services) List(ctx context.Context) ([]*store.Service, error) {
	rows, err := s.query(ctx, "SELECT "+serviceColumns+" FROM services ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list services: %w", err)
	}
	defer rows.Close()
	var out []*store.Service
	for rows.Next() {
		v, err := scanService(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list services: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list services: %w", err)
	}
	return out, nil
}

func (s services) SetState(ctx context.Context, name, state string) (*store.Service, error) {
	if _, err := s.exec(ctx, "UPDATE services SET state = ? WHERE name = ?", state, name); err != nil {
		return nil, fmt.Errorf("sqlstore: set service state: %w", err)
	}
	return s.Get(ctx, name)
}

func (s services) Delete(ctx context.Context, name string) error {
	res, err := s.exec(ctx, "DELETE FROM services WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("sqlstore: delete service: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: delete service: %w", err)
	} else if n == 0 {
		return domain.NotFound("service %q not found", name)
	}
	return nil
}

func (s services) UseAssertion(ctx context.Context, service, jti string, expires time.Time) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO used_assertions (service, jti, expires_at) VALUES (?, ?, ?)", service, jti, micros(expires))
		return err
	})
	if _, dup := s.f.unique(err); err != nil && dup {
		return domain.AlreadyExists("actor assertion %q of service %q was used already", jti, service)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: record used assertion: %w", err)
	}
	return nil
}

func (s services) DeleteExpiredAssertions(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM used_assertions WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired assertions: %w", err)
	}
	return int(n), nil
}
