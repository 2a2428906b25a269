package service

import (
	"context"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
)

// Check answers whether uid may perform action on object.
func (s *Social) Check(ctx context.Context, uid, action, object string) (policy.Decision, error) {
	d := s.engine.Check(ctx, uid, action, object)
	return d, decisionError(d)
}

// Explain answers as Check does, with the chain of reasons.
func (s *Social) Explain(ctx context.Context, uid, action, object string) (policy.Decision, error) {
	d := s.engine.Explain(ctx, uid, action, object)
	return d, decisionError(d)
}

// ListAllowed lists the objects of a kind uid may perform action on.
func (s *Social) ListAllowed(ctx context.Context, uid, action, kind string) ([]string, error) {
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
