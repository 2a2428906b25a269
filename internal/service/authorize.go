package service

import (
	"context"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/policy"
)

// authorize applies op's one rule to the caller p (nil: anonymous) and to
// what the request names. Every operation calls it before anything else,
// whichever door the request came through; a refused authenticated caller
// leaves an audit record (anonymous probes do not, or the record would
// drown in them).
func (s *base) authorize(ctx context.Context, p *auth.Principal, op *Op, t policy.Target) error {
	if h, ok := ctx.Value(authorizeHookKey{}).(func(*Op)); ok {
		h(op)
	}
	d := s.engine.Authorize(ctx, p, op.Name, op.Rule, t)
	if d.Allowed {
		return nil
	}
	if p != nil {
		s.auditRefusal(ctx, op.Name, p, "", d.Err, d.Reason)
	}
	return d.Err
}

// visible lists the objects a Listing operation may show p: those on
// which p passes the rule's check.
func (s *base) visible(ctx context.Context, p *auth.Principal, op *Op) ([]string, error) {
	return s.visibleTo(ctx, p.UID, op)
}

// visibleTo is visible for the account a listing is about, once the rule
// allowed the caller to ask about it.
func (s *base) visibleTo(ctx context.Context, uid string, op *Op) ([]string, error) {
	c := op.Rule.Checks[0]
	return s.engine.ListAllowed(ctx, uid, c.Action, c.Kind)
}

// authorizeHookKey carries, in tests only, a function told of every
// authorization: the test that every operation authorizes first uses it.
type authorizeHookKey struct{}
