package service

import (
	"context"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
)

// Check answers whether uid (the caller when empty) may perform action on
// object.
func (s *Social) Check(ctx context.Context, p *auth.Principal, uid, action, object string) (policy.Decision, error) {
	if err := s.authorize(ctx, p, opPolicyCheck, policy.Account("uid", uid)); err != nil {
		return policy.Decision{}, err
	}
	if uid == "" {
		uid = p.UID
	}
	d := s.engine.Check(ctx, uid, action, object)
	return d, decisionError(d)
}

// Explain answers as Check does, with the chain of reasons.
func (s *Social) Explain(ctx context.Context, p *auth.Principal, uid, action, object string) (policy.Decision, error) {
	if err := s.authorize(ctx, p, opPolicyExplain, policy.Account("uid", uid)); err != nil {
		return policy.Decision{}, err
	}
	if uid == "" {
		uid = p.UID
	}
	d := s.engine.Explain(ctx, uid, action, object)
	return d, decisionError(d)
}

// ListAllowed lists the objects of a kind uid (the caller when empty) may
// perform action on.
func (s *Social) ListAllowed(ctx context.Context, p *auth.Principal, uid, action, kind string) ([]string, error) {
	if err := s.authorize(ctx, p, opPolicyListAllowed, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	return s.engine.ListAllowed(ctx, uid, action, kind)
}

// decisionError separates a refusal (an answer) from a failure to decide
// or a malformed question (an error).
func decisionError(d policy.Decision) error {
	if d.Allowed || d.Err == nil {
		return nil
	}
	switch domain.CodeOf(d.Err) {
	case domain.CodeInternal, domain.CodeInvalidArgument:
		return d.Err
	}
	return nil
}
