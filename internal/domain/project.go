package domain

import (
	"regexp"
	"strings"
	"time"
)

// ProjectState is where a project stands.
type ProjectState string

const (
	// ProjectPending waits for an admin's approval (vetting projects).
	ProjectPending  ProjectState = "pending"
	ProjectApproved ProjectState = "approved"
)

// Project vouches for its members.
type Project struct {
	Name       string
	Owner      string
	State      ProjectState
	Vetting    bool
	CreatedAt  time.Time
	ApprovedAt time.Time
}

// Membership is a user's direct membership in a project or circle.
type Membership struct {
	Group   string // project name or circle id
	UID     string
	Rights  Rights
	AddedAt time.Time
}

// ProjectChild nests Child in Parent: Child's members get Rights in Parent.
type ProjectChild struct {
	Parent string
	Child  string
	Rights Rights
}

var projectPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

const projectRule = "a project name is 2 to 64 characters: lower-case letters, digits, '_' or '-', starting with a letter"

// ValidateProjectName checks a project name's form. That it differs from
// every uid is checked against the store.
func ValidateProjectName(field, name string) error {
	switch {
	case name == "":
		return Invalid(field, "project.required", "a project name is required")
	case len(name) < 2 || len(name) > 64:
		return Invalid(field, "project.length", "project name must be 2 to 64 characters long; "+projectRule)
	case strings.Contains(name, ":"):
		return Invalid(field, "project.colon", "a project name may not contain ':'")
	case !projectPattern.MatchString(name):
		return Invalid(field, "project.format", "project name "+quote(name)+" is not valid; "+projectRule)
	case reservedUIDs[name]:
		return Invalid(field, "project.reserved", "project name "+quote(name)+" is reserved for the system")
	}
	return nil
}

// Circle is a group of users for sharing, named owner:name.
type Circle struct {
	ID        string // owner:name
	Owner     string // uid or project name
	Name      string
	CreatedAt time.Time
}

var circleNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// ParseCircleID splits and checks owner:name.
func ParseCircleID(field, id string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(id, ":")
	if !ok || owner == "" || name == "" {
		return "", "", Invalid(field, "circle.format", "a circle is named owner:name, where owner is a uid or a project")
	}
	if ValidateUID(field, owner) != nil && ValidateProjectName(field, owner) != nil {
		return "", "", Invalid(field, "circle.owner", "circle owner "+quote(owner)+" is neither a valid uid nor a valid project name")
	}
	if len(name) > 64 || !circleNamePattern.MatchString(name) {
		return "", "", Invalid(field, "circle.name", "a circle's name is 1 to 64 characters: lower-case letters, digits, '_', '.' or '-'")
	}
	return owner, name, nil
}

// AutomaticCircle reports whether id is a user's uid:uid or a project's
// proj:proj circle, whose members follow the owner and cannot be edited.
func AutomaticCircle(id string) bool {
	owner, name, ok := strings.Cut(id, ":")
	return ok && owner == name
}

// RequestKind says what a pending request would do.
type RequestKind string

const (
	RequestProjectAdd      RequestKind = "project_add"
	RequestProjectJoin     RequestKind = "project_join"
	RequestCircleAdd       RequestKind = "circle_add"
	RequestCircleJoin      RequestKind = "circle_join"
	RequestProjectApproval RequestKind = "project_approval"
	// Handing an experiment or library to a new owner waits for that
	// user's consent (Subject); Requester is the owner who offered it.
	RequestExperimentOwner RequestKind = "experiment_owner"
	RequestLibraryOwner    RequestKind = "library_owner"
)

// PendingRequest waits for the consent of the party it names.
type PendingRequest struct {
	ID        string
	Kind      RequestKind
	Object    string // "project:NAME", "circle:OWNER:NAME", "experiment:ID", "library:ID"
	Subject   string // the user whose rights would widen
	Requester string
	Rights    Rights
	Message   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Notification is a short message to one user.
type Notification struct {
	ID        int64
	Recipient string
	Sender    string // "" for Trellis itself
	Text      string
	Urgent    bool
	Read      bool
	CreatedAt time.Time
	RequestID string
}

// Object names.
func ProjectObject(name string) string { return "project:" + name }
func CircleObject(id string) string    { return "circle:" + id }

// ProjectProfile is the DETER project profile.
var ProjectProfile = NewProfileDescription(
	Attribute{Name: "description", Description: "What the project is for", Access: ReadWrite, DataType: TypeString, LengthHint: 80, OrderingHint: 10, MaxLength: 4000},
	Attribute{Name: "funders", Description: "Who funds the work", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 60, OrderingHint: 20, MaxLength: 1000},
	Attribute{Name: "affiliation", Description: "Institution", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 40, OrderingHint: 30, MaxLength: 200},
	Attribute{Name: "URL", Description: "Project web page", Access: ReadWrite, Optional: true, DataType: TypeString, Format: urlFormat, FormatDescription: "an http or https URL", LengthHint: 60, OrderingHint: 40, MaxLength: 500},
)

// CircleProfile is the DETER circle profile.
var CircleProfile = NewProfileDescription(
	Attribute{Name: "description", Description: "What the circle is for", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 80, OrderingHint: 10, MaxLength: 4000},
	Attribute{Name: "email", Description: "Contact address", Access: ReadWrite, Optional: true, DataType: TypeString, Format: emailFormat, FormatDescription: "an e-mail address: local@domain", LengthHint: 40, OrderingHint: 20, MaxLength: EmailMaxLen},
)
