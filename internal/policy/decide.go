package policy

import (
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// powerlessHint is appended to refusals of users who belong to no approved
// project, so they learn what to do rather than only what they may not.
const powerlessHint = " (you belong to no approved project, so you may only manage your own profile, join a project (trellis project join NAME) or request one (trellis project request NAME))"

func allow(reasons ...string) Decision {
	if len(reasons) == 0 {
		return Decision{Allowed: true}
	}
	return Decision{Allowed: true, Reasons: reasons, Reason: joinReasons(reasons)}
}

// allowed is allow with a reason only when one is wanted.
func allowed(why bool, reason string) Decision {
	if !why {
		return Decision{Allowed: true}
	}
	return allow(reason)
}

func refuse(err error, reasons ...string) Decision {
	return Decision{Err: err, Reasons: reasons, Reason: joinReasons(reasons)}
}

// hint adds the powerless hint to a permission refusal.
func (g *graph) hint(uid string, d Decision) Decision {
	if d.Allowed || g.powerful(uid) {
		return d
	}
	var e *domain.Error
	if de, ok := d.Err.(*domain.Error); ok && de.Code == domain.CodePermissionDenied {
		e = &domain.Error{Code: de.Code, Message: de.Message + powerlessHint}
		d.Err = e
		d.Reasons = append(d.Reasons, uid+" belongs to no approved project")
		d.Reason = joinReasons(d.Reasons)
	}
	return d
}

// decide answers whether uid may perform action on object, from the graph.
func (g *graph) decide(uid, action, object string, why bool) Decision {
	u, known := g.users[uid]
	if !known || !u.active {
		return refuse(domain.PermissionDenied("account %s is not active", uid), uid+" is not an active account")
	}
	kind, name, _ := strings.Cut(object, ":")
	var d Decision
	switch kind {
	case "project":
		d = g.decideProject(uid, u.admin, action, name, why)
	case "circle":
		d = g.decideCircle(uid, u.admin, action, name, why)
	case "experiment", "library", "realization":
		d = g.decideObject(uid, u.admin, kind, action, name, why)
	default:
		return refuse(domain.Invalid("object", "object.kind", "objects are named project:NAME, circle:OWNER:NAME, experiment:OWNER:NAME, library:OWNER:NAME or realization:ID"), "unknown kind of object")
	}
	return g.hint(uid, d)
}

func (g *graph) decideProject(uid string, admin bool, action, name string, why bool) Decision {
	notFound := func() Decision {
		return refuse(domain.NotFound("project %q not found", name), "project "+name+" does not exist or is not visible to "+uid)
	}
	p := g.projects[name]
	if p == nil {
		return notFound()
	}
	if _, ok := projectRights[action]; !ok && action != ProjectRead && action != ProjectOwn {
		return refuse(domain.Invalid("action", "action.unknown", "unknown action "+action+" on a project"), "unknown action")
	}
	if admin {
		return allowed(why, uid+" is an administrator")
	}
	var membership []string
	if p.owner == uid {
		membership = found
		if why {
			membership = []string{uid + " owns project " + name}
		}
	} else if p.approved {
		membership = g.memberOf(uid, p, 0, why)
	}
	if membership == nil {
		// Outsiders learn nothing, not even that the project exists.
		return notFound()
	}
	switch action {
	case ProjectRead:
		return allow(membership...)
	case ProjectOwn:
		if p.owner == uid {
			return allow(membership...)
		}
		return refuse(domain.PermissionDenied("only the owner of project %s (%s) may do that", name, p.owner), uid+" does not own project "+name)
	}
	if !p.approved {
		return refuse(domain.FailedPrecondition("project %s is waiting for an administrator's approval", name), "project "+name+" is not approved yet")
	}
	right := projectRights[action]
	if chain := g.grant(uid, p, right, 0, why); chain != nil {
		return allow(chain...)
	}
	return refuse(domain.PermissionDenied("you lack the %s right in project %s", right, name),
		append(membership, uid+" holds "+right.String()+" in project "+name+" neither directly nor through a nested project")...)
}

func (g *graph) decideCircle(uid string, admin bool, action, id string, why bool) Decision {
	notFound := func() Decision {
		return refuse(domain.NotFound("circle %q not found", id), "circle "+id+" does not exist or is not visible to "+uid)
	}
	owner, _, ok := strings.Cut(id, ":")
	if !ok {
		return notFound()
	}
	if action == CircleCreate {
		return g.decideCircleCreate(uid, admin, owner, id)
	}
	if _, ok := circleRights[action]; !ok && action != CircleRead && action != CircleOwn {
		return refuse(domain.Invalid("action", "action.unknown", "unknown action "+action+" on a circle"), "unknown action")
	}
	if domain.AutomaticCircle(id) {
		return g.decideAutomaticCircle(uid, admin, action, owner, id)
	}
	c := g.circles[id]
	if c == nil {
		return notFound()
	}
	if admin {
		return allow(uid + " is an administrator")
	}
	// A circle's administrators: its owning user, or for a project's
	// circle whoever may create circles in that project.
	var admins []string
	if c.owner == uid {
		admins = []string{uid + " owns circle " + id}
	} else if p := g.projects[c.owner]; p != nil && p.approved {
		if chain := g.grant(uid, p, domain.RightsOf(domain.CreateCircle), 0, true); chain != nil {
			admins = append(chain, "circle "+id+" belongs to project "+p.name+", whose members with create_circle administer it")
		}
	}
	r, member := c.members[uid]
	if admins == nil && !member {
		return notFound()
	}
	switch action {
	case CircleRead:
		if admins != nil {
			return allow(admins...)
		}
		return allow(uid + " is a member of circle " + id + " with rights " + r.String())
	case CircleOwn:
		if c.owner == uid || (admins != nil && g.projects[c.owner] != nil && g.projects[c.owner].owner == uid) {
			return allow(uid + " owns circle " + id + " or its project")
		}
		return refuse(domain.PermissionDenied("only the owner of circle %s may do that", id), uid+" does not own circle "+id)
	}
	if admins != nil {
		return allow(admins...)
	}
	right := circleRights[action]
	if r.Has(right) {
		return allow(uid + " is a member of circle " + id + " with rights " + r.String())
	}
	return refuse(domain.PermissionDenied("you lack the %s right in circle %s", right, id),
		uid+" is a member of circle "+id+" with rights "+r.String()+", which lack "+right.String())
}

// decideAutomaticCircle: uid:uid holds its user, proj:proj its project's
// members. Nobody edits them; they follow their owner.
func (g *graph) decideAutomaticCircle(uid string, admin bool, action, owner, id string) Decision {
	notFound := refuse(domain.NotFound("circle %q not found", id), "circle "+id+" does not exist or is not visible to "+uid)
	var member []string
	if p := g.projects[owner]; p != nil {
		if !p.approved {
			return notFound
		}
		if p.owner == uid {
			member = []string{uid + " owns project " + owner}
		} else {
			member = g.memberOf(uid, p, 0, true)
		}
	} else if _, ok := g.users[owner]; ok {
		if owner == uid {
			member = []string{id + " is " + uid + "'s own circle"}
		}
	} else {
		return notFound
	}
	if member == nil && !admin {
		return notFound
	}
	if admin && member == nil {
		member = []string{uid + " is an administrator"}
	}
	if action == CircleRead || action == CircleRealizeExperiment {
		return allow(member...)
	}
	return refuse(domain.FailedPrecondition("circle %s is automatic: its members follow %s and cannot be changed directly", id, owner), "automatic circle")
}

func (g *graph) decideCircleCreate(uid string, admin bool, owner, id string) Decision {
	if domain.AutomaticCircle(id) {
		return refuse(domain.Invalid("id", "circle.automatic", "circles named owner:owner exist already for every user and project"), "automatic circle")
	}
	if p := g.projects[owner]; p != nil {
		if admin {
			return allow(uid + " is an administrator")
		}
		if !p.approved {
			return refuse(domain.FailedPrecondition("project %s is waiting for an administrator's approval", owner), "project not approved")
		}
		if chain := g.grant(uid, p, domain.RightsOf(domain.CreateCircle), 0, true); chain != nil {
			return allow(chain...)
		}
		if g.memberOf(uid, p, 0, false) == nil {
			return refuse(domain.NotFound("project %q not found", owner), "not a member of project "+owner)
		}
		return refuse(domain.PermissionDenied("you lack the create_circle right in project %s", owner), uid+" lacks create_circle in "+owner)
	}
	if owner != uid {
		return refuse(domain.PermissionDenied("you may create circles owned by yourself (%s:NAME) or by a project where you have create_circle", uid), "owner is another user")
	}
	if !g.powerful(uid) {
		return refuse(domain.PermissionDenied("you may not create circles yet"), uid+" is not powerful")
	}
	return allow(uid + " creates a circle of its own and belongs to an approved project")
}

// objectsOf lists every object of a kind, for an admin's ListAllowed; of
// the users' own circles only uid's.
func (g *graph) objectsOf(kind, uid string) []string {
	var out []string
	switch kind {
	case "project":
		for name := range g.projects {
			out = append(out, "project:"+name)
		}
	case "circle":
		for id := range g.circles {
			out = append(out, "circle:"+id)
		}
		for name, p := range g.projects {
			if p.approved {
				out = append(out, "circle:"+name+":"+name)
			}
		}
		out = append(out, "circle:"+uid+":"+uid)
	default:
		for k := range g.objects {
			if strings.HasPrefix(k, kind+":") {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
