package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Backend is a pluggable way into Trellis: it turns credentials a request
// carries into a principal. Trellis's own credentials (access tokens, API
// tokens, exchanged tokens, bound client certificates) are built into the
// Authenticator; a backend reads others: a password over HTTP Basic
// (local), an identity provider's token (oidc), or a bare claim for
// development (null). The Authenticator asks its backends in order.
//
// A backend need not check the account's state: the Authenticator checks
// the account of every principal a backend returns against its view of
// accounts, which the change feed keeps current, and takes Admin from it.
type Backend interface {
	Name() string // "local", "oidc", "null"
	// Authenticate returns the principal named by the request's
	// credentials, (nil, nil) when the request carries none this backend
	// reads (the next backend may), or an unauthenticated error when they
	// are bad.
	Authenticate(ctx context.Context, h http.Header) (*Principal, error)
}

// Optional behaviour of a backend, which the Authenticator uses when a
// backend has it.
type (
	// UserInvalidator keeps something per account (verified passwords) that
	// a change of the account must drop; the Authenticator's InvalidateUser
	// passes the change on.
	UserInvalidator interface{ InvalidateUser(uid string) }
	// Resetter drops everything it keeps when the change feed lost track.
	Resetter interface{ Reset() }
	// AuthorizationScheme names the Authorization header form a backend
	// reads (e.g. `Basic base64(uid:password)`), for the error that
	// answers a header no one read.
	AuthorizationScheme interface{ AuthorizationScheme() string }
)

// Linker is the optional account linking of a backend whose users prove
// who they are to another party, in a browser (an institution's identity
// provider: the oidc backend). The identity it vouches for is linked to a
// Trellis account on first use; the service layer keeps the links and the
// logins in progress (service/federation.go), so any such backend plugs in
// by implementing this.
type Linker interface {
	Backend
	// Issuer names the party whose identities the backend vouches for.
	Issuer() string
	// AuthCodeURL returns where to send the browser, and the secret to keep
	// for Exchange (a PKCE verifier).
	AuthCodeURL(ctx context.Context, state, nonce string) (url, verifier string, err error)
	// Exchange turns what the party sent the browser back with into the
	// identity it vouches for. On a refusal, why says why, for the audit
	// record, and err is the unauthenticated error for the caller.
	Exchange(ctx context.Context, code, verifier, nonce string) (id *ExternalIdentity, why string, err error)
}

// ExternalIdentity is who a Linker's party vouched for.
type ExternalIdentity struct {
	Issuer, Subject   string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
}

// Use appends backends to the ones asked, in order, for a request that
// carries no bearer token. Call it while wiring, before serving.
func (a *Authenticator) Use(b ...Backend) {
	a.backends = append(a.backends, b...)
}

// Backends returns the names of the backends in use, in order.
func (a *Authenticator) Backends() []string {
	names := make([]string, len(a.backends))
	for i, b := range a.backends {
		names[i] = b.Name()
	}
	return names
}

// authenticateBackends asks each backend in turn. When one names a
// principal, the account is checked here, for every backend alike. ok is
// false when no backend read the request.
func (a *Authenticator) authenticateBackends(ctx context.Context, h http.Header) (p *Principal, ok bool, err error) {
	for _, b := range a.backends {
		p, err := b.Authenticate(ctx, h)
		if err != nil {
			return nil, true, err
		}
		if p == nil {
			continue
		}
		u, err := a.user(ctx, p.UID)
		if err != nil {
			return nil, true, err
		}
		if u == nil {
			return nil, true, domain.Unauthenticated("no active account %q", p.UID)
		}
		// The account as it is now: a lock, or a withdrawn admin flag,
		// counts at once, whatever the backend remembered.
		if err := u.CanLogIn(); err != nil {
			return nil, true, err
		}
		cp := *p
		cp.UID, cp.Admin, cp.Backend = u.UID, u.Admin, b.Name()
		return &cp, true, nil
	}
	return nil, false, nil
}

// Challenge is the WWW-Authenticate value of an unauthenticated answer:
// Bearer, then the scheme of each backend that reads an Authorization
// header.
func (a *Authenticator) Challenge() string {
	out := `Bearer realm="trellis"`
	for _, b := range a.backends {
		if s, ok := b.(AuthorizationScheme); ok {
			scheme, _, _ := strings.Cut(s.AuthorizationScheme(), " ")
			out += ", " + scheme + ` realm="trellis", charset="UTF-8"`
		}
	}
	return out
}

// malformedAuthorization answers an Authorization header that neither the
// built-in bearer path nor any backend read.
func (a *Authenticator) malformedAuthorization(header string) error {
	scheme, _, _ := strings.Cut(strings.TrimSpace(header), " ")
	if strings.EqualFold(scheme, "Basic") {
		// HTTP Basic carries a password: the local backend reads it, and
		// it is not enabled here.
		return domain.FailedPrecondition("password login is disabled on this server: HTTP Basic authentication is not accepted (the local authentication backend is not enabled)")
	}
	forms := []string{`"Bearer <access token>"`}
	for _, b := range a.backends {
		if s, ok := b.(AuthorizationScheme); ok {
			forms = append(forms, `"`+s.AuthorizationScheme()+`"`)
		}
	}
	return domain.Unauthenticated("malformed Authorization header: expected %s", strings.Join(forms, " or "))
}
