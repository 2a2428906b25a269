package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// graph is the in-memory membership graph decisions are made from. The
// engine keeps it current through the change feed and guards it with its
// lock; graph methods assume the lock is held.
type graph struct {
	users    map[string]userNode
	projects map[string]*projectNode
	circles  map[string]*circleNode
	// byUser indexes direct memberships, for "is this user powerful" and
	// for listing what a user belongs to.
	userProjects map[string]map[string]bool
	userCircles  map[string]map[string]bool
	// owned indexes projects by owner, circles by owner (user or project):
	// together with the membership indexes they bound what a user may act
	// on, so listings need not visit every object.
	ownedProjects map[string]map[string]bool
	ownedCircles  map[string]map[string]bool

	// objects are the experiments, libraries and realizations, by key;
	// ownedObjects indexes them by owner and grantsByCircle by the circles
	// holding rights on them.
	objects        map[string]*objectNode
	ownedObjects   map[string]map[string]bool
	grantsByCircle map[string]map[string]bool
}

type userNode struct {
	admin  bool
	active bool
}

type projectNode struct {
	name     string
	owner    string
	approved bool
	members  map[string]domain.Rights
	// children maps a nested project to the rights its members get here.
	children map[string]domain.Rights
	parents  map[string]bool
}

type circleNode struct {
	id      string
	owner   string
	members map[string]domain.Rights
}

func newGraph() *graph {
	return &graph{
		users:          map[string]userNode{},
		projects:       map[string]*projectNode{},
		circles:        map[string]*circleNode{},
		userProjects:   map[string]map[string]bool{},
		userCircles:    map[string]map[string]bool{},
		ownedProjects:  map[string]map[string]bool{},
		ownedCircles:   map[string]map[string]bool{},
		objects:        map[string]*objectNode{},
		ownedObjects:   map[string]map[string]bool{},
		grantsByCircle: map[string]map[string]bool{},
	}
}

// maxDepth bounds walks through nested projects. Nesting cycles are refused
// when made; the bound keeps a corrupt graph from hanging a check.
const maxDepth = 32

func index(m map[string]map[string]bool, uid, group string, on bool) {
	set := m[uid]
	if on {
		if set == nil {
			set = map[string]bool{}
			m[uid] = set
		}
		set[group] = true
		return
	}
	delete(set, group)
	if len(set) == 0 {
		delete(m, uid)
	}
}

// putProject replaces what is known of one project (nil removes it).
func (g *graph) putProject(name string, n *projectNode) {
	old := g.projects[name]
	if old != nil {
		for uid := range old.members {
			index(g.userProjects, uid, name, false)
		}
		index(g.ownedProjects, old.owner, name, false)
		for child := range old.children {
			if c := g.projects[child]; c != nil {
				delete(c.parents, name)
			}
		}
	}
	if n == nil {
		delete(g.projects, name)
		if old != nil {
			for parent := range old.parents {
				if p := g.projects[parent]; p != nil {
					delete(p.children, name)
				}
			}
		}
		return
	}
	// A project's parents are the projects listing it as a child; they
	// change only when those projects are reloaded, which keeps this set.
	if old != nil {
		n.parents = old.parents
	} else {
		n.parents = map[string]bool{}
		for pname, p := range g.projects {
			if _, ok := p.children[name]; ok && pname != name {
				n.parents[pname] = true
			}
		}
	}
	for uid := range n.members {
		index(g.userProjects, uid, name, true)
	}
	index(g.ownedProjects, n.owner, name, true)
	for child := range n.children {
		if c := g.projects[child]; c != nil {
			c.parents[name] = true
		}
	}
	g.projects[name] = n
}

func (g *graph) putCircle(id string, n *circleNode) {
	if old := g.circles[id]; old != nil {
		for uid := range old.members {
			index(g.userCircles, uid, id, false)
		}
		index(g.ownedCircles, old.owner, id, false)
	}
	if n == nil {
		delete(g.circles, id)
		return
	}
	for uid := range n.members {
		index(g.userCircles, uid, id, true)
	}
	index(g.ownedCircles, n.owner, id, true)
	g.circles[id] = n
}

// candidates lists the objects of a kind that uid may have any standing
// in: what it owns or belongs to, the projects those are nested in, and
// the circles of those projects. Nothing outside can allow uid anything,
// so ListAllowed decides only these.
func (g *graph) candidates(uid, kind string) []string {
	projects := map[string]bool{}
	var climb func(name string, depth int)
	climb = func(name string, depth int) {
		if projects[name] || depth > maxDepth {
			return
		}
		projects[name] = true
		if p := g.projects[name]; p != nil {
			for parent := range p.parents {
				climb(parent, depth+1)
			}
		}
	}
	for name := range g.userProjects[uid] {
		climb(name, 0)
	}
	for name := range g.ownedProjects[uid] {
		climb(name, 0)
	}
	var out []string
	if kind == "project" {
		for name := range projects {
			out = append(out, "project:"+name)
		}
	} else {
		circles := map[string]bool{uid + ":" + uid: true}
		for id := range g.userCircles[uid] {
			circles[id] = true
		}
		for id := range g.ownedCircles[uid] {
			circles[id] = true
		}
		for name := range projects {
			circles[name+":"+name] = true
			for id := range g.ownedCircles[name] {
				circles[id] = true
			}
		}
		for id := range circles {
			out = append(out, "circle:"+id)
		}
	}
	slices.Sort(out)
	return out
}

// powerful reports whether uid may do more than manage its own profile:
// it is an admin or a member of an approved project.
func (g *graph) powerful(uid string) bool {
	if g.users[uid].admin {
		return true
	}
	for name := range g.userProjects[uid] {
		if p := g.projects[name]; p != nil && p.approved {
			return true
		}
	}
	return false
}

// memberOf finds how uid belongs to project p: directly or through a nested
// project. It returns the chain of reasons, innermost first, or nil.
func (g *graph) memberOf(uid string, p *projectNode, depth int, why bool) []string {
	if depth > maxDepth {
		return nil
	}
	if r, ok := p.members[uid]; ok {
		if !why {
			return found
		}
		return []string{fmt.Sprintf("%s is a member of project %s with rights %s", uid, p.name, r)}
	}
	for _, child := range g.childrenOf(p, why) {
		c := g.projects[child]
		if c == nil || !c.approved {
			continue
		}
		if chain := g.memberOf(uid, c, depth+1, why); chain != nil {
			if !why {
				return found
			}
			return append(chain, fmt.Sprintf("project %s is nested in project %s", child, p.name))
		}
	}
	return nil
}

// found is the non-nil answer of a walk that was not asked why.
var found = []string{}

// childrenOf lists p's nested projects: sorted when the answer must be
// explained (so the same chain is given every time), in map order when it
// need not be (no allocation on the hot path).
func (g *graph) childrenOf(p *projectNode, why bool) []string {
	if why {
		return sortedKeys(p.children)
	}
	if len(p.children) == 0 {
		return nil
	}
	out := make([]string, 0, len(p.children))
	for c := range p.children {
		out = append(out, c)
	}
	return out
}

// grant finds how uid holds right in project p: as owner, as a direct
// member whose rights include it, or as a member of a nested project whose
// nesting carries it. It returns the chain of reasons, or nil.
func (g *graph) grant(uid string, p *projectNode, right domain.Rights, depth int, why bool) []string {
	if depth > maxDepth {
		return nil
	}
	if p.owner == uid {
		if !why {
			return found
		}
		return []string{fmt.Sprintf("%s owns project %s, which carries every right", uid, p.name)}
	}
	if r, ok := p.members[uid]; ok && r.Has(right) {
		if !why {
			return found
		}
		return []string{fmt.Sprintf("%s is a member of project %s with rights %s", uid, p.name, r)}
	}
	for _, child := range g.childrenOf(p, why) {
		carried := p.children[child]
		c := g.projects[child]
		if c == nil || !c.approved || !carried.Has(right) {
			continue
		}
		if chain := g.memberOf(uid, c, depth+1, why); chain != nil {
			if !why {
				return found
			}
			return append(chain, fmt.Sprintf("members of project %s get rights %s in project %s", child, carried, p.name))
		}
	}
	return nil
}

// effectiveMembers lists everyone who belongs to p, directly or through
// nesting, with the rights they hold in p: a direct member's own, and for a
// member of a nested project (at any depth) the rights the outermost nesting
// into p carries, as grant decides.
func (g *graph) effectiveMembers(p *projectNode) map[string]effective {
	out := map[string]effective{}
	var walk func(n *projectNode, carried domain.Rights, depth int)
	walk = func(n *projectNode, carried domain.Rights, depth int) {
		if depth > maxDepth {
			return
		}
		for uid, r := range n.members {
			e := out[uid]
			if n == p {
				e.rights |= r
				e.direct = true
			} else {
				e.rights |= carried
				if e.via == "" {
					e.via = n.name
				}
			}
			out[uid] = e
		}
		for child, cr := range n.children {
			if c := g.projects[child]; c != nil && c.approved {
				next := carried
				if n == p {
					next = cr
				}
				walk(c, next, depth+1)
			}
		}
	}
	walk(p, 0, 0)
	for uid, e := range out {
		if e.direct {
			e.via = "" // a direct member is not one "via" a nested project
			out[uid] = e
		}
	}
	if e, ok := out[p.owner]; ok {
		e.rights = domain.ProjectRights
		out[p.owner] = e
	}
	return out
}

// effective is one user's standing in a project.
type effective struct {
	rights domain.Rights
	direct bool
	// via names the nested project the user is a direct member of, for
	// users who belong only through nesting.
	via string
}

// wouldCycle reports whether nesting child in parent would make a cycle:
// parent is child itself or nested, at any depth, in child.
func (g *graph) wouldCycle(parent, child string) bool {
	if parent == child {
		return true
	}
	seen := map[string]bool{}
	var reach func(name string, depth int) bool
	reach = func(name string, depth int) bool {
		if name == parent {
			return true
		}
		if seen[name] || depth > maxDepth {
			return false
		}
		seen[name] = true
		if n := g.projects[name]; n != nil {
			for c := range n.children {
				if reach(c, depth+1) {
					return true
				}
			}
		}
		return false
	}
	return reach(child, 0)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func joinReasons(chain []string) string { return strings.Join(chain, "; ") }
