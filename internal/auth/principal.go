// Package auth turns a request's credentials into a principal. Its
// subpackages hold the primitives: password hashing, signing keys, tokens.
package auth

import (
	"context"
	"time"
)

// Principal is who a request acts as.
type Principal struct {
	UID   string
	Admin bool
	// SessionID is the session the credential belongs to.
	SessionID      string
	SessionExpires time.Time
	TokenExpires   time.Time
	// Scopes narrow what an API token may do (see policy.ScopeAllows); nil
	// for a login's credentials, which are not narrowed.
	Scopes []string
	// TokenID and TokenName name the API token the request came with;
	// empty for a login's credentials (which have a SessionID instead).
	TokenID, TokenName string
	// Actor is the registered service acting for UID ("service:NAME"),
	// when the credential is an exchanged token (no session, no scopes:
	// the service may do what the user may). Empty otherwise.
	Actor string
	// Backend names the authentication backend that admitted the request
	// ("local" for HTTP Basic, "null", "oidc"; see Backend). Such a
	// principal has no session. Empty for Trellis's own credentials.
	Backend string
	// Provider is the registered site whose key signed the request (a
	// site's report to the centre; Actor is then "provider:NAME" and UID
	// empty): a site, never a user. AssertionID is the jti of the JWT the
	// site signed, which the operation records so it is used once.
	Provider    string
	AssertionID string
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFrom returns the principal in ctx, or nil for an anonymous caller.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}
