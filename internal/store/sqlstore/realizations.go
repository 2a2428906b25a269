package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type realizations struct{ *tx }

const realizationColumns = "id, experiment, project, owner, state, lease_expires_at, created_at, released_at"

// liveStates is the SQL list of the states in which a realization holds
// its resources (domain.RealizationState.Live).
var liveStates = func() string {
	var qs []string
	for _, st := range []domain.RealizationState{
		domain.RealizationPending, domain.RealizationAllocated, domain.RealizationActive, domain.RealizationReleasing,
	} {
		qs = append(qs, "'"+string(st)+"'")
	}
	return "(" + strings.Join(qs, ", ") + ")"
}()

// bindingsInsert starts the multi-row INSERT of bindings.
const bindingsInsert = "INSERT INTO bindings (realization, element, resource, live) VALUES "

func scanRealization(row scanner) (*domain.Realization, error) {
	var r domain.Realization
	var state string
	var lease, created, released int64
	if err := row.Scan(&r.ID, &r.Experiment, &r.Project, &r.Owner, &state, &lease, &created, &released); err != nil {
		return nil, err
	}
	r.State = domain.RealizationState(state)
	r.LeaseExpires, r.CreatedAt, r.ReleasedAt = fromMicros(lease), fromMicros(created), fromMicros(released)
	return &r, nil
}

// checkBindings refuses a batch that names an element or a resource twice:
// the first could never hold, the second would fail on the live-resource
// index with a misleading message. It returns the bindings ordered by
// resource, the order to insert them in: concurrent realizations then wait
// for each other's resources in one order, rather than deadlocking.
func checkBindings(bs []domain.Binding) ([]domain.Binding, error) {
	elements := make(map[string]string, len(bs))
	resources := make(map[string]string, len(bs))
	for _, b := range bs {
		if other, dup := elements[b.Element]; dup {
			return nil, domain.Invalid("bindings", "binding.element.duplicate",
				fmt.Sprintf("element %s is bound twice (to %s and %s)", b.Element, other, b.Resource))
		}
		if other, dup := resources[b.Resource]; dup {
			return nil, domain.Invalid("bindings", "binding.resource.duplicate",
				fmt.Sprintf("resource %s is bound twice (to %s and %s)", b.Resource, other, b.Element))
		}
		elements[b.Element], resources[b.Resource] = b.Resource, b.Element
	}
	sorted := slices.Clone(bs)
	slices.SortFunc(sorted, func(a, b domain.Binding) int { return cmp.Compare(a.Resource, b.Resource) })
	return sorted, nil
}

// insertBindings inserts the bindings of realization id in chunks.
func (s realizations) insertBindings(ctx context.Context, id string, bs []domain.Binding, live bool) error {
	args := make([]any, 0, 4*len(bs))
	for _, b := range bs {
		args = append(args, id, b.Element, b.Resource, live)
	}
	return s.insertRows(ctx, bindingsInsert, 4, args)
}

// isLiveResourceConflict reports whether err violates bindings_live_resource
// (SQLite names its column, PostgreSQL the index).
func (s realizations) isLiveResourceConflict(err error) bool {
	name, ok := s.f.unique(err)
	return ok && (name == "bindings_live_resource" || name == "bindings.resource")
}

// bindError turns the failure of inserting bindings bs of realization id
// into a domain error naming the resource at fault, or returns nil when err
// is no such failure.
func (s realizations) bindError(ctx context.Context, id string, bs []domain.Binding, err error) error {
	switch {
	case s.isLiveResourceConflict(err):
		return s.taken(ctx, id, bs, err)
	case s.f.foreignKey(err): // the resources are the only reference of a binding
		return s.firstMissingResource(ctx, bs)
	}
	return nil
}

// taken names a resource of bs that is bound elsewhere. PostgreSQL says
// which in the error; SQLite does not, but there this transaction sees every
// commit (one writer at a time), so asking finds it.
func (s realizations) taken(ctx context.Context, id string, bs []domain.Binding, err error) error {
	if res, ok := conflictValue(err); ok {
		// The holder may have committed after this transaction's snapshot,
		// so it may not be visible: the message need not name it.
		var holder, element string
		qerr := s.queryRow(ctx, "SELECT realization, element FROM bindings WHERE resource = ? AND live", res).Scan(&holder, &element)
		if qerr == nil && holder == id {
			return domain.FailedPrecondition("resource %s is already bound to element %s of realization %s", res, element, id)
		}
		return domain.FailedPrecondition("resource %s is bound to another realization", res)
	}
	type holder struct{ realization, element string }
	holders := map[string]holder{}
	qerr := chunks(bs, func(part []domain.Binding) error {
		var w where
		addIn(&w, "resource", resourcesOf(part))
		rows, err := s.query(ctx, "SELECT resource, realization, element FROM bindings"+w.String()+" AND live", w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var res string
			var h holder
			if err := rows.Scan(&res, &h.realization, &h.element); err != nil {
				return err
			}
			holders[res] = h
		}
		return rows.Err()
	})
	if qerr != nil {
		return fmt.Errorf("sqlstore: look up bound resources: %w (after %v)", qerr, err)
	}
	// Name the first resource of the batch (as the caller ordered it, here
	// by resource) that someone else holds: its own element's binding,
	// restored by the savepoint, is no conflict.
	for _, b := range bs {
		h, ok := holders[b.Resource]
		switch {
		case !ok || (h.realization == id && h.element == b.Element):
		case h.realization == id:
			return domain.FailedPrecondition("resource %s is already bound to element %s of realization %s", b.Resource, h.element, id)
		default:
			return domain.FailedPrecondition("resource %s is bound to another realization", b.Resource)
		}
	}
	return domain.FailedPrecondition("a resource of the bindings is bound to another realization")
}

func resourcesOf(bs []domain.Binding) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Resource
	}
	return out
}

// firstMissingResource returns not-found for the first resource of bs that
// does not exist.
func (s realizations) firstMissingResource(ctx context.Context, bs []domain.Binding) error {
	found := map[string]bool{}
	err := chunks(bs, func(part []domain.Binding) error {
		var w where
		addIn(&w, "name", resourcesOf(part))
		names, err := collect(ctx, s.tx, scanString, "SELECT name FROM resources"+w.String(), w.args...)
		for _, n := range names {
			found[n] = true
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: look up resources: %w", err)
	}
	for _, b := range bs {
		if !found[b.Resource] {
			return domain.NotFound("resource %q not found", b.Resource)
		}
	}
	return domain.NotFound("a resource of the bindings was not found")
}

// Create writes the realization and its bindings under one savepoint, in
// multi-row INSERTs: a taken resource undoes all of it.
func (s realizations) Create(ctx context.Context, r *domain.Realization) error {
	bs, err := checkBindings(r.Bindings)
	if err != nil {
		return err
	}
	inserted := false // whether the realization's own row went in
	err = s.atomically(ctx, func() error {
		if _, err := s.exec(ctx, "INSERT INTO realizations ("+realizationColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			r.ID, r.Experiment, r.Project, r.Owner, string(r.State),
			micros(r.LeaseExpires), micros(r.CreatedAt), micros(r.ReleasedAt)); err != nil {
			return err
		}
		inserted = true
		return s.insertBindings(ctx, r.ID, bs, r.State.Live())
	})
	if err == nil {
		return nil
	}
	if _, dup := s.f.unique(err); dup && !inserted {
		return domain.AlreadyExists("realization %q already exists", r.ID)
	}
	if derr := s.bindError(ctx, r.ID, bs, err); derr != nil {
		return derr
	}
	return fmt.Errorf("sqlstore: create realization: %w", err)
}

func (s realizations) Get(ctx context.Context, id string) (*domain.Realization, error) {
	r, err := scanRealization(s.queryRow(ctx, "SELECT "+realizationColumns+" FROM realizations WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("realization %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get realization: %w", err)
	}
	if err := s.loadBindings(ctx, []*domain.Realization{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// loadBindings fills in the bindings of rs, ordered by element: a live
// realization's are live, an ended one's are what it had when it ended.
func (s realizations) loadBindings(ctx context.Context, rs []*domain.Realization) error {
	byID := make(map[string]*domain.Realization, len(rs))
	ids := make([]string, len(rs))
	for i, r := range rs {
		byID[r.ID], ids[i] = r, r.ID
	}
	err := chunks(ids, func(part []string) error {
		var w where
		addIn(&w, "realization", part)
		rows, err := s.query(ctx, "SELECT realization, element, resource FROM bindings"+w.String()+
			" ORDER BY realization, element", w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var b domain.Binding
			if err := rows.Scan(&id, &b.Element, &b.Resource); err != nil {
				return err
			}
			byID[id].Bindings = append(byID[id].Bindings, b)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("sqlstore: load bindings: %w", err)
	}
	return nil
}

// List returns a page of realizations with their bindings (one more query
// per page, not per realization).
func (s realizations) List(ctx context.Context, f store.RealizationFilter) ([]*domain.Realization, error) {
	if f.IDs != nil && len(f.IDs) == 0 {
		return nil, nil
	}
	var w where
	w.add("id > ?", f.Page.After)
	if !f.IncludeEnded {
		w.conds = append(w.conds, "state IN "+liveStates)
	}
	if f.IDs != nil {
		addIn(&w, "id", f.IDs)
	}
	out, err := collect(ctx, s.tx, scanRealization, "SELECT "+realizationColumns+" FROM realizations"+w.String()+
		" ORDER BY id LIMIT ?", append(w.args, pageLimit(f.Page.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list realizations: %w", err)
	}
	if err := s.loadBindings(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// notLive explains why an UPDATE … WHERE id = ? AND state IN liveStates
// touched no row: no such realization, or it ended.
func (s realizations) notLive(ctx context.Context, id string) error {
	var state string
	err := s.queryRow(ctx, "SELECT state FROM realizations WHERE id = ?", id).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return domain.NotFound("realization %q not found", id)
	case err != nil:
		return fmt.Errorf("sqlstore: get realization state: %w", err)
	}
	return ended(id, domain.RealizationState(state))
}

func ended(id string, state domain.RealizationState) error {
	if state == domain.RealizationFailed {
		return domain.FailedPrecondition("realization %s failed already", id)
	}
	return domain.FailedPrecondition("realization %s was released already", id)
}

// updateLive runs an UPDATE of one live realization ("… WHERE id = ? AND
// state IN live" is appended, id is the last argument).
func (s realizations) updateLive(ctx context.Context, what, set, id string, args ...any) error {
	n, err := s.execAffected(ctx, "UPDATE realizations SET "+set+" WHERE id = ? AND state IN "+liveStates,
		append(args, id)...)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	if n == 0 {
		return s.notLive(ctx, id)
	}
	return nil
}

// SetState moves a live realization between live states. Ending it frees
// its resources, which is End's work: a released realization that still
// held them would keep them from everyone.
func (s realizations) SetState(ctx context.Context, id string, state domain.RealizationState) error {
	if !state.Live() {
		return domain.Invalid("state", "realization.state.end", fmt.Sprintf("state %s ends a realization: end it with End, which frees its resources", state))
	}
	return s.updateLive(ctx, "set realization state", "state = ?", id, string(state))
}

// SetLease renews (or shortens) the lease of a live realization.
func (s realizations) SetLease(ctx context.Context, id string, expires time.Time) error {
	return s.updateLive(ctx, "set realization lease", "lease_expires_at = ?", id, micros(expires))
}

// Bind replaces the elements' bindings: their rows are deleted and the new
// ones inserted, under one savepoint, so a taken resource leaves the
// realization's bindings as they were.
func (s realizations) Bind(ctx context.Context, id string, bindings []domain.Binding) error {
	bs, err := checkBindings(bindings)
	if err != nil {
		return err
	}
	var state string
	err = s.queryRow(ctx, "SELECT state FROM realizations WHERE id = ?", id).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return domain.NotFound("realization %q not found", id)
	case err != nil:
		return fmt.Errorf("sqlstore: bind: %w", err)
	case !domain.RealizationState(state).Live():
		return ended(id, domain.RealizationState(state))
	}
	err = s.atomically(ctx, func() error {
		err := chunks(bs, func(part []domain.Binding) error {
			elements := make([]string, len(part))
			for i, b := range part {
				elements[i] = b.Element
			}
			var w where
			w.add("realization = ?", id)
			addIn(&w, "element", elements)
			_, err := s.exec(ctx, "DELETE FROM bindings"+w.String(), w.args...)
			return err
		})
		if err != nil {
			return err
		}
		return s.insertBindings(ctx, id, bs, true)
	})
	if err == nil {
		return nil
	}
	if derr := s.bindError(ctx, id, bs, err); derr != nil {
		return derr
	}
	return fmt.Errorf("sqlstore: bind: %w", err)
}

// End ends a live realization and clears its bindings' live flag: the
// resources are free, the rows stay as the record.
func (s realizations) End(ctx context.Context, id string, state domain.RealizationState, at time.Time) error {
	if state != domain.RealizationReleased && state != domain.RealizationFailed {
		return domain.Invalid("state", "realization.state.end", fmt.Sprintf("a realization ends released or failed, not %s", state))
	}
	if err := s.updateLive(ctx, "end realization", "state = ?, released_at = ?", id, string(state), micros(at)); err != nil {
		return err
	}
	if _, err := s.exec(ctx, "UPDATE bindings SET live = FALSE WHERE realization = ? AND live", id); err != nil {
		return fmt.Errorf("sqlstore: free bindings: %w", err)
	}
	return nil
}

// Expired lists live realizations whose lease ended before now, the
// longest expired first; a realization without a lease (0) never expires.
func (s realizations) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	// A releasing realization is released already, waiting for its sites.
	out, err := collect(ctx, s.tx, scanString, "SELECT id FROM realizations WHERE state IN "+liveStates+
		" AND state <> 'releasing' AND lease_expires_at > 0 AND lease_expires_at < ? ORDER BY lease_expires_at, id LIMIT ?",
		micros(now), pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list expired realizations: %w", err)
	}
	return out, nil
}

func (s realizations) All(ctx context.Context) ([]*domain.Realization, error) {
	out, err := collect(ctx, s.tx, scanRealization, "SELECT "+realizationColumns+" FROM realizations ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load realizations: %w", err)
	}
	return out, nil
}
