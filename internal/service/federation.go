package service

import (
	"context"
	"crypto/subtle"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
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

// PortalExternalLoginURL is where a login the portal started through the
// identity provider comes back to (the portal's PortalExternalLoginPath on
// the server's public URL).
func PortalExternalLoginURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + PortalExternalLoginPath
}

// validateReturnTo allows an http URL on a loopback address only: the
// finish code must reach the browser's own machine, never a party that
// could have started the login (RFC 8252's loopback redirect).
// The one other place it may go is this server's own portal, which holds
// the login's poll secret in the browser's cookie (PortalExternalLoginURL).
func (s *Federation) validateReturnTo(raw string) error {
	if raw == "" || raw == PortalExternalLoginURL(s.cfg.PublicURL) {
		return nil
	}
	u, err := url.Parse(raw)
	if err == nil && u.Scheme == "http" && u.User == nil && u.Fragment == "" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return domain.Invalid("return_to", "return_to.loopback", "return_to is an http URL on a loopback address (127.0.0.1, [::1] or localhost) that the client listens on, or empty")
}

// StartExternalLogin begins a login through the identity provider. With
// link, the caller (logged in with a session) links the identity the
// provider vouches for to their own account.
func (s *Federation) StartExternalLogin(ctx context.Context, p *auth.Principal, link bool, returnTo string) (*ExternalLoginStart, error) {
	if err := s.authorize(ctx, p, opLoginStartLogin, policy.None); err != nil {
		return nil, err
	}
	if s.idp == nil {
		return nil, errNoIdentityProvider
	}
	if err := s.validateReturnTo(returnTo); err != nil {
		return nil, err
	}
	l := &store.ExternalLogin{ID: newID(), Nonce: newID(), ReturnTo: returnTo}
	if link {
		// The operation is public (a login starts anonymously); a link is
		// the caller's own and needs the caller's login session.
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
	if err := s.update(ctx, &record{op: opLoginStartLogin.Name, actor: p, object: "external_login:" + l.ID, detail: detail}, func(tx store.Tx) error {
		return tx.Federation().CreateLogin(ctx, l)
	}); err != nil {
		return nil, err
	}
	return &ExternalLoginStart{ID: l.ID, AuthorizationURL: authURL, PollSecret: poll, ExpiresAt: l.ExpiresAt}, nil
}

// ExternalStep is where a login stands after a step in the browser.
type ExternalStep struct {
	LoginID string
	// Identity is who the provider vouched for.
	Issuer, Subject, Email string
	// UID is the account the login ends in. Empty when the identity is
	// linked to none yet: then LinkToken is what the link form carries.
	UID       string
	LinkToken string
	// Link says the login links the identity to UID (the caller asked).
	Link bool
	// FinishCode, set once UID is, is what the browser hands the client:
	// to ReturnTo, or shown when ReturnTo is empty.
	FinishCode string
	ReturnTo   string
}

// liveLogin returns a login that has not expired.
func (s *Federation) liveLogin(ctx context.Context, read func(tx store.Tx) (*store.ExternalLogin, error)) (*store.ExternalLogin, error) {
	l, err := viewOf(ctx, s.base, read)
	if domain.HasCode(err, domain.CodeNotFound) || (err == nil && !s.now().Before(l.ExpiresAt)) {
		return nil, errExternalLoginGone
	}
	return l, err
}

// CompleteExternalLogin takes the browser back from the provider: it
// redeems the code and resolves the account: the one the identity is
// linked to, or the caller's who asked to link it (linked only when the
// login is collected, by whoever holds the finish code). An identity linked
// to no account waits for the link form (LinkExternalLogin).
func (s *Federation) CompleteExternalLogin(ctx context.Context, p *auth.Principal, state, code string) (*ExternalStep, error) {
	if err := s.authorize(ctx, p, opExternalCallback, policy.None); err != nil {
		return nil, err
	}
	if s.idp == nil {
		return nil, errNoIdentityProvider
	}
	l, err := s.liveLogin(ctx, func(tx store.Tx) (*store.ExternalLogin, error) {
		return tx.Federation().GetLoginByState(ctx, hashSecret(state))
	})
	if err != nil {
		s.auditRefusal(ctx, OpExternalCallback, nil, "", err, "unknown or expired state")
		return nil, err
	}
	object := "external_login:" + l.ID
	if l.Subject != "" {
		err := domain.AlreadyExists("this login came back from the identity provider already: start again")
		s.auditRefusal(ctx, OpExternalCallback, nil, object, err, "replayed callback")
		return nil, err
	}
	id, why, err := s.idp.Exchange(ctx, code, l.Verifier, l.Nonce)
	if err != nil {
		s.auditRefusal(ctx, OpExternalCallback, nil, object, err, why)
		return nil, err
	}
	var out *ExternalStep
	rec := &record{op: OpExternalCallback, object: object}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		// The body may run again (a serialization retry): it starts from
		// what was read, never from a previous attempt's results.
		out = &ExternalStep{LoginID: l.ID, Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, ReturnTo: l.ReturnTo}
		res := *l
		rec.actor, rec.detail = nil, "identity "+id.Subject+" at "+id.Issuer
		if err := tx.Federation().ClaimCallback(ctx, l.ID, id.Issuer, id.Subject, id.Email); err != nil {
			return err
		}
		link, err := tx.Federation().GetLink(ctx, id.Issuer, id.Subject)
		switch {
		case err == nil && l.LinkUID != "" && link.UID != l.LinkUID:
			return domain.AlreadyExists("this identity at %s is linked to another account: that account must unlink it first", id.Issuer)
		case err == nil:
			res.UID = link.UID
			rec.detail += "; linked to " + link.UID
		case !domain.HasCode(err, domain.CodeNotFound):
			return err
		case l.LinkUID != "":
			res.UID, out.Link = l.LinkUID, true
			rec.detail += "; to be linked to " + l.LinkUID + " when the login is collected"
		default:
			// First use: the user proves which account is theirs.
			out.LinkToken, res.LinkHash = newSecret()
			rec.detail += "; linked to no account yet"
		}
		if res.UID != "" {
			out.UID = res.UID
			out.FinishCode, res.FinishHash = newSecret()
			rec.actor = &auth.Principal{UID: res.UID}
		}
		return tx.Federation().UpdateLogin(ctx, &res)
	})
	if err != nil {
		s.auditRefusal(ctx, OpExternalCallback, nil, object, err, rec.detail)
		return nil, err
	}
	return out, nil
}

// LinkExternalLogin is the first use of an identity: the user names the
// Trellis account it belongs to and proves it with the account's password
// (the login back-off and audit are Auth.Login's). The identity is linked
// and the login ends in that account.
func (s *Federation) LinkExternalLogin(ctx context.Context, p *auth.Principal, loginID, linkToken, uid, pw string) (*ExternalStep, error) {
	if err := s.authorize(ctx, p, opExternalLink, policy.None); err != nil {
		return nil, err
	}
	if err := s.accounts.passwordLoginAllowed(); err != nil {
		return nil, err
	}
	l, err := s.liveLogin(ctx, func(tx store.Tx) (*store.ExternalLogin, error) { return tx.Federation().GetLogin(ctx, loginID) })
	if err == nil && (l.LinkHash == nil || subtle.ConstantTimeCompare(hashSecret(linkToken), l.LinkHash) != 1) {
		err = errExternalLoginGone
	}
	if err != nil {
		s.auditRefusal(ctx, OpExternalLink, nil, "external_login:"+loginID, err, "link form")
		return nil, err
	}
	if err := domain.ValidateUID("uid", uid); err != nil {
		return nil, err
	}
	now := s.now()
	lg, err := s.accounts.checkPassword(ctx, OpExternalLink, uid, pw, now)
	if err != nil {
		return nil, err
	}
	if err := lg.user.CanLogIn(); err != nil {
		s.auditRefusal(ctx, OpExternalLink, &auth.Principal{UID: uid}, userObject(uid), err, "account state "+string(lg.user.State))
		return nil, err
	}
	var out *ExternalStep
	rec := &record{op: OpExternalLink, actor: &auth.Principal{UID: lg.user.UID}, object: userObject(lg.user.UID), detail: "linked identity " + l.Subject + " at " + l.Issuer}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		out = &ExternalStep{LoginID: l.ID, Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, UID: lg.user.UID, ReturnTo: l.ReturnTo}
		res := *l
		if err := s.accounts.resetFailures(ctx, tx, lg.user.UID); err != nil {
			return err
		}
		if err := tx.Federation().CreateLink(ctx, &store.IdentityLink{Issuer: l.Issuer, Subject: l.Subject, UID: lg.user.UID, Email: l.Email, CreatedAt: now}); err != nil {
			return err
		}
		out.FinishCode, res.FinishHash = newSecret()
		res.UID, res.LinkHash = lg.user.UID, nil
		return tx.Federation().UpdateLogin(ctx, &res)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrExternalLoginPending answers FinishExternalLogin while the browser has
// not finished.
var ErrExternalLoginPending = domain.FailedPrecondition("pending: the login is not finished in the browser yet")

// ExternalFinish is what collecting a login hands over: a session, or for
// a link (Tokens nil) the link made.
type ExternalFinish struct {
	Tokens *Tokens
	Link   *store.IdentityLink
}

// FinishExternalLogin hands a login over, once, to the client that holds
// both its poll secret and the finish code the browser got: the session it
// ended in, or for a link the link (and no session: the caller keeps
// theirs). The caller p plays no part: the secrets are the credentials.
func (s *Federation) FinishExternalLogin(ctx context.Context, p *auth.Principal, loginID, pollSecret, finishCode string, issueCert bool) (*ExternalFinish, error) {
	if err := s.authorize(ctx, p, opLoginFinishLogin, policy.None); err != nil {
		return nil, err
	}
	if s.idp == nil {
		return nil, errNoIdentityProvider
	}
	var vs domain.Violations
	if loginID == "" {
		vs.Add("login_id", "login_id.required", "the login_id StartLogin returned")
	}
	if pollSecret == "" {
		vs.Add("poll_secret", "poll_secret.required", "the poll_secret StartLogin returned")
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	l, err := s.liveLogin(ctx, func(tx store.Tx) (*store.ExternalLogin, error) { return tx.Federation().GetLogin(ctx, loginID) })
	if err == nil && subtle.ConstantTimeCompare(hashSecret(pollSecret), l.PollHash) != 1 {
		err = errExternalLoginGone
	}
	if err != nil {
		return nil, err
	}
	if l.UID == "" || l.FinishHash == nil {
		return nil, ErrExternalLoginPending
	}
	if finishCode == "" {
		return nil, domain.Invalid("finish_code", "finish_code.required", "the code the browser handed back when the login was done")
	}
	if subtle.ConstantTimeCompare(hashSecret(finishCode), l.FinishHash) != 1 {
		err := domain.PermissionDenied("finish_code is not this login's")
		s.auditRefusal(ctx, opLoginFinishLogin.Name, nil, "external_login:"+l.ID, err, "wrong finish code")
		return nil, err
	}
	link := &store.IdentityLink{Issuer: l.Issuer, Subject: l.Subject, UID: l.UID, Email: l.Email, CreatedAt: s.now()}
	if l.LinkUID != "" {
		// A link asked for by a logged-in user is made now, by the holder
		// of the finish code: the browser that proved the identity.
		err := s.update(ctx, &record{op: opLoginFinishLogin.Name, actor: &auth.Principal{UID: l.LinkUID}, object: userObject(l.LinkUID), detail: "linked identity " + l.Subject + " at " + l.Issuer}, func(tx store.Tx) error {
			if err := tx.Federation().DeleteLogin(ctx, l.ID); err != nil {
				return err
			}
			existing, err := tx.Federation().GetLink(ctx, l.Issuer, l.Subject)
			switch {
			case err == nil && existing.UID == l.LinkUID:
				*link = *existing // linked already: nothing to do
				return nil
			case err == nil:
				return domain.AlreadyExists("this identity at %s is linked to another account: that account must unlink it first", l.Issuer)
			case !domain.HasCode(err, domain.CodeNotFound):
				return err
			}
			return tx.Federation().CreateLink(ctx, link)
		})
		if err != nil {
			return nil, err
		}
		return &ExternalFinish{Link: link}, nil
	}
	var u *domain.User
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().Get(ctx, l.UID)
		return err
	}); err != nil {
		return nil, err
	}
	lg := &login{op: opLoginFinishLogin.Name, user: u, at: s.now(), detail: "through identity " + l.Subject + " at " + l.Issuer, issueCert: issueCert,
		also: func(tx store.Tx) error { return tx.Federation().DeleteLogin(ctx, l.ID) }}
	toks, err := s.accounts.finishLogin(ctx, lg)
	if err != nil {
		return nil, err
	}
	return &ExternalFinish{Tokens: toks, Link: link}, nil
}

// ListIdentityLinks lists the caller's linked identities.
func (s *Federation) ListIdentityLinks(ctx context.Context, p *auth.Principal) ([]*store.IdentityLink, error) {
	if err := s.authorize(ctx, p, opLoginListLinks, policy.None); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) ([]*store.IdentityLink, error) { return tx.Federation().ListLinks(ctx, p.UID) })
}

// UnlinkIdentity removes one of the caller's links.
func (s *Federation) UnlinkIdentity(ctx context.Context, p *auth.Principal, issuer, subject string) error {
	if err := s.authorize(ctx, p, opLoginUnlink, policy.None); err != nil {
		return err
	}
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
	return s.update(ctx, &record{op: opLoginUnlink.Name, actor: p, object: userObject(p.UID), detail: "identity " + subject + " at " + issuer}, func(tx store.Tx) error {
		return tx.Federation().DeleteLink(ctx, p.UID, issuer, subject)
	})
}
