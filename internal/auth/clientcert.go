package auth

import (
	"context"
	"crypto/x509"
	"net/http"

	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type certKey struct{}

// WithClientCert returns ctx carrying the request's TLS client certificate,
// one the TLS handshake verified against the Trellis CA.
func WithClientCert(ctx context.Context, cert *x509.Certificate) context.Context {
	return context.WithValue(ctx, certKey{}, cert)
}

// ClientCertFrom returns the verified TLS client certificate in ctx, or nil.
func ClientCertFrom(ctx context.Context) *x509.Certificate {
	c, _ := ctx.Value(certKey{}).(*x509.Certificate)
	return c
}

// ClientCertMiddleware puts the request's client certificate in its
// context, when the TLS handshake verified one (tls.Config.ClientAuth
// VerifyClientCertIfGiven with the Trellis CA as ClientCAs: a certificate
// of another authority, or an expired one, fails the handshake).
func ClientCertMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			r = r.WithContext(WithClientCert(r.Context(), r.TLS.VerifiedChains[0][0]))
		}
		next.ServeHTTP(w, r)
	})
}

// CertRefusal is a client certificate that the handshake accepted but that
// names no live session: unbound, its binding expired, or its session
// ended (logout). Public operations go on anonymously, so that a login may
// bind the certificate again; the rest are refused with Err.
type CertRefusal struct {
	Err         *domain.Error
	Fingerprint string
}

func (e *CertRefusal) Error() string { return e.Err.Error() }
func (e *CertRefusal) Unwrap() error { return e.Err }

func certRefused(fp, msg string) error {
	return &CertRefusal{Err: domain.Unauthenticated("%s", msg), Fingerprint: fp}
}

// InvalidateCertBinding drops what is known of a certificate's binding.
func (a *Authenticator) InvalidateCertBinding(fingerprint string) {
	a.mu.Lock()
	a.gen++
	a.bindings.remove(fingerprint)
	a.mu.Unlock()
}

// authenticateCert resolves the request's client certificate, through the
// session it is bound to, to a principal; nil without a certificate. The
// session is checked on every request, so a logout ends the certificate.
func (a *Authenticator) authenticateCert(ctx context.Context) (*Principal, error) {
	cert := ClientCertFrom(ctx)
	if cert == nil {
		return nil, nil
	}
	fp := x509ca.Fingerprint(cert)
	a.mu.RLock()
	b, ok := a.bindings.get(fp)
	a.mu.RUnlock()
	if !ok {
		var err error
		if b, err = load(a, ctx, a.bindings, fp, func(tx store.Tx) (*store.CertBinding, error) {
			return tx.CertBindings().Get(ctx, fp)
		}); err != nil {
			return nil, err
		}
	}
	now := a.now()
	if b == nil {
		return nil, certRefused(fp, "client certificate is not bound to a session: log in with it (trellis cert get issues a bound one)")
	}
	if !now.Before(b.ExpiresAt) || now.After(cert.NotAfter) {
		return nil, certRefused(fp, "client certificate binding expired: log in again")
	}
	sess, err := a.session(ctx, b.SessionID)
	if err != nil {
		return nil, err
	}
	if sess == nil || !sess.Live(now) {
		return nil, certRefused(fp, "client certificate's session was revoked or expired (logged out): log in again")
	}
	if cn := cert.Subject.CommonName; cn != x509ca.UnboundCN && cn != sess.UID {
		return nil, certRefused(fp, "client certificate was issued to another user")
	}
	u, err := a.user(ctx, sess.UID)
	if err != nil {
		return nil, err
	}
	if u == nil || u.State != domain.UserActive {
		return nil, domain.Unauthenticated("account is not active")
	}
	return &Principal{
		UID:            u.UID,
		Admin:          u.Admin,
		SessionID:      sess.ID,
		SessionExpires: sess.ExpiresAt,
		TokenExpires:   b.ExpiresAt,
	}, nil
}
