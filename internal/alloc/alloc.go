// Package alloc chooses resources for a realization: for every node of a
// layout, a distinct available resource that satisfies the node's
// constraints.
//
// Choosing is a bipartite matching between nodes and resources. Greedy
// first-fit is not enough (node a accepts r1 or r2, node b only r1: giving r1
// to a strands b), so Allocate finds a maximum matching, and fails only when
// no assignment of distinct resources exists; its error then names a node
// that cannot be placed and why.
package alloc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Request asks for one resource: the one a layout node will be bound to.
// It has the shape of aspect.Element, so a conversion turns one into the
// other.
type Request struct {
	Name        string
	Constraints []domain.Constraint
}

// Shortfall says why a node cannot be placed. Allocate's error wraps one, so
// callers that report it field by field find it with errors.As.
type Shortfall struct {
	Node        string
	Constraints []domain.Constraint
	// Candidates is how many of the Available resources satisfy Node's
	// constraints.
	Candidates int
	Available  int
	// When Candidates > 0, the resources were there but other nodes need
	// them: Competing nodes (Node among them) accept only Contested
	// resources between them, fewer than they are. Both are 0 otherwise.
	Competing int
	Contested int
}

func (s *Shortfall) Error() string {
	what := "its constraints " + constraintsText(s.Constraints) + " match"
	if len(s.Constraints) == 0 {
		what = "with no constraints it matches"
	}
	msg := fmt.Sprintf("node %q cannot be placed: %s %d of %d available resources",
		s.Node, what, s.Candidates, s.Available)
	switch {
	case s.Competing == 0:
		return msg
	case s.Contested == s.Candidates:
		return msg + fmt.Sprintf(", but %d nodes with overlapping constraints compete for them", s.Competing)
	}
	return msg + fmt.Sprintf(", but %d nodes with overlapping constraints compete for the %d resources that any of them accepts",
		s.Competing, s.Contested)
}

func constraintsText(cs []domain.Constraint) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, " ")
}

// Allocate binds every request to a distinct resource of pool that satisfies
// all its constraints, and returns request name -> resource name. It
// considers every resource of pool, so the caller passes only the resources
// that may be bound (available nodes).
//
// If any such assignment exists, Allocate finds one. The result depends only
// on the names, attributes and constraints, not on the order of reqs or pool.
// Among the resources a request accepts, it prefers those that fewer
// requests accept, to leave scarce resources to the requests that need them.
// Its cost grows with the number of distinct constraint sets and distinct
// attribute values, much less with the number of requests and resources.
//
// When no assignment exists, the error has code failed_precondition and
// wraps a *Shortfall naming a node that cannot be placed. Duplicate request
// names are invalid arguments.
func Allocate(reqs []Request, pool []domain.Resource) (map[string]string, error) {
	if len(reqs) == 0 {
		return map[string]string{}, nil
	}
	// Work in name order, so that neither input order changes the result.
	rq := byName(reqs, func(r Request) string { return r.Name })
	for i := 1; i < len(rq); i++ {
		if reqs[rq[i]].Name == reqs[rq[i-1]].Name {
			return nil, domain.Invalid("nodes", "node.duplicate", fmt.Sprintf("node %q is named twice", reqs[rq[i]].Name))
		}
	}
	names := make([]string, len(pool))
	attrs := make([]map[string]string, len(pool))
	for i, p := range byName(pool, func(r domain.Resource) string { return r.Name }) {
		names[i], attrs[i] = pool[p].Name, pool[p].Attributes
		if i > 0 && names[i] == names[i-1] {
			// Binding one resource twice would break the one-live-binding
			// rule; the caller's pool is wrong, not the user's layout.
			return nil, domain.Internal(fmt.Errorf("alloc: resource %q appears twice in the pool", names[i]), "allocation failed")
		}
	}
	groups := groupRequests(reqs, rq, newIndex(attrs))

	// A node that nothing fits is the clearest error: report it before any
	// contention. Groups are in the name order of their first member, so
	// this is the first such node by name.
	for _, g := range groups {
		if g.n == 0 {
			r := reqs[g.members[0]]
			return nil, shortfall(&Shortfall{Node: r.Name, Constraints: slices.Clone(r.Constraints), Available: len(names)})
		}
	}

	m, ranked := newMatcher(groups, len(names))
	// Most constrained first: a group with few candidates has little choice.
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return groups[a].n - groups[b].n })
	m.greedy(order)
	for _, g := range order {
		for m.held[g] < len(groups[g].members) {
			if !m.augment(g) {
				// Members get resources in order, so the first one left
				// without is the one to name.
				r := reqs[groups[g].members[m.held[g]]]
				competing, contested := m.lastSearch()
				return nil, shortfall(&Shortfall{
					Node:        r.Name,
					Constraints: slices.Clone(r.Constraints),
					Candidates:  groups[g].n,
					Available:   len(names),
					Competing:   competing,
					Contested:   contested,
				})
			}
		}
	}

	// Resources held by a group go to its members in order: both lists are
	// in a fixed order, so the pairing is deterministic.
	out := make(map[string]string, len(reqs))
	next := make([]int, len(groups))
	for r, g := range m.owner {
		if g >= 0 {
			out[reqs[groups[g].members[next[g]]].Name] = names[ranked[r]]
			next[g]++
		}
	}
	return out, nil
}

// byName returns the indexes of xs in the order of their names.
func byName[T any](xs []T, name func(T) string) []int {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(name(xs[a]), name(xs[b])) })
	return idx
}

// groupRequests groups the requests, taken in the order rq, by constraint
// set. Requests with the same constraints are interchangeable, so their
// candidates are found once and the matching handles them as one.
func groupRequests(reqs []Request, rq []int, x *index) []group {
	var (
		groups []group
		byKey  = map[string]int{}
		memo   = map[string]bitset{} // per constraint
	)
	for _, r := range rq {
		cs := reqs[r].Constraints
		key, ckeys := setKey(cs)
		g, ok := byKey[key]
		if !ok {
			g = len(groups)
			byKey[key] = g
			var cand bitset
			for i, c := range cs {
				b, ok := memo[ckeys[i]]
				if !ok {
					b = x.eval(c)
					memo[ckeys[i]] = b
				}
				if cand == nil {
					cand = slices.Clone(b)
				} else {
					cand.and(b)
				}
			}
			if cand == nil {
				cand = full(len(x.attrs))
			}
			groups = append(groups, group{cand: cand, n: cand.count()})
		}
		groups[g].members = append(groups[g].members, r)
	}
	return groups
}

// group is the requests that share one set of constraints.
type group struct {
	members []int  // indexes of the requests, in name order
	cand    bitset // resources (in name order) that satisfy the constraints
	n       int    // cand.count()
}

func shortfall(s *Shortfall) error {
	return &domain.Error{Code: domain.CodeFailedPrecondition, Message: s.Error(), Err: s}
}

// setKey returns a key that two constraint lists share exactly when they
// hold the same constraints, whatever their order or repetitions, and the
// key of each constraint. domain.Constraint has no key of its own; its
// parsed number derives from Value, so the text parts identify it.
func setKey(cs []domain.Constraint) (string, []string) {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = constraintKey(c)
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	return strings.Join(slices.Compact(sorted), ","), keys
}

// constraintKey quotes each part, so no attribute or value can make two
// different constraints look alike.
func constraintKey(c domain.Constraint) string {
	return strconv.Quote(c.Attr) + strconv.Quote(string(c.Op)) + strconv.Quote(c.Value)
}
