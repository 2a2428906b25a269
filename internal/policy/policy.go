// Package policy is the single place that decides whether a principal may
// perform an operation. Every API operation has exactly one rule in Rules;
// an operation without one is refused (deny by default), and a test walks the
// API contract to make sure none is missing.
//
// Rules about objects (a project, a circle) are decided by the Engine from
// an in-memory membership graph that the store's change feed keeps current;
// every such decision first waits on the feed's barrier, so a membership
// removed on any replica is never used by another a moment later.
package policy

import (
	"context"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
)

// Kind is the shape of a rule.
type Kind int

const (
	// Public operations need no credentials: logging in, registering,
	// redeeming mailed tokens, describing the API.
	Public Kind = iota + 1
	// Authenticated operations need only a valid credential. Their service
	// methods act only on what the caller owns or is party to.
	Authenticated
	// SelfOrAdmin operations act on one account, named by a request field:
	// the caller's own (the field empty or equal to the caller's uid), or
	// any account for an admin. Others learn only that it was not found.
	SelfOrAdmin
	// Admin operations are for testbed administrators only.
	Admin
	// Powerful operations need an admin or a member of an approved project.
	Powerful
	// Object operations need the checks on the objects the request names.
	Object
	// Listing operations need only a valid credential, and show only the
	// objects on which the caller passes the rule's one check; a listing
	// about another account (Target.Account) is for administrators.
	Listing
	// Consent operations answer a pending request: only the party whose
	// consent it waits for may (the invited user; a holder of add_user for
	// a request to join; an administrator for a project's approval).
	Consent
	// Site operations are a registered site's own (its reports): only a
	// caller authenticated by a site's key passes, and a site passes no
	// other kind of rule but Public. The service checks that a site
	// speaks only for itself.
	Site
)

func (k Kind) String() string {
	switch k {
	case Public:
		return "public"
	case Authenticated:
		return "authenticated"
	case SelfOrAdmin:
		return "self-or-admin"
	case Admin:
		return "admin"
	case Powerful:
		return "powerful"
	case Object:
		return "object"
	case Listing:
		return "listing"
	case Consent:
		return "consent"
	case Site:
		return "site"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ObjectCheck asks for Action on an object of the given kind ("project",
// "circle", "experiment", "library" or "realization"); the request names
// the object (see Target).
type ObjectCheck struct {
	Action string
	Kind   string
}

// Rule is the authorization rule of one operation.
type Rule struct {
	Kind Kind
	// Checks must all pass (Object), or one of them when Any is set. The
	// request's Target names their objects, in the same order.
	Checks []ObjectCheck
	Any    bool
	// SelfOK lets a request whose Target acts only on the caller (leaving
	// a project or circle) through without the checks; for a Consent rule,
	// it lets the requester withdraw the request.
	SelfOK bool
	// Optional skips the checks of objects the request leaves unnamed; a
	// request that names none needs an administrator.
	Optional bool
	// Each applies the last check to every object named after it too
	// (adding several experiments to a library needs read on each).
	Each bool
	// Personal refuses a service acting for a user: what the operation
	// makes (an API token, an SSH certificate, a site account's ticket)
	// would outlive the exchanged token's minutes, so only the user may
	// ask for it.
	Personal bool
}

func (r Rule) String() string {
	if r.Personal {
		r.Personal = false
		return r.String() + ", not for an acting service"
	}
	if len(r.Checks) == 0 {
		return r.Kind.String()
	}
	s := r.Kind.String() + "("
	for i, c := range r.Checks {
		if i > 0 {
			if r.Any {
				s += " or "
			} else {
				s += " and "
			}
		}
		s += c.Action
	}
	if r.SelfOK {
		s += ", or the caller alone"
	}
	return s + ")"
}

// Named is an object or account a request names, with the request field
// that names it (for errors that point at the field).
type Named struct {
	Field, Name string
}

// Target is what one request names for its operation's rule, from the
// service method's typed arguments: the objects of an Object rule's
// checks, in order; the account of a SelfOrAdmin rule; the uids a request
// acts on, for rules that let a caller act on itself.
type Target struct {
	Objects  []Named
	Account  Named
	Subjects []string
	// Request is the pending request a Consent rule decides about (its id
	// in Account); nil when none with the id exists.
	Request *domain.PendingRequest
}

// On names an object of an Object rule; And adds the next one.
func On(field, name string) Target { return Target{Objects: []Named{{field, name}}} }

// And names the next object of an Object rule with several checks.
func (t Target) And(field, name string) Target {
	t.Objects = append(t.Objects[:len(t.Objects):len(t.Objects)], Named{field, name})
	return t
}

// ActingOn names the uids a request acts on (see Rule.SelfOK).
func (t Target) ActingOn(uids []string) Target {
	t.Subjects = uids
	return t
}

// Account names the account a SelfOrAdmin operation acts on; an empty uid
// is the caller's own.
func Account(field, uid string) Target { return Target{Account: Named{field, uid}} }

// None is the target of a rule that names nothing (public, authenticated,
// admin, powerful).
var None Target

// Decision is the outcome of a check, with the reasons for people.
type Decision struct {
	Allowed bool
	// Reasons is the chain of memberships and grants that allowed it, or
	// what was missing.
	Reasons []string
	Reason  string
	// Err is the error to return to a refused caller.
	Err error
	// Target is the uid the operation acts on, for SelfOrAdmin rules: the
	// caller's own when the request left it empty.
	Target string
}

func deny(err error, reason string) Decision {
	return Decision{Allowed: false, Reasons: []string{reason}, Reason: reason, Err: err}
}

// authorize applies rule to p and t, from the graph g (nil for the rules
// that need none: see needsGraph).
func authorize(g *graph, p *auth.Principal, op string, rule Rule, t Target) Decision {
	if rule.Kind == Public {
		return allow("public operation")
	}
	if p == nil {
		return deny(domain.Unauthenticated("%s needs credentials: log in (trellis login) and send Authorization: Bearer <access token>", op), "no credentials")
	}
	// A site's key proves its own reports and nothing else: it is no
	// user, so no other rule lets it through.
	switch {
	case p.Provider != "" && rule.Kind == Site:
		return allow("site " + p.Provider + " reports for itself")
	case p.Provider != "":
		return deny(domain.PermissionDenied("%s is not for sites: a site's key proves only its own reports", op), "site "+p.Provider+" is not a user")
	case rule.Kind == Site:
		return deny(domain.PermissionDenied("%s is a site's own: sign the request with the site's registered key", op), p.UID+" is not a site")
	case rule.Personal && p.Actor != "":
		return deny(domain.PermissionDenied("%s acts for %s with a short-lived token and may not call %s for them: it would outlive the token", p.Actor, p.UID, op), p.Actor+" acts for "+p.UID)
	}
	if rule.Kind == Authenticated || (rule.Kind == Listing && selfTarget(p, t)) {
		return allow("authenticated as " + p.UID)
	}
	if rule.Kind == SelfOrAdmin && selfTarget(p, t) {
		return allow("own account")
	}
	// The graph's view of the account is fresher than the credential's.
	admin := g.users[p.UID].admin
	switch rule.Kind {
	case Admin:
		if admin {
			return allow(p.UID + " is an administrator")
		}
		return deny(domain.PermissionDenied("%s is for testbed administrators only", op), p.UID+" is not an administrator")
	case SelfOrAdmin, Listing:
		// A listing about another account (whose projects is uid in?)
		// is an administrator's question, as is acting on another account.
		if admin {
			return allow(p.UID + " is an administrator")
		}
		// Say "not found", as for a uid that does not exist, so a caller
		// cannot probe which accounts exist.
		return deny(domain.NotFound("user %q not found", t.Account.Name), "not the caller's account and caller is not an administrator")
	case Powerful:
		if g.powerful(p.UID) {
			return allow(p.UID + " is an administrator or a member of an approved project")
		}
		return deny(domain.PermissionDenied("%s needs membership in an approved project%s", op, powerlessHint), p.UID+" belongs to no approved project")
	case Object:
		if rule.SelfOK && len(t.Subjects) == 1 && t.Subjects[0] == p.UID {
			return allow(p.UID + " acts only on itself")
		}
		if len(rule.Checks) == 0 || len(t.Objects) < len(rule.Checks) || (len(t.Objects) > len(rule.Checks) && !rule.Each) {
			return deny(domain.Internal(nil, "operation "+op+" names "+fmt.Sprint(len(t.Objects))+" objects for "+fmt.Sprint(len(rule.Checks))+" checks"), "bad target")
		}
		if rule.Optional && !namesAny(t) {
			if admin {
				return allow(p.UID + " is an administrator")
			}
			return deny(domain.PermissionDenied("%s is for testbed administrators only, unless the request names a project or circle you own", op), p.UID+" is not an administrator")
		}
		last := deny(domain.PermissionDenied("%s names nothing to check", op), "no object named")
		for i, obj := range t.Objects {
			c := rule.Checks[min(i, len(rule.Checks)-1)]
			if obj.Name == "" && rule.Optional {
				continue
			}
			if obj.Name == "" {
				return deny(domain.Invalid(obj.Field, obj.Field+".required", obj.Field+" is required"), "no object named")
			}
			if err := validName(c.Kind, obj.Field, obj.Name); err != nil {
				return deny(err, "malformed object name")
			}
			last = g.decide(p.UID, c.Action, c.Kind+":"+obj.Name, false)
			if last.Allowed == rule.Any {
				return last // the first allow of an Any rule, the first refusal of an All rule
			}
		}
		return last
	case Consent:
		return g.decideConsent(p.UID, admin, rule.SelfOK, t.Account.Name, t.Request)
	}
	return deny(domain.PermissionDenied("operation %s has an unknown rule", op), "bad rule")
}

func namesAny(t Target) bool {
	for _, o := range t.Objects {
		if o.Name != "" {
			return true
		}
	}
	return false
}

// decideConsent: only the party whose consent r waits for may answer it
// (withdraw, the requester too, when withdraw is set). Its subject and
// requester learn why they may not; anyone else that it does not exist.
func (g *graph) decideConsent(uid string, admin, withdraw bool, id string, r *domain.PendingRequest) Decision {
	notFound := refuse(domain.NotFound("request %q not found: it was answered, withdrawn, or never existed", id), "no such request visible to "+uid)
	if r == nil {
		return notFound
	}
	if ok, why := g.consenter(uid, admin, r); ok {
		return allow(why)
	}
	if withdraw && uid == r.Requester {
		return allow(uid + " withdraws its own request")
	}
	if uid == r.Subject || uid == r.Requester {
		return refuse(domain.PermissionDenied("request %s waits for the consent of %s, not yours", r.ID, ConsentParty(r)), uid+" is not the consenting party")
	}
	return notFound
}

// consenter reports whether uid is the party whose consent r waits for:
// the invited user for an invitation, whoever may add users for a request
// to join, an admin for a project's approval.
func (g *graph) consenter(uid string, admin bool, r *domain.PendingRequest) (bool, string) {
	switch r.Kind {
	case domain.RequestProjectAdd, domain.RequestCircleAdd:
		return uid == r.Subject, uid + " is the invited user"
	case domain.RequestExperimentOwner, domain.RequestLibraryOwner:
		return uid == r.Subject, uid + " is offered ownership"
	case domain.RequestProjectJoin:
		return g.decide(uid, ProjectAddUser, r.Object, false).Allowed, uid + " may add users to " + r.Object
	case domain.RequestCircleJoin:
		return g.decide(uid, CircleAddUser, r.Object, false).Allowed, uid + " may add users to " + r.Object
	case domain.RequestProjectApproval:
		return admin && g.users[uid].active, uid + " is an administrator"
	}
	return false, ""
}

// Consenter reports whether uid is the party whose consent r waits for.
func (e *Engine) Consenter(ctx context.Context, uid string, r *domain.PendingRequest) (bool, error) {
	var ok bool
	err := e.read(ctx, func(g *graph) { ok, _ = g.consenter(uid, g.users[uid].admin, r) })
	return ok, err
}

// ConsentParty names, for people, whose consent r waits for.
func ConsentParty(r *domain.PendingRequest) string {
	switch r.Kind {
	case domain.RequestProjectAdd, domain.RequestCircleAdd, domain.RequestExperimentOwner, domain.RequestLibraryOwner:
		return r.Subject
	case domain.RequestProjectApproval:
		return "an administrator"
	}
	return "a member with add_user"
}

// selfTarget reports whether a SelfOrAdmin request acts on the caller's own
// account (an empty uid is the caller's).
func selfTarget(p *auth.Principal, t Target) bool {
	return t.Account.Name == "" || t.Account.Name == p.UID
}

// needsGraph reports whether deciding rule for p and t reads the membership
// graph (and so waits on the change feed's barrier).
func needsGraph(p *auth.Principal, rule Rule, t Target) bool {
	switch {
	case p == nil, rule.Kind == Public, rule.Kind == Authenticated, rule.Kind == Site, p.Provider != "":
		return false
	case rule.Kind == SelfOrAdmin, rule.Kind == Listing:
		return !selfTarget(p, t)
	}
	return true
}

// validName checks the form of an object's name, so a malformed one is
// answered as such rather than as "not found".
func validName(kind, field, name string) error {
	switch kind {
	case "circle":
		_, _, err := domain.ParseCircleID(field, name)
		return err
	case "experiment", "library":
		_, _, err := domain.ParseOwnedID(field, kind, name)
		return err
	case "realization":
		if len(name) > 64 {
			return domain.Invalid(field, field+".length", "a realization id is at most 64 characters")
		}
		return nil
	}
	return domain.ValidateProjectName(field, name)
}
