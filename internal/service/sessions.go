package service

import (
	"context"
	"crypto/subtle"
	"fmt"
	"github.com/trellis-testbed/trellis/internal/policy"
	"time"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Tokens are what a login or a refresh hands out.
type Tokens struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	SessionID        string
	SessionExpiresAt time.Time
	// ClientCertificatePEM and ClientKeyPEM are a client certificate bound
	// to the session, when the login asked for one.
	ClientCertificatePEM, ClientKeyPEM string
}

// errBadCredentials is the one answer to a wrong password and an unknown uid.
var errBadCredentials = domain.Unauthenticated("invalid uid or password")

// Login checks uid and password and opens a session. A login made over
// mutual TLS with a Trellis client certificate binds it to the session;
// otherwise issueCert asks for a fresh bound one (see bindClientCert).
func (s *Accounts) Login(ctx context.Context, p *auth.Principal, uid, pw string, issueCert bool) (*Tokens, error) {
	if err := s.authorize(ctx, p, opAuthLogin, policy.None); err != nil {
		return nil, err
	}
	if err := s.passwordLoginAllowed(); err != nil {
		return nil, err
	}
	// Before anything is stored: the uid goes into the failure count and
	// the audit record.
	if err := domain.ValidateUID("uid", uid); err != nil {
		return nil, err
	}
	now := s.now()
	l, err := s.checkPassword(ctx, opAuthLogin.Name, uid, pw, now)
	if err != nil {
		return nil, err
	}
	l.issueCert = issueCert
	return s.finishLogin(ctx, l)
}

// login is a login whose credentials checked out, on its way to a session.
type login struct {
	op     string // the operation, for the audit record
	user   *domain.User
	at     time.Time
	detail string
	// renew is the password just verified when its stored forms are out of
	// date (older hashing parameters, or no SCRAM verifier yet): fresh
	// ones are stored with the session. Empty otherwise.
	renew string
	// issueCert asks for a client certificate bound to the session.
	issueCert bool
	// also runs first in the session's transaction: what the login
	// consumes (an external login, collected once).
	also func(tx store.Tx) error
}

// checkPassword checks uid's password for a login through op. It first
// counts the attempt (reserveAttempt), refusing it while the caller's
// back-off lasts; then verifies the password, and audits a wrong password
// or an unknown uid as a failed login, both with errBadCredentials. The
// caller has validated uid.
func (s *Accounts) checkPassword(ctx context.Context, op, uid, pw string, now time.Time) (*login, error) {
	if err := s.st.Update(ctx, func(tx store.Tx) error { return s.reserveAttempt(ctx, tx, uid, now) }); err != nil {
		s.auditBackoff(ctx, op, uid, err)
		return nil, err
	}
	return s.verifyLogin(ctx, op, uid, pw, now)
}

// verifyLogin checks uid's password for a login whose attempt is counted
// already (reserveAttempt).
func (s *Accounts) verifyLogin(ctx context.Context, op, uid, pw string, now time.Time) (*login, error) {
	var (
		u              *domain.User
		hash, verifier string
	)
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		u, err = tx.Users().Get(ctx, uid)
		if domain.HasCode(err, domain.CodeNotFound) {
			u, err = nil, nil
		}
		if err != nil || u == nil {
			return err
		}
		if hash, err = tx.Users().PasswordHash(ctx, uid); err != nil {
			return err
		}
		verifier, err = tx.Users().ScramVerifier(ctx, uid)
		return err
	}); err != nil {
		return nil, err
	}

	ok, rehash, err := s.verifyPassword(ctx, hash, pw)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.auditLoginFailure(ctx, op, uid)
		return nil, errBadCredentials
	}
	l := &login{op: op, user: u, at: now}
	if rehash || s.verifierOutdated(verifier) {
		l.renew = pw
	}
	return l, nil
}

// finishLogin opens the session of a login whose credentials checked out,
// unless the account may not log in (its state is told only now, to whoever
// proved the password), resets the failure count and audits it.
func (s *Accounts) finishLogin(ctx context.Context, l *login) (*Tokens, error) {
	uid := l.user.UID
	if err := l.user.CanLogIn(); err != nil {
		s.auditRefusal(ctx, l.op, nil, userObject(uid), err, "account state "+string(l.user.State))
		return nil, err
	}
	if err := checkLoginCert(auth.ClientCertFrom(ctx), uid); err != nil {
		s.auditRefusal(ctx, l.op, nil, userObject(uid), err, "client certificate of another user")
		return nil, err
	}
	var secrets *passwordSecrets
	if l.renew != "" {
		var err error
		if secrets, err = s.newPassword(ctx, l.renew); err != nil {
			return nil, err
		}
	}
	p := &auth.Principal{UID: uid}
	var toks *Tokens
	rec := &record{op: l.op, actor: p, object: userObject(uid), detail: l.detail}
	err := s.update(ctx, rec, func(tx store.Tx) error {
		if l.also != nil {
			if err := l.also(tx); err != nil {
				return err
			}
		}
		if err := s.resetFailures(ctx, tx, uid); err != nil {
			return err
		}
		if secrets != nil {
			if err := s.setPassword(ctx, tx, uid, secrets); err != nil {
				return err
			}
		}
		var err error
		if toks, err = s.openSession(ctx, tx, uid, l.at); err != nil {
			return err
		}
		certDetail, err := s.bindClientCert(ctx, tx, toks, uid, l.at, l.issueCert)
		rec.detail = joinDetail(l.detail, certDetail)
		return err
	})
	return toks, err
}

func joinDetail(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// openSession creates a session for uid and signs its first access token.
func (s *Accounts) openSession(ctx context.Context, tx store.Tx, uid string, now time.Time) (*Tokens, error) {
	refresh, refreshHash := newSecret()
	sess := &domain.Session{
		ID:          newID(),
		UID:         uid,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.cfg.SessionTTL),
		RefreshHash: refreshHash,
		LastSeenAt:  now,
	}
	if err := tx.Sessions().Create(ctx, sess); err != nil {
		return nil, err
	}
	return s.tokensFor(sess, refresh, now)
}

func (s *Accounts) tokensFor(sess *domain.Session, refresh string, now time.Time) (*Tokens, error) {
	exp := min64(now.Add(s.cfg.AccessTokenTTL), sess.ExpiresAt)
	access, err := token.Sign(s.keys, token.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   sess.UID,
		Audience:  []string{s.cfg.Audience},
		SessionID: sess.ID,
		ID:        newID(),
		IssuedAt:  now,
		NotBefore: now,
		Expiry:    exp,
	})
	if err != nil {
		return nil, domain.Internal(err, "signing the access token failed")
	}
	return &Tokens{
		AccessToken:      access,
		AccessExpiresAt:  exp,
		RefreshToken:     refresh,
		SessionID:        sess.ID,
		SessionExpiresAt: sess.ExpiresAt,
	}, nil
}

func min64(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Logout revokes the caller's session.
func (s *Accounts) Logout(ctx context.Context, p *auth.Principal) error {
	if err := s.authorize(ctx, p, opAuthLogout, policy.None); err != nil {
		return err
	}
	if p.Actor != "" {
		return domain.FailedPrecondition("a token exchanged by %s has no session to log out of: it expires by itself within minutes", p.Actor)
	}
	if p.TokenID != "" {
		return domain.FailedPrecondition("an API token has no session to log out of: revoke the token instead (trellis token revoke %s)", p.TokenName)
	}
	if p.Backend == "local" {
		return domain.FailedPrecondition("HTTP Basic credentials have no session to log out of: every request carries the password, so there is nothing to end")
	}
	if p.SessionID == "" {
		if p.Backend != "" {
			return domain.FailedPrecondition("a request admitted by the %s authentication backend has no session to log out of", p.Backend)
		}
		return domain.FailedPrecondition("these credentials have no session to log out of")
	}
	return s.update(ctx, &record{op: opAuthLogout.Name, actor: p, object: "session:" + p.SessionID}, func(tx store.Tx) error {
		return s.revokeSessions(ctx, tx, []string{p.SessionID})
	})
}

// revokeSessions revokes sessions and tells every replica through the feed.
func (s *Accounts) revokeSessions(ctx context.Context, tx store.Tx, ids []string) error {
	for _, id := range ids {
		if err := tx.Sessions().Revoke(ctx, id, s.now()); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeSession, id); err != nil {
			return err
		}
	}
	return nil
}

// revokeUserSessions revokes every session of uid.
func (s *Accounts) revokeUserSessions(ctx context.Context, tx store.Tx, uid string) error {
	ids, err := tx.Sessions().RevokeUser(ctx, uid, s.now())
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := tx.Changes().Append(ctx, store.ChangeSession, id); err != nil {
			return err
		}
	}
	return nil
}

var errBadRefresh = domain.Unauthenticated("refresh token not valid: log in again")

// Refresh trades a refresh token for fresh tokens of the same session.
func (s *Accounts) Refresh(ctx context.Context, p *auth.Principal, refresh string) (*Tokens, error) {
	if err := s.authorize(ctx, p, opAuthRefresh, policy.None); err != nil {
		return nil, err
	}
	if refresh == "" {
		return nil, domain.Invalid("refresh_token", "refresh_token.required", "a refresh token is required")
	}
	now := s.now()
	h := hashSecret(refresh)
	var sess *domain.Session
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		sess, err = tx.Sessions().GetByRefreshHash(ctx, h)
		return err
	}); err != nil {
		if domain.HasCode(err, domain.CodeNotFound) {
			return nil, errBadRefresh
		}
		return nil, err
	}
	owner := &auth.Principal{UID: sess.UID, SessionID: sess.ID}
	if subtle.ConstantTimeCompare(sess.RefreshHash, h) != 1 {
		// An already-used refresh token: whoever holds it is not the
		// session's owner, or the owner's token leaked. End the session.
		err := s.update(ctx, &record{op: opAuthRefresh.Name, actor: owner, object: "session:" + sess.ID, detail: "refresh token reused; session revoked"}, func(tx store.Tx) error {
			return s.revokeSessions(ctx, tx, []string{sess.ID})
		})
		if err != nil {
			return nil, err
		}
		return nil, errBadRefresh
	}
	if !sess.Live(now) {
		return nil, domain.Unauthenticated("session revoked or expired: log in again")
	}
	next, nextHash := newSecret()
	var toks *Tokens
	err := s.update(ctx, &record{op: opAuthRefresh.Name, actor: owner, object: "session:" + sess.ID}, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, sess.UID)
		if err != nil {
			return err
		}
		if err := u.CanLogIn(); err != nil {
			return err
		}
		if err := tx.Sessions().RotateRefresh(ctx, sess.ID, h, nextHash, now); err != nil {
			if domain.HasCode(err, domain.CodeAborted) {
				return errBadRefresh
			}
			return err
		}
		toks, err = s.tokensFor(sess, next, now)
		return err
	})
	return toks, err
}

// WhoAmI describes the caller.
func (s *Accounts) WhoAmI(ctx context.Context, p *auth.Principal) (*auth.Principal, error) {
	if err := s.authorize(ctx, p, opAuthWhoAmI, policy.None); err != nil {
		return nil, err
	}
	cp := *p
	return &cp, nil
}

// Echo answers who the caller is and the message it sent, for clients
// that test connectivity and credentials.
func (s *Accounts) Echo(ctx context.Context, p *auth.Principal, message string) (string, string, error) {
	if err := s.authorize(ctx, p, opAuthEcho, policy.None); err != nil {
		return "", "", err
	}
	if len(message) > maxEcho {
		return "", "", domain.Invalid("message", "message.too_long", fmt.Sprintf("at most %d bytes", maxEcho))
	}
	if !utf8.ValidString(message) {
		return "", "", domain.Invalid("message", "message.utf8", "the message must be UTF-8")
	}
	return p.UID, message, nil
}

// maxEcho bounds Echo's message: a connectivity test needs no more.
const maxEcho = 1024

// String keeps tokens out of logs should a Tokens value ever be printed.
func (t *Tokens) String() string { return fmt.Sprintf("Tokens{session %s}", t.SessionID) }
