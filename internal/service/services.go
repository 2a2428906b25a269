package service

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Lifetimes of exchanged tokens: minutes, since they outlive the user's
// logout (they have no session to revoke).
const (
	ExchangedTokenDefaultTTL = 5 * time.Minute
	ExchangedTokenMaxTTL     = 15 * time.Minute
)

// exchangeLeeway tolerates clock skew between a service and Trellis in an
// assertion's exp.
const exchangeLeeway = 30 * time.Second

// servicePattern is a uid's rule: the name may appear where uids do.
var servicePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,31}$`)

func validateServiceName(name string) error {
	if name == "" {
		return domain.Invalid("name", "name.required", "a service needs a name")
	}
	if !servicePattern.MatchString(name) {
		return domain.Invalid("name", "name.format", "a service's name is 2 to 32 characters: lower-case letters, digits, '_' or '-', starting with a letter")
	}
	return nil
}

func serviceObject(name string) string { return auth.ActorOf(name) }

// ParseServiceKey reads an Ed25519 public key: PEM (PKIX, "PUBLIC KEY") or
// the 32 raw bytes in base64 (standard or URL-safe, padded or not).
func ParseServiceKey(field, s string) (ed25519.PublicKey, error) {
	bad := func(desc string) error { return domain.Invalid(field, field+".format", desc) }
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil || b.Type != "PUBLIC KEY" {
			return nil, bad("a PEM public key must be a \"PUBLIC KEY\" block")
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, bad("the PEM public key cannot be parsed")
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, bad(fmt.Sprintf("the public key is %T; only Ed25519 is accepted", k))
		}
		return pub, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, bad("an Ed25519 public key in PEM or as 32 bytes in base64 is expected")
}

// KeyFingerprint is "SHA256:" and the unpadded base64 of SHA-256 of the raw
// key, as OpenSSH writes fingerprints.
func KeyFingerprint(pub []byte) string {
	h := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}

// RegisterService registers a service with publicKey, or, when it is empty
// and generateSecret is set, with a fresh client secret, returned this once.
func (s *Federation) RegisterService(ctx context.Context, p *auth.Principal, name, publicKey string, generateSecret bool) (*store.Service, string, error) {
	if err := s.authorize(ctx, p, opServicesRegisterService, policy.None); err != nil {
		return nil, "", err
	}
	var vs domain.Violations
	_ = vs.Check(validateServiceName(name))
	v := &store.Service{Name: name, State: store.ServiceActive, CreatedAt: s.now()}
	var secret string
	switch {
	case publicKey != "" && generateSecret:
		vs.Add("credential", "credential.one", "give a public key or ask for a secret, not both")
	case publicKey != "":
		pub, err := ParseServiceKey("public_key", publicKey)
		if vs.Check(err) == nil && err == nil {
			v.PublicKey = pub
		}
	case generateSecret:
		secret, v.SecretHash = newSecret()
	default:
		vs.Add("credential", "credential.required", "a service needs a public key or a generated secret")
	}
	if err := vs.Err(); err != nil {
		return nil, "", err
	}
	detail := "client secret"
	if v.PublicKey != nil {
		detail = "public key " + KeyFingerprint(v.PublicKey)
	}
	err := s.update(ctx, &record{op: opServicesRegisterService.Name, actor: p, object: serviceObject(name), detail: detail}, func(tx store.Tx) error {
		if err := tx.Services().Create(ctx, v); err != nil {
			return err
		}
		// A replica may remember the name as unknown.
		return tx.Changes().Append(ctx, store.ChangeService, name)
	})
	if err != nil {
		return nil, "", err
	}
	return v, secret, nil
}

// ListServices lists the registered services.
func (s *Federation) ListServices(ctx context.Context, p *auth.Principal) ([]*store.Service, error) {
	if err := s.authorize(ctx, p, opServicesListServices, policy.None); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) ([]*store.Service, error) { return tx.Services().List(ctx) })
}

// SetServiceState enables or disables a service; a disabled service's
// exchanged tokens are refused by every replica within the change feed's
// interval, this one at once.
func (s *Federation) SetServiceState(ctx context.Context, p *auth.Principal, name, state string) (*store.Service, error) {
	if err := s.authorize(ctx, p, opServicesSetServiceState, policy.None); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, domain.Invalid("name", "name.required", "name the service")
	}
	if state != store.ServiceActive && state != store.ServiceDisabled {
		return nil, domain.Invalid("state", "state.unknown", "a service's state is active or disabled")
	}
	var out *store.Service
	err := s.update(ctx, &record{op: opServicesSetServiceState.Name, actor: p, object: serviceObject(name), detail: state}, func(tx store.Tx) (err error) {
		if out, err = tx.Services().SetState(ctx, name, state); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeService, name)
	})
	return out, err
}

// RemoveService removes a service; its exchanged tokens stop working.
func (s *Federation) RemoveService(ctx context.Context, p *auth.Principal, name string) error {
	if err := s.authorize(ctx, p, opServicesRemoveService, policy.None); err != nil {
		return err
	}
	if name == "" {
		return domain.Invalid("name", "name.required", "name the service")
	}
	return s.update(ctx, &record{op: opServicesRemoveService.Name, actor: p, object: serviceObject(name)}, func(tx store.Tx) error {
		if err := tx.Services().Delete(ctx, name); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeService, name)
	})
}

// Exchange is a token-exchange request (RFC 8693): a user's access token and
// the proof of the service that acts for the user, an assertion it signed
// or its client credentials.
type Exchange struct {
	SubjectToken   string
	ActorAssertion string
	ClientID       string
	ClientSecret   string
	// Lifetime nil means ExchangedTokenDefaultTTL.
	Lifetime *time.Duration
}

// Exchanged is the token an exchange issues.
type Exchanged struct {
	AccessToken string
	ExpiresAt   time.Time
	UID         string
	Service     string
}

// String keeps the token out of logs.
func (e *Exchanged) String() string { return fmt.Sprintf("Exchanged{%s for %s}", e.Service, e.UID) }

// exchangeRefusal is a refused exchange: the error for the caller and the
// reason for the audit record.
func exchangeRefusal(reason string, cause error, format string, args ...any) (error, string) {
	return &domain.Error{Code: domain.CodeUnauthenticated, Message: fmt.Sprintf(format, args...), Err: cause}, reason
}

// ExchangeToken checks the service's proof and the user's access token and
// issues an access token for the user with the service as its actor. Every
// refusal that names a service is audited, with the user when known. The
// caller p plays no part: the tokens and the proof are the credentials.
func (s *Federation) ExchangeToken(ctx context.Context, p *auth.Principal, x Exchange) (*Exchanged, error) {
	if err := s.authorize(ctx, p, opAuthExchangeToken, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	if x.SubjectToken == "" {
		vs.Add("subject_token", "subject_token.required", "the user's access token is required")
	}
	switch {
	case x.ActorAssertion == "" && x.ClientID == "":
		vs.Add("actor", "actor.required", "the service proves itself with actor_assertion or client_credentials")
	case x.ActorAssertion == "" && x.ClientSecret == "":
		vs.Add("client_credentials.client_secret", "client_secret.required", "client credentials need the secret")
	}
	ttl := ExchangedTokenDefaultTTL
	if x.Lifetime != nil {
		switch ttl = *x.Lifetime; {
		case ttl <= 0:
			vs.Add("lifetime", "lifetime.positive", "the lifetime must be longer than zero")
		case ttl > ExchangedTokenMaxTTL:
			vs.Add("lifetime", "lifetime.too_long", fmt.Sprintf("an exchanged token lives at most %d minutes", ExchangedTokenMaxTTL/time.Minute))
		}
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	name := x.ClientID
	if x.ActorAssertion != "" {
		iss, err := token.AssertionIssuer(x.ActorAssertion)
		if err != nil {
			// No service named: nothing worth a record.
			return nil, &domain.Error{Code: domain.CodeUnauthenticated, Message: err.Error(), Err: err}
		}
		name = iss
	}
	rec := &auth.Principal{Actor: auth.ActorOf(name)}
	object := serviceObject(name)
	refuse := func(err error, reason string) (*Exchanged, error) {
		s.auditRefusal(ctx, opAuthExchangeToken.Name, rec, object, err, reason)
		return nil, err
	}

	// The service and its proof.
	var (
		svc       *store.Service
		assertion *token.Assertion
	)
	if err := s.view(ctx, func(tx store.Tx) (err error) {
		svc, err = tx.Services().Get(ctx, name)
		return err
	}); err != nil && !domain.HasCode(err, domain.CodeNotFound) {
		return nil, err
	}
	switch {
	case svc == nil:
		return refuse(exchangeRefusal("service not registered", nil, "service %q is not registered", name))
	case svc.State != store.ServiceActive:
		return refuse(exchangeRefusal("service disabled", nil, "service %q is disabled", name))
	case x.ActorAssertion != "" && svc.PublicKey == nil:
		return refuse(exchangeRefusal("wrong credential kind", nil, "service %q proves itself with its client secret, not an assertion", name))
	case x.ActorAssertion == "" && svc.SecretHash == nil:
		return refuse(exchangeRefusal("wrong credential kind", nil, "service %q proves itself with an assertion signed by its key, not a client secret", name))
	case x.ActorAssertion != "":
		var err error
		if assertion, err = token.VerifyAssertion(x.ActorAssertion, svc.PublicKey, s.cfg.Issuer, now, exchangeLeeway); err != nil {
			return refuse(exchangeRefusal(assertionReason(err), err, "%s", err.Error()))
		}
	default:
		if subtle.ConstantTimeCompare(hashSecret(x.ClientSecret), svc.SecretHash) != 1 {
			return refuse(exchangeRefusal("client secret not valid", nil, "client secret of service %q not valid", name))
		}
	}

	// The user's token: valid now, its session live, its account active.
	v := token.NewVerifier(s.keys, token.VerifierOptions{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, Leeway: exchangeLeeway, Now: s.now, CacheSize: -1})
	claims, err := v.Verify(x.SubjectToken)
	if err != nil {
		return refuse(exchangeRefusal("subject token not valid", err, "subject_token: %s", err.Error()))
	}
	uid := claims.Subject
	rec.UID, object = uid, userObject(uid)
	if claims.Actor != "" {
		return refuse(exchangeRefusal("subject token is exchanged", nil, "subject_token was itself issued by an exchange: present the user's own access token"))
	}
	var u *domain.User
	var sess *domain.Session
	if err := s.view(ctx, func(tx store.Tx) (err error) {
		if u, err = tx.Users().Get(ctx, uid); err != nil {
			return err
		}
		sess, err = tx.Sessions().Get(ctx, claims.SessionID)
		return err
	}); err != nil && !domain.HasCode(err, domain.CodeNotFound) {
		return nil, err
	}
	switch {
	case u == nil:
		return refuse(exchangeRefusal("account not found", nil, "subject_token: account %q not found", uid))
	case u.State != domain.UserActive:
		return refuse(exchangeRefusal("account "+string(u.State), nil, "account %q is %s: its tokens cannot be exchanged", uid, u.State))
	case sess == nil || !sess.Live(now) || sess.UID != uid:
		return refuse(exchangeRefusal("subject session ended", nil, "subject_token: the user's session was revoked or expired"))
	}

	exp := now.Add(ttl)
	jti := newID()
	access, err := token.Sign(s.keys, token.Claims{
		Issuer: s.cfg.Issuer, Subject: uid, Audience: []string{s.cfg.Audience},
		ID: jti, IssuedAt: now, NotBefore: now, Expiry: exp, Actor: auth.ActorOf(name),
	})
	if err != nil {
		return nil, domain.Internal(err, "signing the access token failed")
	}
	detail := fmt.Sprintf("token %s expires %s", jti, exp.UTC().Format(time.RFC3339))
	err = s.update(ctx, &record{op: opAuthExchangeToken.Name, actor: rec, object: object, detail: detail}, func(tx store.Tx) error {
		if assertion == nil {
			return nil
		}
		// An assertion proves the service once: a replay within its few
		// minutes of life is refused.
		return tx.Services().UseAssertion(ctx, name, assertion.ID, assertion.Expiry.Add(exchangeLeeway))
	})
	if domain.HasCode(err, domain.CodeAlreadyExists) {
		return refuse(exchangeRefusal("assertion replayed", nil, "actor assertion already used (jti %q): sign a new one for every exchange", assertion.ID))
	}
	if err != nil {
		return nil, err
	}
	return &Exchanged{AccessToken: access, ExpiresAt: exp, UID: uid, Service: name}, nil
}

// assertionReason files an assertion's refusal for the audit record.
func assertionReason(err error) string {
	for _, r := range []error{token.ErrAssertionSignature, token.ErrAssertionAudience, token.ErrAssertionExpired, token.ErrAssertionLifetime} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return token.ErrAssertionMalformed.Error()
}
