package auth

import (
	"context"
	"crypto/ed25519"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// ProviderPrefix starts the issuer of a site's own JWTs and the actor of
// its audit records: "provider:NAME". It is also the audience of the
// centre's tokens for that site.
const ProviderPrefix = "provider:"

// ProviderOf returns the actor (and audience) of a site: "provider:NAME".
func ProviderOf(name string) string { return ProviderPrefix + name }

// siteLeeway tolerates a site's clock in its JWTs' times.
const siteLeeway = 30 * time.Second

// AcceptSites makes the authenticator recognize JWTs that registered
// sites sign with their own keys (RFC 7523 shape: iss = sub =
// "provider:NAME", aud = audience, a jti, at most 5 minutes of life). Set
// while wiring.
func (a *Authenticator) AcceptSites(audience string) { a.siteAudience = audience }

// authenticateSite resolves a JWT a site signed with its registered key.
// The key is read from the store on every request: site reports are rare,
// and a disabled or removed site is refused at once on every replica.
func (a *Authenticator) authenticateSite(ctx context.Context, raw, iss string) (*Principal, error) {
	name := strings.TrimPrefix(iss, ProviderPrefix)
	var p *domain.Provider
	err := a.st.View(ctx, func(tx store.Tx) (err error) {
		p, err = tx.Providers().Get(ctx, name)
		return err
	})
	switch {
	case domain.HasCode(err, domain.CodeNotFound):
		return nil, domain.Unauthenticated("site %q is not registered", name)
	case err != nil:
		return nil, err
	case p.State != domain.ProviderActive:
		return nil, domain.Unauthenticated("site %q is disabled", name)
	case len(p.PublicKey) != ed25519.PublicKeySize:
		return nil, domain.Unauthenticated("site %q has not registered its key", name)
	}
	as, err := token.VerifyAssertion(raw, ed25519.PublicKey(p.PublicKey), a.siteAudience, a.now(), siteLeeway)
	if err != nil {
		// A JWT naming a registered site that its key did not sign (or
		// that is stale, or for another audience): someone spoke for the
		// site. The door records it against the site.
		return nil, &SiteRefusal{Err: &domain.Error{Code: domain.CodeUnauthenticated, Message: "site " + name + ": " + err.Error(), Err: err}, Provider: name, Reason: "site JWT refused: " + err.Error()}
	}
	return &Principal{Provider: name, Actor: iss, TokenExpires: as.Expiry, AssertionID: as.ID}, nil
}

// SiteRefusal is a JWT that names a registered, active site but does not
// verify with its key: the door audits it against the site, since a
// forged report is worth an operator's attention (unknown or disabled
// sites are not recorded, or anyone could fill the record).
type SiteRefusal struct {
	Err      *domain.Error
	Provider string
	Reason   string
}

func (e *SiteRefusal) Error() string { return e.Err.Error() }
func (e *SiteRefusal) Unwrap() error { return e.Err }

// siteToken reports whether raw, a token the centre's verifier refused,
// claims to be a site's own JWT, and returns its (unverified) issuer.
func (a *Authenticator) siteToken(raw string) (string, bool) {
	if a.siteAudience == "" {
		return "", false
	}
	iss, err := token.AssertionIssuer(raw)
	if err != nil || !strings.HasPrefix(iss, ProviderPrefix) {
		return "", false
	}
	return iss, true
}
