package store

import (
	"context"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Profile kinds of the social objects.
const (
	ProfileProject = "project"
	ProfileCircle  = "circle"
)

// Change kinds of the social objects: the key is the project name, the
// circle id, or for notifications the recipient's uid.
const (
	ChangeProject      = "project"
	ChangeCircle       = "circle"
	ChangeNotification = "notification"
)

// ProjectFilter selects projects; zero fields match everything.
type ProjectFilter struct {
	Prefix         string
	IncludePending bool
	// Names, when not nil, restricts the listing to these projects.
	Names []string
	Page  Page
}

// Projects holds projects, their direct memberships and their nesting.
// Errors: not-found for a missing project or membership, already-exists for
// a taken name or an existing nesting.
type Projects interface {
	Create(ctx context.Context, p *domain.Project) error
	Get(ctx context.Context, name string) (*domain.Project, error)
	// List returns projects ordered by name, name > Page.After.
	List(ctx context.Context, f ProjectFilter) ([]*domain.Project, error)
	// Update writes Owner, State, Vetting and ApprovedAt.
	Update(ctx context.Context, p *domain.Project) error
	// Delete removes the project with its memberships and nestings (both
	// ways). Circles it owns are the caller's business.
	Delete(ctx context.Context, name string) error

	// SetMember adds or updates a direct membership (Group is the project).
	SetMember(ctx context.Context, m *domain.Membership) error
	RemoveMember(ctx context.Context, project, uid string) error
	Member(ctx context.Context, project, uid string) (*domain.Membership, error)
	// Members lists direct members, ordered by uid.
	Members(ctx context.Context, project string) ([]*domain.Membership, error)
	// MembershipsOf lists uid's direct project memberships.
	MembershipsOf(ctx context.Context, uid string) ([]*domain.Membership, error)

	AddChild(ctx context.Context, c *domain.ProjectChild) error
	RemoveChild(ctx context.Context, parent, child string) error
	// Children lists the projects nested in parent.
	Children(ctx context.Context, parent string) ([]*domain.ProjectChild, error)
	// Parents lists the projects child is nested in.
	Parents(ctx context.Context, child string) ([]*domain.ProjectChild, error)

	// All* load everything, for the policy engine's in-memory graph.
	All(ctx context.Context) ([]*domain.Project, error)
	AllMembers(ctx context.Context) ([]*domain.Membership, error)
	AllChildren(ctx context.Context) ([]*domain.ProjectChild, error)
}

// CircleFilter selects circles.
type CircleFilter struct {
	Owner string
	// IDs, when not nil, restricts the listing to these circles.
	IDs  []string
	Page Page
}

// Circles holds circles that users and projects create (not the automatic
// uid:uid and proj:proj circles, whose members follow their owner).
type Circles interface {
	Create(ctx context.Context, c *domain.Circle) error
	Get(ctx context.Context, id string) (*domain.Circle, error)
	// List returns circles ordered by id, id > Page.After.
	List(ctx context.Context, f CircleFilter) ([]*domain.Circle, error)
	// SetOwner changes the owner; the id (owner:name) stays as it was
	// created, as DETER does.
	SetOwner(ctx context.Context, id, owner string) error
	// Delete removes the circle and its memberships.
	Delete(ctx context.Context, id string) error
	// DeleteOwnedBy removes every circle owner owns and returns their ids.
	DeleteOwnedBy(ctx context.Context, owner string) ([]string, error)

	SetMember(ctx context.Context, m *domain.Membership) error
	RemoveMember(ctx context.Context, id, uid string) error
	Member(ctx context.Context, id, uid string) (*domain.Membership, error)
	Members(ctx context.Context, id string) ([]*domain.Membership, error)
	MembershipsOf(ctx context.Context, uid string) ([]*domain.Membership, error)

	All(ctx context.Context) ([]*domain.Circle, error)
	AllMembers(ctx context.Context) ([]*domain.Membership, error)
}

// Requests holds pending requests for consent. A request is deleted when it
// is accepted, declined or withdrawn; the audit record keeps the outcome.
type Requests interface {
	Create(ctx context.Context, r *domain.PendingRequest) error
	Get(ctx context.Context, id string) (*domain.PendingRequest, error)
	// Find returns the live request of this kind for object and subject,
	// so a second identical request is refused rather than duplicated.
	Find(ctx context.Context, kind domain.RequestKind, object, subject string, now time.Time) (*domain.PendingRequest, error)
	// Delete removes a request; of two concurrent deleters exactly one
	// succeeds, the other gets not-found.
	Delete(ctx context.Context, id string) error
	// ListByObjects lists live requests about any of the objects.
	ListByObjects(ctx context.Context, objects []string, now time.Time) ([]*domain.PendingRequest, error)
	// ListByUser lists live requests whose subject or requester is uid.
	ListByUser(ctx context.Context, uid string, now time.Time) ([]*domain.PendingRequest, error)
	// ListByKind lists live requests of a kind (admins' approval queue).
	ListByKind(ctx context.Context, kind domain.RequestKind, now time.Time) ([]*domain.PendingRequest, error)
	// DeleteByObject removes every request about object (it is gone).
	DeleteByObject(ctx context.Context, object string) error
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// NotificationFilter selects one recipient's notifications.
type NotificationFilter struct {
	UnreadOnly bool
	UrgentOnly bool
	// Since and Until bound the creation time: Since <= created < Until
	// (zero: unbounded).
	Since time.Time
	Until time.Time
	// AfterID returns only newer notifications, oldest first (for streams);
	// otherwise listings are newest first, paging with BeforeID. Forward
	// asks for oldest first from AfterID even when it is 0 (a stream that
	// resumes before the first notification).
	AfterID  int64
	Forward  bool
	BeforeID int64
	Limit    int
}

// Notifications holds notifications.
type Notifications interface {
	// Create assigns n.ID.
	Create(ctx context.Context, n *domain.Notification) error
	List(ctx context.Context, recipient string, f NotificationFilter) ([]*domain.Notification, error)
	// Mark changes the flags (nil leaves one as it is) of the recipient's
	// notifications among ids and returns how many it changed.
	Mark(ctx context.Context, recipient string, ids []int64, read, urgent *bool) (int, error)
}
