package store

import (
	"context"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Profile kinds and change kinds of the testbed's working objects. The
// change key is the object's id; a change to an object's grants is a change
// of the object.
const (
	ProfileExperiment = "experiment"
	ProfileLibrary    = "library"

	ChangeExperiment  = "experiment"
	ChangeLibrary     = "library"
	ChangeRealization = "realization"
)

// ExperimentFilter selects experiments; zero fields match everything.
type ExperimentFilter struct {
	// Owner matches experiments it owns or whose id is in its namespace
	// (owner:…).
	Owner string
	// IDs, when not nil, restricts the listing to these experiments.
	IDs []string
	// Text matches a substring of the id.
	Text string
	Page Page
}

// Experiments holds experiments and their aspects.
type Experiments interface {
	Create(ctx context.Context, e *domain.Experiment) error
	Get(ctx context.Context, id string) (*domain.Experiment, error)
	// List returns experiments ordered by id, id > Page.After.
	List(ctx context.Context, f ExperimentFilter) ([]*domain.Experiment, error)
	// SetOwner hands the experiment to owner; the id stays as created.
	SetOwner(ctx context.Context, id, owner string) error
	// Delete removes the experiment with its aspects and library entries
	// (its grants and profile are the caller's, through Grants/Profiles).
	Delete(ctx context.Context, id string) error
	All(ctx context.Context) ([]*domain.Experiment, error)

	// PutAspect creates an aspect when expected is 0 (already-exists if
	// there is one), or replaces its content when its revision is still
	// expected (aborted, saying the current revision, when it is not). It
	// sets a.Revision to the new revision.
	PutAspect(ctx context.Context, a *domain.Aspect, expected int64) error
	GetAspect(ctx context.Context, experiment, typ, name string) (*domain.Aspect, error)
	// Aspects lists an experiment's aspects ordered by (type, name), with
	// their content only when asked.
	Aspects(ctx context.Context, experiment string, withContent bool) ([]*domain.Aspect, error)
	DeleteAspect(ctx context.Context, experiment, typ, name string) error
}

// LibraryFilter selects libraries.
type LibraryFilter struct {
	// Owner matches libraries it owns or whose id is in its namespace.
	Owner string
	// Text matches a substring of the id.
	Text string
	IDs  []string
	Page Page
}

// Libraries holds libraries and which experiments they list.
type Libraries interface {
	Create(ctx context.Context, l *domain.Library) error
	Get(ctx context.Context, id string) (*domain.Library, error)
	List(ctx context.Context, f LibraryFilter) ([]*domain.Library, error)
	// SetOwner hands the library to owner; the id stays as created.
	SetOwner(ctx context.Context, id, owner string) error
	Delete(ctx context.Context, id string) error
	All(ctx context.Context) ([]*domain.Library, error)
	// AddExperiment lists an experiment (already-exists when it is).
	AddExperiment(ctx context.Context, library, experiment string) error
	RemoveExperiment(ctx context.Context, library, experiment string) error
	// Experiments lists a library's experiments ordered by id.
	Experiments(ctx context.Context, library string) ([]string, error)
}

// Grants holds the rights circles hold on objects.
type Grants interface {
	// Set gives the circle these rights on the object; no rights deletes
	// the grant.
	Set(ctx context.Context, g *domain.Grant) error
	// List returns an object's grants ordered by circle.
	List(ctx context.Context, object string) ([]*domain.Grant, error)
	DeleteObject(ctx context.Context, object string) error
	// DeleteCircle removes every grant to the circles (they are gone, and
	// a circle made later with the same id must not inherit them) and
	// returns the objects that held one, ordered, once each.
	DeleteCircle(ctx context.Context, circles ...string) ([]string, error)
	All(ctx context.Context) ([]*domain.Grant, error)
}

// ResourceFilter selects resources; attribute constraints are applied by
// the caller.
type ResourceFilter struct {
	Kind     domain.ResourceKind
	Provider string
	State    domain.ResourceState
	Page     Page
}

// BoundResource is a resource with the live realization it is bound to.
type BoundResource struct {
	*domain.Resource
	Realization string
}

// Resources holds the inventory.
type Resources interface {
	Create(ctx context.Context, r *domain.Resource) error
	Get(ctx context.Context, name string) (*BoundResource, error)
	// List returns resources ordered by name, name > Page.After.
	List(ctx context.Context, f ResourceFilter) ([]*BoundResource, error)
	SetState(ctx context.Context, name string, state domain.ResourceState) error
	// Delete refuses (failed-precondition naming the realization) while the
	// resource is bound.
	Delete(ctx context.Context, name string) error
	// Available lists resources of a kind that are available and bound to
	// no live realization.
	Available(ctx context.Context, kind domain.ResourceKind) ([]*domain.Resource, error)
}

// RealizationFilter selects realizations.
type RealizationFilter struct {
	IDs          []string
	IncludeEnded bool
	Page         Page
}

// Realizations holds realizations and their bindings. The store guarantees
// that a resource is bound to at most one live realization, with a database
// constraint, whichever replica writes.
type Realizations interface {
	// Create inserts the realization with its bindings. A resource bound to
	// another live realization fails it with failed-precondition naming
	// the resource; nothing of it is written and the caller's transaction
	// stays usable.
	Create(ctx context.Context, r *domain.Realization) error
	// Get returns a realization with its live bindings (or, once ended, the
	// bindings it had).
	Get(ctx context.Context, id string) (*domain.Realization, error)
	List(ctx context.Context, f RealizationFilter) ([]*domain.Realization, error)
	SetState(ctx context.Context, id string, state domain.RealizationState) error
	SetLease(ctx context.Context, id string, expires time.Time) error
	// Bind binds elements to resources, replacing each element's current
	// binding, with the same guarantee as Create.
	Bind(ctx context.Context, id string, bindings []domain.Binding) error
	// End moves a live realization to released or failed and frees its
	// resources; ending one already ended is failed-precondition.
	End(ctx context.Context, id string, state domain.RealizationState, at time.Time) error
	// Expired lists live realizations whose lease ended before now, but
	// not those releasing (their sites are removing them already).
	Expired(ctx context.Context, now time.Time, limit int) ([]string, error)
	// All lists every realization, live or ended, without bindings, for
	// the policy engine: an ended one stays readable as a record.
	All(ctx context.Context) ([]*domain.Realization, error)
}
