package domain

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ResourceKind is what a site offers.
type ResourceKind string

const (
	KindNode     ResourceKind = "node"
	KindImage    ResourceKind = "image"
	KindNetwork  ResourceKind = "network"
	KindExternal ResourceKind = "external"
)

// ParseResourceKind checks a kind.
func ParseResourceKind(field, s string) (ResourceKind, error) {
	switch k := ResourceKind(s); k {
	case KindNode, KindImage, KindNetwork, KindExternal:
		return k, nil
	}
	return "", Invalid(field, "kind.unknown", fmt.Sprintf("unknown kind %s; one of node, image, network, external", quote(s)))
}

// ResourceState is whether a resource may be bound.
type ResourceState string

const (
	ResourceAvailable   ResourceState = "available"
	ResourceMaintenance ResourceState = "maintenance"
	ResourceDown        ResourceState = "down"
	// ResourceSuspect: the site running it stayed silent while it was to
	// remove a realization from it; it is not bound again until the site
	// answers or an admin says it is available.
	ResourceSuspect ResourceState = "suspect"
)

// ParseResourceState checks a state.
func ParseResourceState(field, s string) (ResourceState, error) {
	switch st := ResourceState(s); st {
	case ResourceAvailable, ResourceMaintenance, ResourceDown, ResourceSuspect:
		return st, nil
	}
	return "", Invalid(field, "state.unknown", fmt.Sprintf("unknown state %s; one of available, maintenance, down, suspect", quote(s)))
}

// Resource is an inventory item a site offers. Attribute values are text;
// constraints compare them as numbers when both sides are numbers.
type Resource struct {
	Name       string
	Kind       ResourceKind
	Provider   string
	Attributes map[string]string
	State      ResourceState
	CreatedAt  time.Time
}

var resourceNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
var attrNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ValidateResourceName checks a resource's name.
func ValidateResourceName(field, name string) error {
	if len(name) == 0 || len(name) > 128 || !resourceNamePattern.MatchString(name) {
		return Invalid(field, "resource.name", "a resource name is 1 to 128 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// ValidateAttributeName checks an attribute's name (cores, memory_gb, arch).
func ValidateAttributeName(field, name string) error {
	if len(name) > 64 || !attrNamePattern.MatchString(name) {
		return Invalid(field, "attribute.name", fmt.Sprintf("attribute name %s: lower-case letters, digits and '_', starting with a letter", quote(name)))
	}
	return nil
}

// Op is a constraint's comparison.
type Op string

const (
	OpEq Op = "="
	OpNe Op = "!="
	OpGe Op = ">="
	OpLe Op = "<="
	OpGt Op = ">"
	OpLt Op = "<"
)

// Constraint restricts one attribute of a resource: "cores>=4", "arch=x86_64".
type Constraint struct {
	Attr  string
	Op    Op
	Value string
	// num is Value as a number, when it is one.
	num   float64
	isNum bool
}

var opsByLength = []Op{OpGe, OpLe, OpNe, OpEq, OpGt, OpLt}

// NewConstraint builds a constraint from its parts. A value of an ordering
// comparison must be a number.
func NewConstraint(field, attr string, op Op, value string) (Constraint, error) {
	if err := ValidateAttributeName(field, attr); err != nil {
		return Constraint{}, err
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return Constraint{}, Invalid(field, "constraint.value", "constraint on "+attr+" has no value")
	}
	c := Constraint{Attr: attr, Op: op, Value: value}
	if f, err := strconv.ParseFloat(value, 64); err == nil {
		c.num, c.isNum = f, true
	}
	switch op {
	case OpEq, OpNe:
	case OpGe, OpLe, OpGt, OpLt:
		if !c.isNum {
			return Constraint{}, Invalid(field, "constraint.number", fmt.Sprintf("%s%s%s compares an order: the value must be a number", attr, op, value))
		}
	default:
		return Constraint{}, Invalid(field, "constraint.op", fmt.Sprintf("unknown comparison %s; one of =, !=, >=, <=, >, <", quote(string(op))))
	}
	return c, nil
}

// ParseConstraint reads "attr OP value" (e.g. "cores>=8", "arch=x86_64").
func ParseConstraint(field, expr string) (Constraint, error) {
	expr = strings.TrimSpace(expr)
	for _, op := range opsByLength {
		if i := strings.Index(expr, string(op)); i > 0 {
			return NewConstraint(field, strings.TrimSpace(expr[:i]), op, expr[i+len(op):])
		}
	}
	return Constraint{}, Invalid(field, "constraint.format", fmt.Sprintf("%s is not a constraint: write attr=value, attr!=value or attr>=N (also <=, >, <)", quote(expr)))
}

// ParseValueConstraint reads a layout's constraint value: ">=4" or a bare
// value meaning equality ("x86_64", 4).
func ParseValueConstraint(field, attr, expr string) (Constraint, error) {
	expr = strings.TrimSpace(expr)
	for _, op := range opsByLength {
		if strings.HasPrefix(expr, string(op)) {
			return NewConstraint(field, attr, op, expr[len(op):])
		}
	}
	return NewConstraint(field, attr, OpEq, expr)
}

// Match reports whether attrs satisfy the constraint. A missing attribute
// satisfies only !=.
func (c Constraint) Match(attrs map[string]string) bool {
	v, ok := attrs[c.Attr]
	if !ok {
		return c.Op == OpNe
	}
	if c.isNum {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			switch c.Op {
			case OpEq:
				return f == c.num
			case OpNe:
				return f != c.num
			case OpGe:
				return f >= c.num
			case OpLe:
				return f <= c.num
			case OpGt:
				return f > c.num
			case OpLt:
				return f < c.num
			}
		}
		if c.Op != OpEq && c.Op != OpNe {
			return false // an order on a value that is not a number
		}
	}
	switch c.Op {
	case OpEq:
		return v == c.Value
	case OpNe:
		return v != c.Value
	}
	return false
}

func (c Constraint) String() string { return c.Attr + string(c.Op) + c.Value }

// MatchAll reports whether attrs satisfy every constraint.
func MatchAll(cs []Constraint, attrs map[string]string) bool {
	for _, c := range cs {
		if !c.Match(attrs) {
			return false
		}
	}
	return true
}
