package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type resources struct{ *tx }

// resourceColumns are qualified: listings join the live binding (alias b).
const resourceColumns = "r.name, r.kind, r.provider, r.attributes, r.state, r.created_at"

// liveBinding joins a resource's live binding, if any. The condition
// repeats the partial index's "live", so both databases can use it.
const liveBinding = " LEFT JOIN bindings b ON b.resource = r.name AND b.live"

func scanResource(row scanner) (*domain.Resource, error) {
	var r domain.Resource
	var kind, attrs, state string
	var created int64
	if err := row.Scan(&r.Name, &kind, &r.Provider, &attrs, &state, &created); err != nil {
		return nil, err
	}
	return finishResource(&r, kind, attrs, state, created)
}

func scanBoundResource(row scanner) (*store.BoundResource, error) {
	var r domain.Resource
	var kind, attrs, state string
	var created int64
	var realization sql.NullString
	if err := row.Scan(&r.Name, &kind, &r.Provider, &attrs, &state, &created, &realization); err != nil {
		return nil, err
	}
	if _, err := finishResource(&r, kind, attrs, state, created); err != nil {
		return nil, err
	}
	return &store.BoundResource{Resource: &r, Realization: realization.String}, nil
}

func finishResource(r *domain.Resource, kind, attrs, state string, created int64) (*domain.Resource, error) {
	r.Kind, r.State, r.CreatedAt = domain.ResourceKind(kind), domain.ResourceState(state), fromMicros(created)
	if err := json.Unmarshal([]byte(attrs), &r.Attributes); err != nil {
		return nil, fmt.Errorf("attributes of resource %s: %w", r.Name, err)
	}
	if len(r.Attributes) == 0 {
		r.Attributes = nil // round-trips a resource created without attributes
	}
	return r, nil
}

func (s resources) Create(ctx context.Context, r *domain.Resource) error {
	attrs := r.Attributes
	if attrs == nil {
		attrs = map[string]string{} // "{}", not "null": the column holds an object
	}
	js, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("sqlstore: create resource: %w", err)
	}
	err = s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO resources (name, kind, provider, attributes, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
			r.Name, string(r.Kind), r.Provider, string(js), string(r.State), micros(r.CreatedAt))
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup:
		return domain.AlreadyExists("resource %q already exists", r.Name)
	}
	return fmt.Errorf("sqlstore: create resource: %w", err)
}

func (s resources) Get(ctx context.Context, name string) (*store.BoundResource, error) {
	r, err := scanBoundResource(s.queryRow(ctx, "SELECT "+resourceColumns+", b.realization FROM resources r"+
		liveBinding+" WHERE r.name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("resource %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get resource: %w", err)
	}
	return r, nil
}

func (s resources) List(ctx context.Context, f store.ResourceFilter) ([]*store.BoundResource, error) {
	var w where
	w.add("r.name > ?", f.Page.After)
	if f.Kind != "" {
		w.add("r.kind = ?", string(f.Kind))
	}
	if f.Provider != "" {
		w.add("r.provider = ?", f.Provider)
	}
	if f.State != "" {
		w.add("r.state = ?", string(f.State))
	}
	out, err := collect(ctx, s.tx, scanBoundResource, "SELECT "+resourceColumns+", b.realization FROM resources r"+
		liveBinding+w.String()+" ORDER BY r.name LIMIT ?", append(w.args, pageLimit(f.Page.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list resources: %w", err)
	}
	return out, nil
}

func (s resources) SetState(ctx context.Context, name string, state domain.ResourceState) error {
	return s.execOne(ctx, "set resource state", domain.NotFound("resource %q not found", name), "UPDATE resources SET state = ? WHERE name = ?", string(state), name)
}

// Delete refuses while a live realization holds the resource. Ended
// realizations' bindings of it go with it: they are the record of what
// those realizations had, but a record that pins the inventory forever
// would make decommissioning a node impossible (the audit log keeps the
// history).
func (s resources) Delete(ctx context.Context, name string) error {
	if err := s.refuseBound(ctx, name); err != nil {
		return err
	}
	if _, err := s.exec(ctx, "DELETE FROM bindings WHERE resource = ? AND NOT live", name); err != nil {
		return fmt.Errorf("sqlstore: delete resource: %w", err)
	}
	var n int64
	err := s.guard(ctx, func() (err error) {
		n, err = s.execAffected(ctx, "DELETE FROM resources WHERE name = ?", name)
		return err
	})
	switch {
	case err == nil && n == 0:
		return domain.NotFound("resource %q not found", name)
	case err == nil:
		return nil
	case s.f.foreignKey(err):
		// Bound meanwhile (only a concurrent writer could): say by whom.
		if rerr := s.refuseBound(ctx, name); rerr != nil {
			return rerr
		}
		return domain.FailedPrecondition("resource %s is bound to a realization", name)
	}
	return fmt.Errorf("sqlstore: delete resource: %w", err)
}

// refuseBound returns failed-precondition naming the live realization that
// holds the resource, if one does.
func (s resources) refuseBound(ctx context.Context, name string) error {
	var holder string
	err := s.queryRow(ctx, "SELECT realization FROM bindings WHERE resource = ? AND live", name).Scan(&holder)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("sqlstore: look up binding: %w", err)
	}
	return domain.FailedPrecondition("resource %s is bound to realization %s: release it first", name, holder)
}

// Available is one query: the NOT EXISTS probes the partial unique index of
// live bindings once per candidate.
func (s resources) Available(ctx context.Context, kind domain.ResourceKind) ([]*domain.Resource, error) {
	out, err := collect(ctx, s.tx, scanResource, "SELECT "+resourceColumns+" FROM resources r "+
		"WHERE r.kind = ? AND r.state = ? AND NOT EXISTS "+
		"(SELECT 1 FROM bindings b WHERE b.resource = r.name AND b.live) ORDER BY r.name",
		string(kind), string(domain.ResourceAvailable))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list available resources: %w", err)
	}
	return out, nil
}
