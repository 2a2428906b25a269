package materialize

import (
	"fmt"
	"strconv"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/domain"
)

// FromLayout derives the plan of a realization from its experiment's layout
// and its bindings. A node is in the plan once it is bound (so a provider
// recomputes the plan and calls Change when the bindings change); a link is
// in it once both its ends are. The layout format has no addresses, LANs or
// link constraints yet, so the plan has assigned addresses, point-to-point
// links named LinkName(a, b), and unshaped links; callers that have more
// (a site's defaults, say) set them on the plan before validating it.
//
// The layout says nothing of roles either, so a node with two or more links
// in the layout is a router: it is the only way packets can cross it, and
// it keeps the role while its neighbours are bound one by one.
func FromLayout(realization string, l *aspect.Layout, bindings []domain.Binding) (Plan, error) {
	if l == nil {
		return Plan{}, domain.Invalid("layout", "materialize.required", "a plan needs the experiment's layout")
	}
	degree := make(map[string]int, len(l.Nodes))
	for _, k := range l.Links {
		degree[k.A]++
		degree[k.B]++
	}
	inLayout := make(map[string]bool, len(l.Nodes))
	for _, n := range l.Nodes {
		inLayout[n.Name] = true
	}
	var vs domain.Violations
	bound := make(map[string]string, len(bindings))
	for i, b := range bindings {
		f := "bindings[" + strconv.Itoa(i) + "].element"
		switch _, dup := bound[b.Element]; {
		case !inLayout[b.Element]:
			vs.Add(f, "materialize.binding.unknown_node", fmt.Sprintf("element %q is not a node of the layout", clip(b.Element)))
		case dup:
			vs.Add(f, "materialize.binding.duplicate", fmt.Sprintf("element %q is bound twice", b.Element))
		default:
			bound[b.Element] = b.Resource
		}
	}
	if err := vs.Err(); err != nil {
		return Plan{}, err
	}
	p := Plan{Realization: realization}
	for _, n := range l.Nodes {
		if res, ok := bound[n.Name]; ok {
			p.Nodes = append(p.Nodes, Node{Name: n.Name, Resource: res, Router: degree[n.Name] >= 2})
		}
	}
	for _, k := range l.Links {
		_, a := bound[k.A]
		_, b := bound[k.B]
		if a && b {
			p.Links = append(p.Links, Link{Name: LinkName(k.A, k.B), Endpoints: []Endpoint{{Node: k.A}, {Node: k.B}}})
		}
	}
	if len(p.Nodes) == 0 {
		return Plan{}, domain.Invalid("bindings", "materialize.required", "no node of the layout is bound yet; there is nothing to materialize")
	}
	return p, p.Validate()
}

// LinkName names the point-to-point link between nodes a and b, in either
// order. Node names cannot hold '~', so two different pairs never share a
// name ("a-b"+"c" and "a"+"b-c" would, with '-').
func LinkName(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "~" + b
}
