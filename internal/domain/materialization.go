package domain

import "time"

// Materialization states: where a realization's environment stands at its
// sites (issue 12). A realization none of whose resources belongs to a
// registered site has no materialization: it stays bound, and releasing
// it frees its resources at once.
const (
	MaterializationBound           = "bound"           // resources bound; the sites have not started
	MaterializationMaterializing   = "materializing"   // the sites are making it
	MaterializationReady           = "ready"           // every node and link is ready
	MaterializationChanging        = "changing"        // the sites are bringing it to new bindings
	MaterializationDematerializing = "dematerializing" // released: the sites are removing it
	MaterializationReleased        = "released"        // removed; resources freed
	MaterializationFailed          = "failed"          // an element failed; see the reasons
)

// Element kinds of a materialization.
const (
	ElementNode = "node"
	ElementLink = "link"
)

// Element states, as the sites' drivers report them.
const (
	ElementPending  = "pending"
	ElementCreating = "creating"
	ElementReady    = "ready"
	ElementFailed   = "failed"
	ElementRemoving = "removing"
	ElementRemoved  = "removed"
)

// Materialization is a realization's environment as its sites report it.
type Materialization struct {
	Realization string
	State       string
	// Reason says why, when failed: each failed element with its reason.
	Reason string
	// Generation counts the operations asked of the sites (materialize,
	// each change, dematerialize).
	Generation int64
	// WaitingSince is when the centre began waiting for a site to answer
	// (zero when it waits for none): past the silence limit the
	// realization's resources are marked suspect.
	WaitingSince time.Time
	Suspect      bool
	UpdatedAt    time.Time
	Elements     []ElementState // by kind, then name
}

// Ended reports whether nothing more will happen to it.
func (m *Materialization) Ended() bool {
	return m.State == MaterializationReleased
}

// ElementState is one node or link at its site.
type ElementState struct {
	Kind     string // ElementNode or ElementLink
	Name     string
	Provider string
	State    string
	Reason   string
	// Address is where it is: a node's location, a link's endpoint
	// addresses.
	Address   string
	UpdatedAt time.Time
}
