// Package materialize turns a realization into a running environment: one
// isolated element per layout node (a computer, a router) and the links the
// layout describes between them. It is the site side of DETER's containers
// API: the centre binds resources to an experiment's elements, and a site's
// provider module hands the result to a Driver, reporting the states the
// driver gives back.
//
// The package holds what every driver shares: the Driver interface, the Plan
// (derived from the layout aspect and the bindings, validated before anything
// is made), address assignment and static routes. Drivers live beside it:
// netns (network namespaces on one Linux machine) and sim (in memory, for
// tests and unprivileged machines).
package materialize

import (
	"context"
	"net/netip"
)

// Driver makes, changes and removes realizations' environments. Every
// method is safe for concurrent use; operations on one realization are
// serialized by the driver.
//
// Errors are domain errors: an invalid plan is CodeInvalidArgument with one
// violation per problem, naming the element; an unknown realization is
// CodeNotFound; a Materialize of a realization that exists with another plan
// is CodeFailedPrecondition. A failure while creating returns the Status as
// it stood (the failed element carries StateFailed and its reason) together
// with an error wrapping *ElementError.
type Driver interface {
	// Materialize creates the plan's environment. It is idempotent: the
	// same plan again finds everything in place and changes nothing (and
	// repairs what is missing). A failure half-way removes what this call
	// made, so the realization is either complete or absent.
	Materialize(ctx context.Context, p Plan) (Status, error)

	// Change brings a materialized realization to a new plan (nodes and
	// links added or removed when its bindings change), keeping what both
	// plans share untouched, addresses included. A failure half-way
	// returns the realization to its previous plan.
	Change(ctx context.Context, p Plan) (Status, error)

	// Status reports each node and link of a realization, with addresses.
	Status(ctx context.Context, realization string) (Status, error)

	// Dematerialize removes everything the realization has. Removing a
	// realization that does not exist is not an error, so a retry after a
	// crash is safe.
	Dematerialize(ctx context.Context, realization string) error

	// Recover runs once at start, before other calls: every operation a
	// crash interrupted is finished (or, when it cannot be, undone), and
	// objects that belong to no known realization are removed. It returns
	// the realizations that exist afterwards.
	Recover(ctx context.Context) ([]Status, error)
}

// Executor is implemented by drivers that can run a command inside a node,
// which the provider module uses to act as the user's mapped account.
type Executor interface {
	// Exec runs argv inside node of realization and returns its combined
	// output. The command runs with the driver's own credentials; the
	// caller drops privileges (argv may start with a launcher that does).
	Exec(ctx context.Context, realization, node string, argv []string) ([]byte, error)
}

// State is where one node or link stands. A provider reports it to the
// centre as it is.
type State string

const (
	StatePending  State = "pending"  // planned, not yet being made
	StateCreating State = "creating" // being made
	StateReady    State = "ready"    // made and configured as planned
	StateFailed   State = "failed"   // could not be made, or broke; see Reason
	StateRemoving State = "removing" // being removed
	StateRemoved  State = "removed"  // gone; reported once, through an Observer
)

// Kind says whether an Event or an ElementError is about a node or a link.
type Kind string

const (
	KindNode Kind = "node"
	KindLink Kind = "link"
)

// Event is one element's change of state, as it happens.
type Event struct {
	Realization string
	Kind        Kind
	Name        string
	State       State
	Reason      string // why, for StateFailed
}

// Observer receives events while a driver works, in the order they happen,
// so that a provider can report progress to the centre before a long
// operation ends. It is called synchronously: it must be quick and must
// not call the driver.
type Observer func(Event)

// Status is a realization's environment as a driver sees it.
type Status struct {
	Realization string
	Nodes       []NodeStatus // in plan order
	Links       []LinkStatus // in plan order
}

// NodeStatus is one node.
type NodeStatus struct {
	Name   string
	State  State
	Reason string
	Router bool
	// Location says where the node lives, in the driver's terms (for the
	// netns driver, "netns:" and the namespace's name).
	Location string
}

// LinkStatus is one link, with the address of each endpoint.
type LinkStatus struct {
	Name        string
	State       State
	Reason      string
	Subnet      netip.Prefix
	Constraints Constraints
	Attachments []Attachment // in endpoint order
}

// Attachment is one node's end of a link.
type Attachment struct {
	Node      string
	Interface string       // the interface's name inside the node
	Address   netip.Prefix // the node's address on the link, with the subnet's length
}

// Node returns the status of the node called name.
func (s Status) Node(name string) (NodeStatus, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeStatus{}, false
}

// Link returns the status of the link called name.
func (s Status) Link(name string) (LinkStatus, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return LinkStatus{}, false
}

// Ready reports whether every node and link is ready.
func (s Status) Ready() bool {
	for _, n := range s.Nodes {
		if n.State != StateReady {
			return false
		}
	}
	for _, l := range s.Links {
		if l.State != StateReady {
			return false
		}
	}
	return true
}

// ElementError says which element an operation failed on.
type ElementError struct {
	Kind Kind
	Name string
	Err  error
}

func (e *ElementError) Error() string { return string(e.Kind) + " " + e.Name + ": " + e.Err.Error() }
func (e *ElementError) Unwrap() error { return e.Err }
