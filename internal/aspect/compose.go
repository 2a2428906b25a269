package aspect

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Part is one aspect of an experiment, by name, for types whose aspects
// make one whole.
type Part struct {
	Name    string
	Content []byte
}

// Composable is a type whose aspects of one experiment are parts of one
// whole (a topology split over several layout aspects). The service checks
// the parts against each other whenever one is added, changed or removed,
// and realizes the whole.
type Composable interface {
	Realizable
	// Compose checks the parts (each already valid alone) against each
	// other and returns the whole's elements, in the parts' order. Its
	// violations name the part ("layout/extra.links[0]") and, where two
	// parts disagree, the other one in the description.
	Compose(parts []Part) ([]Element, error)
}

// Deriving is a type whose aspects derive read-only sub-aspects (a view of
// each node of a layout), computed from the content on every read so that
// they never fall out of step with it.
type Deriving interface {
	Type
	// Derive returns the sub-aspects of valid content, in a stable order.
	Derive(content []byte) []Derived
}

// Derived is a sub-aspect: a name within its parent, content and summary.
type Derived struct {
	Name    string
	Content []byte
	Summary string
}

// Compose joins layout parts into one topology: node names are unique
// across the parts, every link joins nodes some part defines, no two parts
// give the same link, and there is at least one node.
func (LayoutType) Compose(parts []Part) ([]Element, error) {
	layouts := make([]*Layout, len(parts))
	defined := map[string]string{} // node -> the part defining it
	var vs domain.Violations
	for i, part := range parts {
		l, err := parseLayout(part.Content, true)
		if err != nil {
			return nil, fmt.Errorf("layout/%s: %w", part.Name, err)
		}
		layouts[i] = l
		for j, n := range l.Nodes {
			if other, dup := defined[n.Name]; dup {
				vs.Add(fmt.Sprintf("layout/%s.nodes[%d].name", part.Name, j), "layout.node.duplicate",
					fmt.Sprintf("line %d: node %s is already defined by layout/%s; a node belongs to one layout aspect", n.Line, quote(n.Name), other))
				continue
			}
			defined[n.Name] = part.Name
		}
	}
	linked := map[[2]string]string{}
	var names []string
	for _, part := range parts {
		names = append(names, part.Name)
	}
	for i, l := range layouts {
		part := parts[i].Name
		for j, k := range l.Links {
			for _, end := range []string{k.A, k.B} {
				if _, ok := defined[end]; !ok {
					vs.Add(fmt.Sprintf("layout/%s.links[%d]", part, j), "layout.link.missing_node",
						fmt.Sprintf("line %d: no layout aspect defines node %s (the layout aspects are %s)", k.Line, quote(end), strings.Join(names, ", ")))
				}
			}
			key := [2]string{k.A, k.B}
			if key[0] > key[1] {
				key[0], key[1] = key[1], key[0]
			}
			if other, dup := linked[key]; dup && other != part {
				vs.Add(fmt.Sprintf("layout/%s.links[%d]", part, j), "layout.link.duplicate",
					fmt.Sprintf("line %d: layout/%s already links %s and %s", k.Line, other, quote(k.A), quote(k.B)))
			}
			linked[key] = part
		}
	}
	if len(defined) == 0 && len(vs) == 0 {
		vs.Add("layout", "layout.required", "the layout aspects define no node; add one, e.g. nodes: [{name: a}]")
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	var els []Element
	for _, l := range layouts {
		els = append(els, l.Elements()...)
	}
	return els, nil
}

// Derive gives one view per node: the node with its constraints and the
// links that touch it, itself a valid layout part.
func (LayoutType) Derive(content []byte) []Derived {
	l, err := parseLayout(content, true)
	if err != nil {
		return nil
	}
	out := make([]Derived, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		view := nodeView{Nodes: []nodeDoc{{Name: n.Name}}}
		for _, c := range n.Constraints {
			if view.Nodes[0].Constraints == nil {
				view.Nodes[0].Constraints = map[string][]string{}
			}
			view.Nodes[0].Constraints[c.Attr] = append(view.Nodes[0].Constraints[c.Attr], string(c.Op)+c.Value)
		}
		for _, k := range l.Links {
			if k.A == n.Name || k.B == n.Name {
				view.Links = append(view.Links, []string{k.A, k.B})
			}
		}
		b, err := yaml.Marshal(view)
		if err != nil {
			continue // plain strings and maps always marshal
		}
		summary := "node " + n.Name + ", " + plural(len(view.Links), "link")
		out = append(out, Derived{Name: n.Name, Content: b, Summary: summary})
	}
	slices.SortStableFunc(out, func(a, b Derived) int { return strings.Compare(a.Name, b.Name) })
	return out
}

type nodeView struct {
	Nodes []nodeDoc  `yaml:"nodes"`
	Links [][]string `yaml:"links,omitempty"`
}

type nodeDoc struct {
	Name        string              `yaml:"name"`
	Constraints map[string][]string `yaml:"constraints,omitempty"`
}
