package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type experiments struct{ *tx }

const (
	experimentColumns = "id, owner, name, creator, created_at"
	aspectColumns     = "experiment, type, name, revision, updated_at"
)

func scanExperiment(row scanner) (*domain.Experiment, error) {
	var e domain.Experiment
	var created int64
	if err := row.Scan(&e.ID, &e.Owner, &e.Name, &e.Creator, &created); err != nil {
		return nil, err
	}
	e.CreatedAt = fromMicros(created)
	return &e, nil
}

func scanAspect(row scanner) (*domain.Aspect, error) {
	var a domain.Aspect
	var updated int64
	if err := row.Scan(&a.Experiment, &a.Type, &a.Name, &a.Revision, &updated); err != nil {
		return nil, err
	}
	a.UpdatedAt = fromMicros(updated)
	return &a, nil
}

func scanAspectContent(row scanner) (*domain.Aspect, error) {
	var a domain.Aspect
	var updated int64
	if err := row.Scan(&a.Experiment, &a.Type, &a.Name, &a.Revision, &updated, &a.Content); err != nil {
		return nil, err
	}
	a.UpdatedAt = fromMicros(updated)
	return &a, nil
}

func (s experiments) Create(ctx context.Context, e *domain.Experiment) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO experiments ("+experimentColumns+") VALUES (?, ?, ?, ?, ?)",
			e.ID, e.Owner, e.Name, e.Creator, micros(e.CreatedAt))
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup: // the id is the table's only unique key
		return domain.AlreadyExists("experiment %q already exists", e.ID)
	}
	return fmt.Errorf("sqlstore: create experiment: %w", err)
}

func (s experiments) Get(ctx context.Context, id string) (*domain.Experiment, error) {
	e, err := scanExperiment(s.queryRow(ctx, "SELECT "+experimentColumns+" FROM experiments WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("experiment %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get experiment: %w", err)
	}
	return e, nil
}

func (s experiments) List(ctx context.Context, f store.ExperimentFilter) ([]*domain.Experiment, error) {
	if f.IDs != nil && len(f.IDs) == 0 {
		return nil, nil // restricted to no experiment at all
	}
	var w where
	w.add("id > ?", f.Page.After)
	if f.Owner != "" {
		// Owned by, or named in the namespace of (owner:…), f.Owner.
		w.conds = append(w.conds, "(owner = ? OR substr(id, 1, ?) = ?)")
		w.args = append(w.args, f.Owner, len(f.Owner)+1, f.Owner+":")
	}
	if f.Text != "" {
		w.add(s.f.contains("id"), f.Text)
	}
	if f.IDs != nil {
		addIn(&w, "id", f.IDs)
	}
	out, err := collect(ctx, s.tx, scanExperiment, "SELECT "+experimentColumns+" FROM experiments"+w.String()+
		" ORDER BY id LIMIT ?", append(w.args, pageLimit(f.Page.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list experiments: %w", err)
	}
	return out, nil
}

// Delete relies on ON DELETE CASCADE for aspects and library entries.
func (s experiments) Delete(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete experiment", domain.NotFound("experiment %q not found", id), "DELETE FROM experiments WHERE id = ?", id)
}

func (s experiments) All(ctx context.Context) ([]*domain.Experiment, error) {
	out, err := collect(ctx, s.tx, scanExperiment, "SELECT "+experimentColumns+" FROM experiments ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load experiments: %w", err)
	}
	return out, nil
}

// PutAspect compares and sets in one statement (UPDATE … WHERE revision =
// expected), so of two editors who read the same revision exactly one
// succeeds, on either database; the loser learns the current revision.
func (s experiments) PutAspect(ctx context.Context, a *domain.Aspect, expected int64) error {
	content := a.Content
	if content == nil {
		content = []byte{} // the column is NOT NULL: no content is empty content
	}
	if expected < 0 {
		return domain.Invalid("expected_revision", "revision.negative", "a revision is 0 (create) or the revision the change is based on")
	}
	if expected == 0 {
		err := s.guard(ctx, func() error {
			_, err := s.exec(ctx, "INSERT INTO aspects (experiment, type, name, revision, content, size, updated_at) "+
				"VALUES (?, ?, ?, 1, ?, ?, ?)", a.Experiment, a.Type, a.Name, content, len(content), micros(a.UpdatedAt))
			return err
		})
		switch _, dup := s.f.duplicate(err); {
		case err == nil:
			a.Revision = 1
			return nil
		case dup:
			return domain.AlreadyExists("aspect %s/%s already exists", a.Type, a.Name)
		case s.f.foreignKey(err):
			return domain.NotFound("experiment %q not found", a.Experiment)
		}
		return fmt.Errorf("sqlstore: create aspect: %w", err)
	}
	n, err := s.execAffected(ctx, "UPDATE aspects SET revision = revision + 1, content = ?, size = ?, updated_at = ? "+
		"WHERE experiment = ? AND type = ? AND name = ? AND revision = ?",
		content, len(content), micros(a.UpdatedAt), a.Experiment, a.Type, a.Name, expected)
	if err != nil {
		return fmt.Errorf("sqlstore: update aspect: %w", err)
	}
	if n == 1 {
		a.Revision = expected + 1
		return nil
	}
	var current int64
	err = s.queryRow(ctx, "SELECT revision FROM aspects WHERE experiment = ? AND type = ? AND name = ?",
		a.Experiment, a.Type, a.Name).Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.noAspect(ctx, a.Experiment, a.Type, a.Name)
	case err != nil:
		return fmt.Errorf("sqlstore: read aspect revision: %w", err)
	}
	return domain.Aborted("aspect %s/%s is at revision %d, not %d: reload and apply the change again",
		a.Type, a.Name, current, expected)
}

// noAspect explains why an aspect has no row: no experiment, or no aspect.
func (s experiments) noAspect(ctx context.Context, experiment, typ, name string) error {
	if err := s.firstMissing(ctx, experimentRow(experiment)); err != nil {
		return err
	}
	return domain.NotFound("aspect %s/%s not found", typ, name)
}

func (s experiments) GetAspect(ctx context.Context, experiment, typ, name string) (*domain.Aspect, error) {
	a, err := scanAspectContent(s.queryRow(ctx, "SELECT "+aspectColumns+", content FROM aspects "+
		"WHERE experiment = ? AND type = ? AND name = ?", experiment, typ, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.noAspect(ctx, experiment, typ, name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get aspect: %w", err)
	}
	return a, nil
}

func (s experiments) Aspects(ctx context.Context, experiment string, withContent bool) ([]*domain.Aspect, error) {
	q, scan := "SELECT "+aspectColumns+" FROM aspects", scanAspect
	if withContent {
		q, scan = "SELECT "+aspectColumns+", content FROM aspects", scanAspectContent
	}
	out, err := collect(ctx, s.tx, scan, q+" WHERE experiment = ? ORDER BY type, name", experiment)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list aspects: %w", err)
	}
	if len(out) == 0 {
		// No aspects, or no experiment: tell them apart.
		return nil, s.firstMissing(ctx, experimentRow(experiment))
	}
	return out, nil
}

func (s experiments) DeleteAspect(ctx context.Context, experiment, typ, name string) error {
	n, err := s.execAffected(ctx, "DELETE FROM aspects WHERE experiment = ? AND type = ? AND name = ?", experiment, typ, name)
	if err != nil {
		return fmt.Errorf("sqlstore: delete aspect: %w", err)
	}
	if n == 0 {
		return s.noAspect(ctx, experiment, typ, name)
	}
	return nil
}

// SetOwner hands the experiment to owner; its id stays as it was created.
func (s experiments) SetOwner(ctx context.Context, id, owner string) error {
	return s.execOne(ctx, "set experiment owner", domain.NotFound("experiment %q not found", id), "UPDATE experiments SET owner = ? WHERE id = ?", owner, id)
}
