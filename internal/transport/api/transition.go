package api

import (
	"context"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
)

// TRANSITIONAL: deleted once every handler passes caller(ctx) to a service
// method that authorizes itself.

func principal(ctx context.Context) (*auth.Principal, error) {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return nil, domain.Unauthenticated("credentials required")
	}
	return p, nil
}

func target(ctx context.Context, uid string) (*auth.Principal, string, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, "", err
	}
	if uid == "" {
		uid = p.UID
	}
	return p, uid, nil
}
