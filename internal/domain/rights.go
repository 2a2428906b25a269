package domain

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Right is one right a membership carries.
type Right string

// Project member rights (the DETER vocabulary).
const (
	AddUser           Right = "add_user"
	RemoveUser        Right = "remove_user"
	CreateCircle      Right = "create_circle"
	CreateExperiment  Right = "create_experiment"
	CreateLibrary     Right = "create_library"
	RealizeExperiment Right = "realize_experiment"

	// Rights granted to circles on experiments, libraries, realizations.
	Read             Right = "read"
	Modify           Right = "modify"
	Realize          Right = "realize"
	ModifyAccess     Right = "modify_access"
	AddExperiment    Right = "add_experiment"
	RemoveExperiment Right = "remove_experiment"
	Release          Right = "release"
)

// Rights is a set of rights, one bit each, so that checks on the hot path
// are a mask test.
type Rights uint16

var rightBits = []Right{
	AddUser, RemoveUser, CreateCircle, CreateExperiment, CreateLibrary, RealizeExperiment,
	Read, Modify, Realize, ModifyAccess, AddExperiment, RemoveExperiment, Release,
}

func bitOf(r Right) Rights {
	for i, x := range rightBits {
		if x == r {
			return 1 << i
		}
	}
	return 0
}

// Vocabularies: the rights a membership of each kind may carry.
var (
	ProjectRights = RightsOf(AddUser, RemoveUser, CreateCircle, CreateExperiment, CreateLibrary, RealizeExperiment)
	CircleRights  = RightsOf(AddUser, RemoveUser, RealizeExperiment)

	ExperimentRights  = RightsOf(Read, Modify, Realize, ModifyAccess)
	LibraryRights     = RightsOf(Read, AddExperiment, RemoveExperiment, ModifyAccess)
	RealizationRights = RightsOf(Read, Modify, Release, ModifyAccess)
)

// RightsOf builds a set.
func RightsOf(rs ...Right) Rights {
	var s Rights
	for _, r := range rs {
		s |= bitOf(r)
	}
	return s
}

// Has reports whether s holds every right of want.
func (s Rights) Has(want Rights) bool { return s&want == want }

// Names lists the rights in vocabulary order.
func (s Rights) Names() []string {
	out := make([]string, 0, bits.OnesCount16(uint16(s)))
	for i, r := range rightBits {
		if s&(1<<i) != 0 {
			out = append(out, string(r))
		}
	}
	return out
}

func (s Rights) String() string {
	if s == 0 {
		return "none"
	}
	return strings.Join(s.Names(), ",")
}

// Encode is the stored form: names joined by commas.
func (s Rights) Encode() string { return strings.Join(s.Names(), ",") }

// DecodeRights reads the stored form; unknown names are ignored, so a
// vocabulary that shrinks does not break old rows.
func DecodeRights(s string) Rights {
	var out Rights
	for _, n := range strings.Split(s, ",") {
		out |= bitOf(Right(strings.TrimSpace(n)))
	}
	return out
}

// ParseRights checks names against a vocabulary.
func ParseRights(field string, vocab Rights, names []string) (Rights, error) {
	var out Rights
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			b := bitOf(Right(part))
			if part == string(Modify) && vocab == LibraryRights {
				// A library's "modify" is both of its experiment rights.
				b = RightsOf(AddExperiment, RemoveExperiment)
			}
			if b == 0 || !vocab.Has(b) {
				return 0, Invalid(field, "rights.unknown", fmt.Sprintf("unknown right %s; the rights are %s", quote(part), strings.Join(vocab.Names(), ", ")))
			}
			out |= b
		}
	}
	return out, nil
}

// SortedUnique returns names sorted without duplicates.
func SortedUnique(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
