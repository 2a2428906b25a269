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
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ObjectCheck asks for Action on the object whose name is in request field
// Field, of the given object kind ("project" or "circle").
type ObjectCheck struct {
	Action string
	Kind   string
	Field  string
}

// Rule is the authorization rule of one operation.
type Rule struct {
	Kind Kind
	// Field names the request field that holds the target uid (SelfOrAdmin).
	Field string
	// Checks must all pass (Object), or one of them when Any is set.
	Checks []ObjectCheck
	Any    bool
	// SelfField, when set, names a repeated uid field: a request naming
	// only the caller (leaving a project or circle) needs no check.
	SelfField string
}

func (r Rule) String() string {
	switch {
	case r.Field != "":
		return r.Kind.String() + "(" + r.Field + ")"
	case len(r.Checks) > 0:
		s := r.Kind.String() + "("
		for i, c := range r.Checks {
			if i > 0 {
				if r.Any {
					s += " or "
				} else {
					s += " and "
				}
			}
			s += c.Action + " on " + c.Field
		}
		return s + ")"
	}
	return r.Kind.String()
}

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

// authorize applies rule to p and req, from the graph g (nil for rules that
// need none).
func authorize(g *graph, p *auth.Principal, op string, rule Rule, req proto.Message) Decision {
	if rule.Kind == Public {
		return allow("public operation")
	}
	if p == nil {
		return deny(domain.Unauthenticated("%s needs credentials: log in (trellis login) and send Authorization: Bearer <access token>", op), "no credentials")
	}
	if rule.Kind == Authenticated {
		return allow("authenticated as " + p.UID)
	}
	// The graph's view of the account is fresher than the credential's.
	admin := g.users[p.UID].admin
	switch rule.Kind {
	case Admin:
		if admin {
			return allow(p.UID + " is an administrator")
		}
		return deny(domain.PermissionDenied("%s is for testbed administrators only", op), p.UID+" is not an administrator")
	case SelfOrAdmin:
		target := stringField(req, rule.Field)
		if target == "" {
			target = p.UID
		}
		switch {
		case target == p.UID:
			d := allow("own account")
			d.Target = target
			return d
		case admin:
			d := allow(p.UID + " is an administrator")
			d.Target = target
			return d
		}
		// Say "not found", as for a uid that does not exist, so a caller
		// cannot probe which accounts exist.
		return deny(domain.NotFound("user %q not found", target), "not the caller's account and caller is not an administrator")
	case Powerful:
		if g.powerful(p.UID) {
			return allow(p.UID + " is an administrator or a member of an approved project")
		}
		return deny(domain.PermissionDenied("%s needs membership in an approved project%s", op, powerlessHint), p.UID+" belongs to no approved project")
	case Object:
		if rule.SelfField != "" {
			if uids := stringsField(req, rule.SelfField); len(uids) == 1 && uids[0] == p.UID {
				return allow(p.UID + " acts only on itself")
			}
		}
		var last Decision
		for _, c := range rule.Checks {
			name := stringField(req, c.Field)
			if name == "" {
				return deny(domain.Invalid(c.Field, c.Field+".required", c.Field+" is required"), "no object named")
			}
			if err := validName(c.Kind, c.Field, name); err != nil {
				return deny(err, "malformed object name")
			}
			last = g.decide(p.UID, c.Action, c.Kind+":"+name, false)
			if last.Allowed == rule.Any {
				return last // the first allow of an Any rule, the first refusal of an All rule
			}
		}
		return last
	}
	return deny(domain.PermissionDenied("operation %s has an unknown rule", op), "bad rule")
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

// stringField reads a top-level string field of a request by name.
func stringField(m proto.Message, name string) string {
	if m == nil || name == "" {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return r.Get(fd).String()
}

// stringsField reads a top-level repeated string field of a request.
func stringsField(m proto.Message, name string) []string {
	if m == nil {
		return nil
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil || fd.Kind() != protoreflect.StringKind || !fd.IsList() {
		return nil
	}
	l := r.Get(fd).List()
	out := make([]string, l.Len())
	for i := range out {
		out[i] = l.Get(i).String()
	}
	return out
}
