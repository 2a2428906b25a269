package policy

import (
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// objectNode is an experiment, library or realization: an owner and the
// rights circles hold on it.
type objectNode struct {
	key   string // "experiment:alice:e1"
	owner string // uid or project; a realization's owning uid
	// project a realization was made under.
	project string
	grants  map[string]domain.Rights // circle id -> rights
}

func (g *graph) putObject(key string, n *objectNode) {
	if old := g.objects[key]; old != nil {
		index(g.ownedObjects, old.owner, key, false)
		for c := range old.grants {
			index(g.grantsByCircle, c, key, false)
		}
	}
	if n == nil {
		delete(g.objects, key)
		return
	}
	index(g.ownedObjects, n.owner, key, true)
	for c := range n.grants {
		index(g.grantsByCircle, c, key, true)
	}
	g.objects[key] = n
}

// inCircle reports whether uid is in a circle, automatic ones included.
func (g *graph) inCircle(uid, id string) bool {
	owner, _, _ := strings.Cut(id, ":")
	if domain.AutomaticCircle(id) {
		if p := g.projects[owner]; p != nil {
			return p.approved && (p.owner == uid || g.memberOf(uid, p, 0, false) != nil)
		}
		return owner == uid
	}
	c := g.circles[id]
	if c == nil {
		return false
	}
	_, ok := c.members[uid]
	return ok
}

// owns reports whether uid owns the object. Owners are users: an
// experiment or library made in a project's namespace is its creator's.
func (g *graph) owns(uid string, o *objectNode) bool {
	return o.owner == uid
}

// ownsNamespace reports whether uid owns the approved project in whose
// namespace (project:name) the object was made: such an owner may remove
// it, whoever made it.
func (g *graph) ownsNamespace(uid, id string) bool {
	ns, _, _ := strings.Cut(id, ":")
	p := g.projects[ns]
	return p != nil && p.approved && p.owner == uid
}

// objectRightsOf unions the rights uid holds on o through its circles.
func (g *graph) objectRightsOf(uid string, o *objectNode, why bool) (domain.Rights, []string) {
	var rights domain.Rights
	var reasons []string
	for _, c := range sortedKeys(o.grants) {
		if r := o.grants[c]; rights.Has(r) || !g.inCircle(uid, c) {
			continue
		}
		rights |= o.grants[c]
		if why {
			reasons = append(reasons, uid+" is in circle "+c+", which holds "+o.grants[c].String()+" on "+o.key)
		}
	}
	return rights, reasons
}

// decideObject decides an action on an experiment, library or realization.
func (g *graph) decideObject(uid string, admin bool, kind, action, id string, why bool) Decision {
	key := kind + ":" + id
	notFound := func() Decision {
		return refuse(domain.NotFound("%s %q not found", kind, id), key+" does not exist or is not visible to "+uid)
	}
	if action == kind+".create" {
		return g.decideCreate(uid, admin, kind, id)
	}
	want, ok := objectRights[action]
	if !ok || !strings.HasPrefix(action, kind+".") {
		return refuse(domain.Invalid("action", "action.unknown", "unknown action "+action+" on a "+kind), "unknown action")
	}
	o := g.objects[key]
	if o == nil {
		return notFound()
	}
	if admin {
		return allowed(why, uid+" is an administrator")
	}
	if g.owns(uid, o) {
		return allowed(why, uid+" owns "+key)
	}
	if (action == ExperimentRemove || action == LibraryRemove) && g.ownsNamespace(uid, id) {
		ns, _, _ := strings.Cut(id, ":")
		return allowed(why, uid+" owns project "+ns+", in whose namespace "+key+" was made")
	}
	rights, reasons := g.objectRightsOf(uid, o, why)
	if rights == 0 {
		return notFound()
	}
	if want != 0 && rights.Has(want) {
		return allow(reasons...)
	}
	if want == 0 {
		return refuse(domain.PermissionDenied("only the owner of %s %s may do that", kind, id), uid+" does not own "+key)
	}
	return refuse(domain.PermissionDenied("you lack the %s right on %s %s", want, kind, id),
		append(reasons, uid+"'s circles hold "+rights.String()+" on "+key+", which lacks "+want.String())...)
}

// decideCreate: a user may create objects it owns once it is powerful; a
// project's members with create_experiment (create_library) may create the
// project's.
func (g *graph) decideCreate(uid string, admin bool, kind, id string) Decision {
	owner, _, _ := strings.Cut(id, ":")
	right := domain.RightsOf(domain.CreateExperiment)
	if kind == "library" {
		right = domain.RightsOf(domain.CreateLibrary)
	}
	if p := g.projects[owner]; p != nil {
		if admin {
			return allow(uid + " is an administrator")
		}
		if !p.approved {
			return refuse(domain.FailedPrecondition("project %s is waiting for an administrator's approval", owner), "project not approved")
		}
		if chain := g.grant(uid, p, right, 0, true); chain != nil {
			return allow(chain...)
		}
		if g.memberOf(uid, p, 0, false) == nil {
			return refuse(domain.NotFound("project %q not found", owner), "not a member of project "+owner)
		}
		return refuse(domain.PermissionDenied("you lack the %s right in project %s", right, owner), uid+" lacks "+right.String()+" in "+owner)
	}
	if owner != uid {
		return refuse(domain.PermissionDenied("you may create %ss owned by yourself (%s:NAME) or by a project where you have %s", kind, uid, right), "owner is another user")
	}
	if !g.powerful(uid) {
		return refuse(domain.PermissionDenied("you may not create %ss yet", kind), uid+" is not powerful")
	}
	return allow(uid + " creates a " + kind + " of its own and belongs to an approved project")
}

// objectCandidates lists the objects of a kind uid could have standing on:
// those it or its projects own, and those granted to circles it is in.
func (g *graph) objectCandidates(uid, kind string) []string {
	set := map[string]bool{}
	add := func(keys map[string]bool) {
		for k := range keys {
			if strings.HasPrefix(k, kind+":") {
				set[k] = true
			}
		}
	}
	add(g.ownedObjects[uid])
	circles := map[string]bool{uid + ":" + uid: true}
	for id := range g.userCircles[uid] {
		circles[id] = true
	}
	for _, p := range g.candidates(uid, "project") {
		name := strings.TrimPrefix(p, "project:")
		add(g.ownedObjects[name])
		circles[name+":"+name] = true
	}
	for c := range circles {
		add(g.grantsByCircle[c])
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
