// Package aspect is the registry of experiment aspect types and its built-in
// types. An experiment is a set of aspects: typed documents (a layout, a
// procedure, data, ...). Each type validates and summarizes its own content,
// so a new type plugs in by implementing Type and joining a Registry, without
// touching the service or the store.
package aspect

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Names of the built-in aspect types.
const (
	TypeLayout    = "layout"
	TypeProcedure = "procedure"
	TypeData      = "data"
)

// Size limits of the built-in types, in bytes. They bound what one aspect
// costs the store and what a parser must chew through per request.
const (
	MaxLayoutSize    = 1 << 20
	MaxProcedureSize = 256 << 10
	MaxDataSize      = 1 << 20
)

// Type is an aspect type. Implementations must be safe for concurrent use;
// the built-in ones hold no state.
type Type interface {
	// Name is the type's name, as aspects and API requests spell it.
	Name() string
	// MaxSize is the largest content the type accepts, in bytes; positive.
	MaxSize() int
	// Validate returns nil or a domain invalid-argument error whose
	// violations name the field inside the document ("layout.nodes[1].name")
	// and, where known, start their description with "line N: ".
	Validate(content []byte) error
	// Summarize describes valid content in a few words for listings
	// ("3 nodes, 2 links", "812 bytes").
	Summarize(content []byte) string
}

// Realizable is a type whose content names elements to bind to resources
// when the experiment is realized.
type Realizable interface {
	Type
	// Elements returns the elements in document order, or the same error as
	// Validate.
	Elements(content []byte) ([]Element, error)
}

// Element is one thing a realization binds to a resource (a layout's node):
// the resource's attributes must satisfy every constraint.
type Element struct {
	Name        string
	Constraints []domain.Constraint
}

// Registry maps type names to types. It is immutable once built, so one
// registry serves every request without locking.
type Registry struct {
	types map[string]Type
	names []string // sorted
}

// NewRegistry builds a registry of types. It panics on a nil type, an empty
// or duplicate name or a non-positive MaxSize: registries are wired from code
// at start-up, where such a mistake is a bug to stop at, not a request error.
func NewRegistry(types ...Type) *Registry {
	r := &Registry{types: make(map[string]Type, len(types))}
	for _, t := range types {
		if t == nil {
			panic("aspect: nil type")
		}
		name := t.Name()
		switch {
		case name == "":
			panic("aspect: type with an empty name")
		case r.types[name] != nil:
			panic("aspect: type " + name + " registered twice")
		case t.MaxSize() <= 0:
			panic("aspect: type " + name + " has no size limit")
		}
		r.types[name] = t
		r.names = append(r.names, name)
	}
	slices.Sort(r.names)
	return r
}

// Default returns a registry of the built-in types: layout, procedure, data.
func Default() *Registry {
	return NewRegistry(LayoutType{}, ProcedureType{}, DataType{})
}

// Lookup returns the type named name.
func (r *Registry) Lookup(name string) (Type, bool) {
	t, ok := r.types[name]
	return t, ok
}

// Names returns the registered type names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Type returns the type named typ, or an invalid-argument error on field
// "type" that lists the known types.
func (r *Registry) Type(typ string) (Type, error) {
	if t, ok := r.types[typ]; ok {
		return t, nil
	}
	known := "known types: " + strings.Join(r.names, ", ")
	if typ == "" {
		return nil, domain.Invalid("type", "aspect.type", "an aspect needs a type; "+known)
	}
	return nil, domain.Invalid("type", "aspect.type", fmt.Sprintf("unknown aspect type %s; %s", quote(typ), known))
}

// Validate checks content as an aspect of type typ: the type exists, the
// content is within the type's size limit, and the type accepts it. The size
// is checked here too so that no plug-in type parses an oversized document.
func (r *Registry) Validate(typ string, content []byte) error {
	t, err := r.Type(typ)
	if err != nil {
		return err
	}
	if err := checkSize(t.Name(), t.MaxSize(), content); err != nil {
		return err
	}
	return t.Validate(content)
}

// checkSize refuses content larger than limit. The violation names the
// document as a whole (its type name), as field paths inside it start there.
func checkSize(typ string, limit int, content []byte) error {
	if len(content) <= limit {
		return nil
	}
	return domain.Invalid(typ, "aspect.size", fmt.Sprintf("a %s aspect is at most %s; this one is %d bytes", typ, size(limit), len(content)))
}

// size writes a byte count the way limits are usually stated.
func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB (%d bytes)", n>>20, n)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB (%d bytes)", n>>10, n)
	}
	return plural(n, "byte")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// quote quotes user text for an error message: escaped, so control
// characters cannot forge lines in logs, and clipped, so a huge value does
// not make a huge error.
func quote(s string) string {
	if c, cut := clip(s); cut {
		return strings.TrimSuffix(strconv.Quote(c), `"`) + `…"`
	}
	return strconv.Quote(s)
}

// clip cuts s to at most 64 bytes, on a character boundary.
func clip(s string) (string, bool) {
	const max = 64
	if len(s) <= max {
		return s, false
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}
