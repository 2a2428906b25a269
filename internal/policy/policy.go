// Package policy is the single place that decides whether a principal may
// perform an operation. Every API operation has exactly one rule in Rules;
// an operation without one is refused (deny by default), and a test walks the
// API contract to make sure none is missing.
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
	// Authenticated operations need only a valid credential: they concern
	// the caller's own session.
	Authenticated
	// SelfOrAdmin operations act on one account, named by a request field:
	// the caller's own (the field empty or equal to the caller's uid), or
	// any account for an admin. Others learn only that it was not found.
	SelfOrAdmin
	// Admin operations are for testbed administrators only.
	Admin
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
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Rule is the authorization rule of one operation.
type Rule struct {
	Kind Kind
	// Field names the request field that holds the target uid (SelfOrAdmin).
	Field string
}

func (r Rule) String() string {
	if r.Field != "" {
		return r.Kind.String() + "(" + r.Field + ")"
	}
	return r.Kind.String()
}

// Decision is the outcome of a check, with the reason for people.
type Decision struct {
	Allowed bool
	Reason  string
	// Err is the error to return to a refused caller.
	Err error
	// Target is the uid the operation acts on, for SelfOrAdmin rules: the
	// caller's own when the request left it empty.
	Target string
}

// Authorize decides whether p may perform the operation op with request req.
func Authorize(p *auth.Principal, op string, req proto.Message) Decision {
	rule, ok := Rules[op]
	if !ok {
		return deny(domain.PermissionDenied("operation %s has no authorization rule", op), "no rule")
	}
	if rule.Kind == Public {
		return Decision{Allowed: true, Reason: "public operation"}
	}
	if p == nil {
		return deny(domain.Unauthenticated("%s needs credentials: log in (trellis login) and send Authorization: Bearer <access token>", op), "no credentials")
	}
	switch rule.Kind {
	case Authenticated:
		return Decision{Allowed: true, Reason: "authenticated as " + p.UID}
	case Admin:
		if p.Admin {
			return Decision{Allowed: true, Reason: p.UID + " is an administrator"}
		}
		return deny(domain.PermissionDenied("%s is for testbed administrators only", op), p.UID+" is not an administrator")
	case SelfOrAdmin:
		target := stringField(req, rule.Field)
		if target == "" {
			target = p.UID
		}
		switch {
		case target == p.UID:
			return Decision{Allowed: true, Reason: "own account", Target: target}
		case p.Admin:
			return Decision{Allowed: true, Reason: p.UID + " is an administrator", Target: target}
		}
		// Say "not found", as for a uid that does not exist, so a caller
		// cannot probe which accounts exist.
		return deny(domain.NotFound("user %q not found", target), "not the caller's account and caller is not an administrator")
	}
	return deny(domain.PermissionDenied("operation %s has an unknown rule", op), "bad rule")
}

func deny(err error, reason string) Decision {
	return Decision{Allowed: false, Reason: reason, Err: err}
}

// stringField reads a top-level string field of a request by name.
func stringField(m proto.Message, name string) string {
	if m == nil || name == "" {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return ""
	}
	return r.Get(fd).String()
}
