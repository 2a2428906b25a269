package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type libraries struct{ *tx }

const libraryColumns = "id, owner, name, creator, created_at"

func scanLibrary(row scanner) (*domain.Library, error) {
	var l domain.Library
	var created int64
	if err := row.Scan(&l.ID, &l.Owner, &l.Name, &l.Creator, &created); err != nil {
		return nil, err
	}
	l.CreatedAt = fromMicros(created)
	return &l, nil
}

func scanString(row scanner) (string, error) {
	var s string
	err := row.Scan(&s)
	return s, err
}

func (s libraries) Create(ctx context.Context, l *domain.Library) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO libraries ("+libraryColumns+") VALUES (?, ?, ?, ?, ?)",
			l.ID, l.Owner, l.Name, l.Creator, micros(l.CreatedAt))
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup:
		return domain.AlreadyExists("library %q already exists", l.ID)
	}
	return fmt.Errorf("sqlstore: create library: %w", err)
}

func (s libraries) Get(ctx context.Context, id string) (*domain.Library, error) {
	l, err := scanLibrary(s.queryRow(ctx, "SELECT "+libraryColumns+" FROM libraries WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("library %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get library: %w", err)
	}
	return l, nil
}

func (s libraries) List(ctx context.Context, f store.LibraryFilter) ([]*domain.Library, error) {
	if f.IDs != nil && len(f.IDs) == 0 {
		return nil, nil
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
	out, err := collect(ctx, s.tx, scanLibrary, "SELECT "+libraryColumns+" FROM libraries"+w.String()+
		" ORDER BY id LIMIT ?", append(w.args, pageLimit(f.Page.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list libraries: %w", err)
	}
	return out, nil
}

// Delete relies on ON DELETE CASCADE for the library's entries; the
// experiments stay.
func (s libraries) Delete(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete library", domain.NotFound("library %q not found", id), "DELETE FROM libraries WHERE id = ?", id)
}

func (s libraries) All(ctx context.Context) ([]*domain.Library, error) {
	out, err := collect(ctx, s.tx, scanLibrary, "SELECT "+libraryColumns+" FROM libraries ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load libraries: %w", err)
	}
	return out, nil
}

func (s libraries) AddExperiment(ctx context.Context, library, experiment string) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO library_experiments (library, experiment) VALUES (?, ?)", library, experiment)
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup:
		return domain.AlreadyExists("experiment %s is already in library %s", experiment, library)
	case s.f.foreignKey(err):
		if merr := s.firstMissing(ctx, libraryRow(library), experimentRow(experiment)); merr != nil {
			return merr
		}
	}
	return fmt.Errorf("sqlstore: add experiment to library: %w", err)
}

func (s libraries) RemoveExperiment(ctx context.Context, library, experiment string) error {
	n, err := s.execAffected(ctx, "DELETE FROM library_experiments WHERE library = ? AND experiment = ?", library, experiment)
	if err != nil {
		return fmt.Errorf("sqlstore: remove experiment from library: %w", err)
	}
	if n == 0 {
		if merr := s.firstMissing(ctx, libraryRow(library)); merr != nil {
			return merr
		}
		return domain.NotFound("experiment %s is not in library %s", experiment, library)
	}
	return nil
}

func (s libraries) Experiments(ctx context.Context, library string) ([]string, error) {
	out, err := collect(ctx, s.tx, scanString, "SELECT experiment FROM library_experiments WHERE library = ? ORDER BY experiment", library)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list library experiments: %w", err)
	}
	if len(out) == 0 {
		return nil, s.firstMissing(ctx, libraryRow(library))
	}
	return out, nil
}

// SetOwner hands the library to owner; its id stays as it was created.
func (s libraries) SetOwner(ctx context.Context, id, owner string) error {
	return s.execOne(ctx, "set library owner", domain.NotFound("library %q not found", id), "UPDATE libraries SET owner = ? WHERE id = ?", owner, id)
}
