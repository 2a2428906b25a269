package service

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

var (
	opStartExternalLogin  = policy.Op(oidcv1connect.LoginStartLoginProcedure)
	opFinishExternalLogin = policy.Op(oidcv1connect.LoginFinishLoginProcedure)
	opUnlinkIdentity      = policy.Op(oidcv1connect.LoginUnlinkProcedure)
)

// The browser's steps of an external login are not calls of the contract;
// their audit records carry these names.
const (
	OpExternalCallback = "oidc_backend.callback" // the provider sent the browser back
	OpExternalLink     = "oidc_backend.link"     // first use: the identity linked by password
)

// ExternalLoginTTL bounds a login through the identity provider, from its
// start to the collection of its session.
const ExternalLoginTTL = 10 * time.Minute

var errNoIdentityProvider = domain.FailedPrecondition("the oidc authentication backend is not enabled on this server (--auth-backends)")

// errExternalLoginGone answers a login that is over, never existed, or is
// not the caller's (a wrong poll secret learns nothing more).
var errExternalLoginGone = domain.NotFound("login not found (it expired, or was used): start again")

// ExternalLoginStart is a login through the identity provider, begun.
type ExternalLoginStart struct {
	ID               string
	AuthorizationURL string
	PollSecret       string
	ExpiresAt        time.Time
}

// StartExternalLogin begins a login through the identity provider. With
// link, the caller (logged in with a session) links the identity the
// provider vouches for to their own account.
func (s *Service) StartExternalLogin(ctx context.Context, p *auth.Principal, link bool) (*ExternalLoginStart, error) {
	if s.idp == nil {
		return nil, errNoIdentityProvider
	}
	l := &store.ExternalLogin{ID: newID(), Nonce: newID()}
	if link {
		switch {
		case p == nil:
			return nil, domain.Unauthenticated("log in first to link an identity to your account")
		case p.SessionID == "" || p.Actor != "":
			return nil, domain.PermissionDenied("linking an identity takes a login session, not an API token, a service's token or other credentials")
		}
		l.LinkUID = p.UID
	}
	state, stateHash := newSecret()
	poll, pollHash := newSecret()
	l.StateHash, l.PollHash = stateHash, pollHash
	authURL, verifier, err := s.idp.AuthCodeURL(ctx, state, l.Nonce)
	if err != nil {
		return nil, err
	}
	l.Verifier = verifier
	now := s.now()
	l.CreatedAt, l.ExpiresAt = now, now.Add(ExternalLoginTTL)
	detail := "login through " + s.idp.Issuer()
	if link {
		detail = "link an identity at " + s.idp.Issuer()
	}
	if err := s.update(ctx, &record{op: opStartExternalLogin, actor: p, object: "external_login:" + l.ID, detail: detail}, func(tx store.Tx) error {
		return tx.Federation().CreateLogin(ctx, l)
	}); err != nil {
		return nil, err
	}
	return &ExternalLoginStart{ID: l.ID, AuthorizationURL: authURL, PollSecret: poll, ExpiresAt: l.ExpiresAt}, nil
}

// ExternalCallback is where a login stands once the provider has sent the
// browser back.
type ExternalCallback struct {
	LoginID string
	// Identity is who the provider vouched for.
	Issuer, Subject, Email string
	// UID is the account the login ended in; empty when the identity is
	// linked to none yet: then LinkToken is what the link form carries.
	UID       string
	LinkToken string
}

// liveLogin returns a login that has not expired.
func (s *Service) liveLogin(ctx context.Context, read func(tx store.Tx) (*store.ExternalLogin, error)) (*store.ExternalLogin, error) {
	var l *store.ExternalLogin
	err := s.view(ctx, func(tx store.Tx) error {
		var err error
		l, err = read(tx)
		return err
	})
	if domain.HasCode(err, domain.CodeNotFound) || (err == nil && !s.now().Before(l.ExpiresAt)) {
		return nil, errExternalLoginGone
	}
	return l, err
}

// CompleteExternalLogin takes the browser back from the provider: it
// redeems the code, and ends the login in the account the identity is
// linked to, or links it to the account that asked to link. An identity
// linked to no account waits for the link form (LinkExternalLogin).
func (s *Service) CompleteExternalLogin(ctx context.Context, state, code string) (*ExternalCallback, error) {
	if s.idp == nil {
		return nil, errNoIdentityProvider
	}
	l, err := s.liveLogin(ctx, func(tx store.Tx) (*store.ExternalLogin, error) {
		return tx.Federation().GetLoginByState(ctx, hashSecret(state))
	})
	if err != nil {
		s.AuditRefusal(ctx, OpExternalCallback, nil, "", err, "unknown or expired state")
		return nil, err
	}
	object := "external_login:" + l.ID
	if l.Subject != "" {
		err := domain.FailedPrecondition("this login came back from the identity provider already: start again")
		s.AuditRefusal(ctx, OpExternalCallback, nil, object, err, "replayed callback")
		return nil, err
	}
	id, why, err := s.idp.Exchange(ctx, code, l.Verifier, l.Nonce)
	if err != nil {
		s.AuditRefusal(ctx, OpExternalCallback, nil, object, err, why)
		return nil, err
	}
	l.Issuer, l.Subject, l.Email = id.Issuer, id.Subject, id.Email
	out := &ExternalCallback{LoginID: l.ID, Issuer: id.Issuer, Subject: id.Subject, Email: id.Email}
	rec := &record{op: OpExternalCallback, object: object, detail: "identity " + id.Subject + " at " + id.Issuer}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		link, err := tx.Federation().GetLink(ctx, id.Issuer, id.Subject)
		switch {
		case err == nil && l.LinkUID != "" && link.UID != l.LinkUID:
			return domain.AlreadyExists("this identity at %s is linked to another account: that account must unlink it first", id.Issuer)
		case err == nil:
			l.UID = link.UID
			rec.detail += "; linked to " + link.UID
		case !domain.HasCode(err, domain.CodeNotFound):
			return err
		case l.LinkUID != "":
			if err := tx.Federation().CreateLink(ctx, &store.IdentityLink{Issuer: id.Issuer, Subject: id.Subject, UID: l.LinkUID, Email: id.Email, CreatedAt: s.now()}); err != nil {
				return err
			}
			l.UID = l.LinkUID
			rec.detail += "; linked now to " + l.LinkUID
		default:
			// First use: the user proves which account is theirs.
			out.LinkToken, l.LinkHash = newSecret()
			rec.detail += "; linked to no account yet"
		}
		rec.actor = &auth.Principal{UID: l.UID}
		return tx.Federation().UpdateLogin(ctx, l)
	})
	if err != nil {
		s.AuditRefusal(ctx, OpExternalCallback, nil, object, err, rec.detail)
		return nil, err
	}
	out.UID = l.UID
	return out, nil
}

// LinkExternalLogin is the first use of an identity: the user names the
// Trellis account it belongs to and proves it with the account's password
// (the login back-off and audit are Auth.Login's). The identity is linked
// and the login ends in that account.
func (s *Service) LinkExternalLogin(ctx context.Context, loginID, linkToken, uid, pw string) error {
	if err := s.passwordLoginAllowed(); err != nil {
		return err
	}
	l, err := s.liveLogin(ctx, func(tx store.Tx) (*store.ExternalLogin, error) { return tx.Federation().GetLogin(ctx, loginID) })
	if err == nil && (l.LinkHash == nil || subtle.ConstantTimeCompare(hashSecret(linkToken), l.LinkHash) != 1) {
		err = errExternalLoginGone
	}
	if err != nil {
		s.AuditRefusal(ctx, OpExternalLink, nil, "external_login:"+loginID, err, "link form")
		return err
	}
	now := s.now()
	lg, err := s.checkPassword(ctx, OpExternalLink, uid, pw, now)
	if err != nil {
		return err
	}
	if err := lg.user.CanLogIn(); err != nil {
		s.AuditRefusal(ctx, OpExternalLink, &auth.Principal{UID: uid}, userObject(uid), err, "account state "+string(lg.user.State))
		return err
	}
	rec := &record{op: OpExternalLink, actor: &auth.Principal{UID: uid}, object: userObject(uid), detail: "linked identity " + l.Subject + " at " + l.Issuer}
	return s.update(ctx, rec, func(tx store.Tx) error {
		if err := tx.LoginFailures().Reset(ctx, uid); err != nil {
			return err
		}
		if err := tx.Federation().CreateLink(ctx, &store.IdentityLink{Issuer: l.Issuer, Subject: l.Subject, UID: uid, Email: l.Email, CreatedAt: now}); err != nil {
			return err
		}
		l.UID, l.LinkHash = uid, nil
		return tx.Federation().UpdateLogin(ctx, l)
	})
}

// ErrExternalLoginPending answers FinishExternalLogin while the browser has
// not finished: the client polls.
var ErrExternalLoginPending = domain.FailedPrecondition("pending: the login is not finished in the browser yet")

// FinishExternalLogin hands the session a login ended in to the client
// that started it, once.
func (s *Service) FinishExternalLogin(ctx context.Context, loginID, pollSecret string, issueCert bool) (*Tokens, *store.IdentityLink, error) {
	if s.idp == nil {
		return nil, nil, errNoIdentityProvider
	}
	var vs domain.Violations
	if loginID == "" {
		vs.Add("login_id", "login_id.required", "the login_id StartLogin returned")
	}
	if pollSecret == "" {
		vs.Add("poll_secret", "poll_secret.required", "the poll_secret StartLogin returned")
	}
	if err := vs.Err(); err != nil {
		return nil, nil, err
	}
	l, err := s.liveLogin(ctx, func(tx store.Tx) (*store.ExternalLogin, error) { return tx.Federation().GetLogin(ctx, loginID) })
	if err == nil && subtle.ConstantTimeCompare(hashSecret(pollSecret), l.PollHash) != 1 {
		err = errExternalLoginGone
	}
	if err != nil {
		return nil, nil, err
	}
	if l.UID == "" {
		return nil, nil, ErrExternalLoginPending
	}
	var u *domain.User
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().Get(ctx, l.UID)
		return err
	}); err != nil {
		return nil, nil, err
	}
	lg := &login{op: opFinishExternalLogin, user: u, at: s.now(), detail: "through identity " + l.Subject + " at " + l.Issuer, issueCert: issueCert,
		also: func(tx store.Tx) error { return tx.Federation().DeleteLogin(ctx, l.ID) }}
	toks, err := s.finishLogin(ctx, lg)
	if err != nil {
		return nil, nil, err
	}
	return toks, &store.IdentityLink{Issuer: l.Issuer, Subject: l.Subject, UID: l.UID, Email: l.Email}, nil
}

// ListIdentityLinks lists the caller's linked identities.
func (s *Service) ListIdentityLinks(ctx context.Context, p *auth.Principal) ([]*store.IdentityLink, error) {
	var out []*store.IdentityLink
	err := s.view(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Federation().ListLinks(ctx, p.UID)
		return err
	})
	return out, err
}

// UnlinkIdentity removes one of the caller's links.
func (s *Service) UnlinkIdentity(ctx context.Context, p *auth.Principal, issuer, subject string) error {
	var vs domain.Violations
	if issuer == "" {
		vs.Add("issuer", "issuer.required", "name the identity provider's issuer")
	}
	if subject == "" {
		vs.Add("subject", "subject.required", "name the identity's subject")
	}
	if err := vs.Err(); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opUnlinkIdentity, actor: p, object: userObject(p.UID), detail: "identity " + subject + " at " + issuer}, func(tx store.Tx) error {
		return tx.Federation().DeleteLink(ctx, p.UID, issuer, subject)
	})
}
