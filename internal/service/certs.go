package service

import (
	"context"
	"crypto/x509"
	"github.com/trellis-testbed/trellis/internal/policy"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// CertBindingTTL bounds how long a client certificate stands for a session
// (DETER's certificate binding: 24 hours).
const CertBindingTTL = 24 * time.Hour

// ServerCertificate returns the TLS certificate chain the server presents
// (empty without TLS) and the Trellis CA certificate, both PEM.
func (s *Accounts) ServerCertificate(ctx context.Context, p *auth.Principal) (chainPEM, caPEM string, err error) {
	if err := s.authorize(ctx, p, opApiInfoGetServerCertificate, policy.None); err != nil {
		return "", "", err
	}
	if s.x509CA == nil {
		return "", "", domain.FailedPrecondition("this server has no X.509 certificate authority")
	}
	if s.serverCert != nil {
		chainPEM = string(s.serverCert())
	}
	return chainPEM, string(s.x509CA.CertificatePEM()), nil
}

// UnboundClientCertificate issues a client certificate bound to nobody: it
// authenticates nothing until a login made with it binds it.
func (s *Accounts) UnboundClientCertificate(ctx context.Context, p *auth.Principal) (*x509ca.Issued, error) {
	if err := s.authorize(ctx, p, opApiInfoGetClientCertificate, policy.None); err != nil {
		return nil, err
	}
	if s.x509CA == nil {
		return nil, domain.FailedPrecondition("this server has no X.509 certificate authority")
	}
	iss, err := s.x509CA.IssueClient(x509ca.UnboundCN)
	if err != nil {
		return nil, domain.Internal(err, "issuing a client certificate failed")
	}
	return iss, nil
}

// checkLoginCert refuses a login made with a Trellis client certificate
// issued to another user (an unbound one may be bound by anyone who holds
// its key).
func checkLoginCert(cert *x509.Certificate, uid string) error {
	if cert == nil {
		return nil
	}
	if cn := cert.Subject.CommonName; cn != x509ca.UnboundCN && cn != uid {
		return domain.Unauthenticated("the client certificate this login was made with was issued to another user: log in without it")
	}
	return nil
}

// bindClientCert binds, in the login's transaction, a client certificate to
// the session just opened: the one the login was made with over mutual
// TLS, or else, when issue is set, a fresh one it returns in toks. It
// returns the audit detail.
func (s *Accounts) bindClientCert(ctx context.Context, tx store.Tx, toks *Tokens, uid string, now time.Time, issue bool) (string, error) {
	cert := auth.ClientCertFrom(ctx)
	if cert == nil && !issue {
		return "", nil
	}
	if s.x509CA == nil {
		return "", domain.FailedPrecondition("this server has no X.509 certificate authority: log in without issue_client_certificate")
	}
	detail := "client certificate bound"
	if cert == nil {
		iss, err := s.x509CA.IssueClient(uid)
		if err != nil {
			return "", domain.Internal(err, "issuing a client certificate failed")
		}
		cert, toks.ClientCertificatePEM, toks.ClientKeyPEM = iss.Cert, string(iss.CertPEM), string(iss.KeyPEM)
		detail = "client certificate issued"
	}
	fp := x509ca.Fingerprint(cert)
	exp := min64(min64(now.Add(CertBindingTTL), cert.NotAfter), toks.SessionExpiresAt)
	if err := tx.CertBindings().Bind(ctx, &store.CertBinding{Fingerprint: fp, SessionID: toks.SessionID, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return "", err
	}
	if err := tx.Changes().Append(ctx, store.ChangeCertBinding, fp); err != nil {
		return "", err
	}
	return detail + " (sha256 " + fp + ")", nil
}

// CARotation is what a rotation of the X.509 CA leaves.
type CARotation struct {
	RootsPEM             string
	Issuing              *x509.Certificate
	PreviousTrustedUntil time.Time
}

// RotateCertificateAuthority rotates the X.509 CA (x509ca.CA.Rotate) in one
// transaction with its audit record; this replica takes the new root at
// once, the others on their next reload (within a minute).
func (s *Accounts) RotateCertificateAuthority(ctx context.Context, p *auth.Principal) (*CARotation, error) {
	if err := s.authorize(ctx, p, opAdminRotateCertificateAuthority, policy.None); err != nil {
		return nil, err
	}
	if s.x509CA == nil {
		return nil, domain.FailedPrecondition("this server has no X.509 certificate authority")
	}
	var root *x509.Certificate
	rec := &record{op: opAdminRotateCertificateAuthority.Name, actor: p, object: "x509_ca"}
	if err := s.update(ctx, rec, func(tx store.Tx) error {
		var err error
		if root, err = s.x509CA.Rotate(ctx, tx); err != nil {
			return err
		}
		rec.detail = "issuing root now " + root.Subject.CommonName
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := s.x509CA.Reload(ctx); err != nil {
		return nil, err
	}
	return &CARotation{RootsPEM: string(s.x509CA.CertificatePEM()), Issuing: root, PreviousTrustedUntil: s.now().Add(x509ca.PreviousTrust)}, nil
}
