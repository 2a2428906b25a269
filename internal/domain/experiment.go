package domain

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Experiment describes a research activity: a set of typed aspects.
type Experiment struct {
	ID        string // owner:name
	Owner     string // uid or project
	Name      string
	Creator   string
	CreatedAt time.Time
}

// Aspect is one typed document of an experiment, addressed by (type, name).
type Aspect struct {
	Experiment string
	Type       string
	Name       string
	// Revision counts changes from 1; a change names the revision it was
	// based on, so concurrent editors cannot overwrite each other unseen.
	Revision  int64
	Content   []byte
	UpdatedAt time.Time
}

// Grant gives a circle rights on an object.
type Grant struct {
	Object string // "experiment:ID", "library:ID", "realization:ID"
	Circle string
	Rights Rights
}

// Library is a named collection of experiments.
type Library struct {
	ID        string
	Owner     string
	Name      string
	Creator   string
	CreatedAt time.Time
}

// Object names of the testbed's working objects.
func ExperimentObject(id string) string  { return "experiment:" + id }
func LibraryObject(id string) string     { return "library:" + id }
func RealizationObject(id string) string { return "realization:" + id }

var ownedNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// aNoun is noun with its indefinite article: "an experiment", "a library".
func aNoun(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// ParseOwnedID splits and checks an owner:name id of an experiment or a
// library; what kind of owner it is, the store knows.
func ParseOwnedID(field, noun, id string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(id, ":")
	if !ok || owner == "" || name == "" {
		return "", "", Invalid(field, noun+".format", aNoun(noun)+" is named owner:name, where owner is a uid or a project")
	}
	if ValidateUID(field, owner) != nil && ValidateProjectName(field, owner) != nil {
		return "", "", Invalid(field, noun+".owner", fmt.Sprintf("%s owner %s is neither a valid uid nor a valid project name", noun, quote(owner)))
	}
	if len(name) > 64 || !ownedNamePattern.MatchString(name) {
		return "", "", Invalid(field, noun+".name", aNoun(noun)+"'s name is 1 to 64 characters: lower-case letters, digits, '_', '.' or '-'")
	}
	return owner, name, nil
}

// RealizationState is where a realization stands.
type RealizationState string

const (
	RealizationPending   RealizationState = "pending"
	RealizationAllocated RealizationState = "allocated"
	RealizationActive    RealizationState = "active"
	RealizationReleasing RealizationState = "releasing"
	RealizationReleased  RealizationState = "released"
	RealizationFailed    RealizationState = "failed"
)

// Live reports whether the realization holds its resources.
func (s RealizationState) Live() bool {
	switch s {
	case RealizationPending, RealizationAllocated, RealizationActive, RealizationReleasing:
		return true
	}
	return false
}

// Realization binds resources to an experiment, under a project.
type Realization struct {
	ID           string
	Experiment   string
	Project      string
	Owner        string
	State        RealizationState
	Bindings     []Binding
	LeaseExpires time.Time
	CreatedAt    time.Time
	ReleasedAt   time.Time
}

// Binding binds one layout element to one resource.
type Binding struct {
	Element  string
	Resource string
}

// ExperimentProfile and LibraryProfile are their DETER profiles.
var (
	ExperimentProfile = NewProfileDescription(
		Attribute{Name: "description", Description: "What the experiment studies", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 80, OrderingHint: 10, MaxLength: 4000},
	)
	LibraryProfile = NewProfileDescription(
		Attribute{Name: "description", Description: "What the library collects", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 80, OrderingHint: 10, MaxLength: 4000},
	)
)
