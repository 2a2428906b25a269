package service

import (
	"context"
	"fmt"
	"github.com/trellis-testbed/trellis/internal/policy"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var (
	opBootstrap = "trellis.admin/Bootstrap"
)

// Registration is what a new researcher gives.
type Registration struct {
	UID      string
	Email    string
	Password string
	Profile  map[string]string
}

// Register creates a pending account and mails the confirmation token.
func (s *Accounts) Register(ctx context.Context, p *auth.Principal, r Registration) (*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersRegister, policy.None); err != nil {
		return nil, err
	}
	email, profile, err := s.checkRegistration(ctx, nil, r)
	if err != nil {
		return nil, err
	}
	secrets, err := s.newPassword(ctx, r.Password)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &domain.User{UID: r.UID, Email: email, State: domain.UserPendingEmail, CreatedAt: now, UpdatedAt: now}
	err = s.update(ctx, &record{op: opUsersRegister.Name, object: userObject(u.UID)}, func(tx store.Tx) error {
		if err := tx.Users().Create(ctx, u, ""); err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, u.UID, secrets); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileUser, u.UID, profile); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeUser, u.UID); err != nil {
			return err
		}
		return s.mailConfirmation(ctx, tx, u.UID, email, "")
	})
	if err != nil {
		return nil, s.suggestUID(ctx, err, r.UID, r.Profile["name"], email)
	}
	return u, nil
}

// mailConfirmation issues a confirmation token for uid and mails it to
// address. newEmail is set when the token confirms an address change.
func (s *Accounts) mailConfirmation(ctx context.Context, tx store.Tx, uid, address, newEmail string) error {
	if err := tx.OneTimeTokens().DeleteFor(ctx, uid, store.PurposeConfirmEmail); err != nil {
		return err
	}
	tok, h := newSecret()
	now := s.now()
	if err := tx.OneTimeTokens().Create(ctx, &store.OneTimeToken{
		Hash: h, Purpose: store.PurposeConfirmEmail, UID: uid, Data: newEmail,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.ConfirmTTL),
	}); err != nil {
		return err
	}
	what := "your Trellis account " + uid
	if newEmail != "" {
		what = "the new e-mail address of Trellis account " + uid
	}
	body := fmt.Sprintf(`Hello,

Please confirm %s. Your confirmation token is:

    %s

Confirm on this page:

    %s

or with the command line client:

    trellis --server %s user confirm %s

or by calling trellis.v1.Users/ConfirmEmail with this token. It expires in %s.

If you did not ask for this, ignore this message.
`, what, domain.MailSecret, s.portalLink(PortalConfirmPath), s.cfg.PublicURL, domain.MailSecret, s.cfg.ConfirmTTL)
	return s.mailSecret(ctx, tx, &domain.Mail{CreatedAt: now, To: address, Subject: "Confirm your e-mail address for Trellis", Body: body}, tok)
}

// mailSecret puts m, whose body names tok with domain.MailSecret, in the
// outbox. The store keeps only the token's hash (OneTimeTokens) and, until
// delivery, the token sealed with the key-encryption key: neither a reader
// of the database nor of a backup can redeem it.
func (s *Accounts) mailSecret(ctx context.Context, tx store.Tx, m *domain.Mail, tok string) error {
	sealed, err := s.sealer.Seal([]byte(tok))
	if err != nil {
		return domain.Internal(err, "sealing a mailed token failed")
	}
	m.SealedSecret = sealed
	return tx.Outbox().Append(ctx, m)
}

func badToken(field, what string, err error) error {
	switch domain.CodeOf(err) {
	case domain.CodeNotFound:
		return domain.Invalid(field, field+".unknown", "this "+what+" token is not valid: it was mistyped or has been used already")
	case domain.CodeFailedPrecondition:
		return domain.Invalid(field, field+".expired", "this "+what+" token has expired: ask for a new one")
	}
	return err
}

// ConfirmEmail redeems a confirmation token.
func (s *Accounts) ConfirmEmail(ctx context.Context, p *auth.Principal, tok string) (*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersConfirmEmail, policy.None); err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, domain.Invalid("token", "token.required", "the confirmation token is required")
	}
	var u *domain.User
	rec := &record{op: opUsersConfirmEmail.Name}
	err := s.update(ctx, rec, func(tx store.Tx) error {
		t, err := tx.OneTimeTokens().Consume(ctx, hashSecret(tok), store.PurposeConfirmEmail, s.now())
		if err != nil {
			return badToken("token", "confirmation", err)
		}
		rec.object, rec.actor = userObject(t.UID), &auth.Principal{UID: t.UID}
		if u, err = tx.Users().Get(ctx, t.UID); err != nil {
			return err
		}
		if t.Data != "" {
			u.Email = t.Data
			rec.detail = "e-mail address changed"
		} else if u.State == domain.UserPendingEmail {
			u.State = domain.UserActive
			rec.detail = "account activated"
		}
		u.EmailVerified = true
		u.UpdatedAt = s.now()
		if err := tx.Users().Update(ctx, u); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeUser, u.UID)
	})
	return u, err
}

// ResendConfirmation mails a fresh token to an account still pending. It
// says nothing about whether the account exists.
func (s *Accounts) ResendConfirmation(ctx context.Context, p *auth.Principal, uid string) error {
	if err := s.authorize(ctx, p, opUsersResendConfirmation, policy.None); err != nil {
		return err
	}
	if err := domain.ValidateUID("uid", uid); err != nil {
		return err
	}
	return s.quietly(s.update(ctx, &record{op: opUsersResendConfirmation.Name, object: userObject(uid)}, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, uid)
		if err != nil {
			return err
		}
		if u.State != domain.UserPendingEmail {
			return errNothingToDo
		}
		return s.mailConfirmation(ctx, tx, uid, u.Email, "")
	}))
}

var errNothingToDo = domain.FailedPrecondition("nothing to do")

// quietly hides whether an account exists from public operations.
func (s *Accounts) quietly(err error) error {
	if err == errNothingToDo || domain.HasCode(err, domain.CodeNotFound) {
		return nil
	}
	return err
}

// The portal's pages that mail links lead to (internal/transport/portal
// serves them at these paths): the link carries the mailed token, and the
// page only draws a form with it, so a mail scanner fetching the link
// changes nothing.
const (
	PortalConfirmPath = "/confirm"
	PortalResetPath   = "/reset"
	// PortalExternalLoginPath is where a sign-in through the identity
	// provider that the portal started comes back to.
	PortalExternalLoginPath = "/signin/external/done"
)

// portalLink is the link of a mail to a portal page, carrying the mailed
// token.
func (s *Accounts) portalLink(path string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + path + "?token=" + domain.MailSecret
}

// resetSubject is the subject of password-reset mail; the outbox is counted
// by it to bound how many one account is sent.
const resetSubject = "Reset your Trellis password"

// resetAnswer is the answer to every well-formed password-reset request,
// whether or not the account exists, is active or has been sent its share
// of reset mail already.
func (s *Accounts) resetAnswer() string {
	return fmt.Sprintf("if an active account has this uid (or address), a reset token was mailed to its address. "+
		"An account is sent at most %d reset mails per %s, and requests past that send none: if no mail arrives, wait before asking again",
		s.cfg.ResetMailLimit, s.cfg.ResetMailWindow)
}

// RequestPasswordReset mails a reset token to an active account, unless it
// was sent ResetMailLimit reset mails within ResetMailWindow already (so
// that a burst of requests does not flood its mailbox). The account is
// named by its uid or by its e-mail address (anything with an '@', which
// no uid has: people forget their uid more often than their address). The
// answer (resetAnswer) says nothing about whether the account exists nor
// whether a mail was sent.
func (s *Accounts) RequestPasswordReset(ctx context.Context, p *auth.Principal, uid string) (string, error) {
	if err := s.authorize(ctx, p, opUsersRequestPasswordReset, policy.None); err != nil {
		return "", err
	}
	byEmail := strings.Contains(uid, "@")
	if byEmail {
		addr, err := domain.NormalizeEmail("uid", uid)
		if err != nil {
			return "", err
		}
		uid = addr
	} else if err := domain.ValidateUID("uid", uid); err != nil {
		return "", err
	}
	// An address asked about is recorded only once it names an account.
	rec := &record{op: opUsersRequestPasswordReset.Name, object: userObject(uid)}
	if byEmail {
		rec.object = "user:?"
	}
	// The body may run again (a serialization retry): it looks up what
	// was asked, never what a previous attempt found.
	asked := uid
	err := s.quietly(s.update(ctx, rec, func(tx store.Tx) error {
		var u *domain.User
		var err error
		if byEmail {
			u, err = tx.Users().GetByEmail(ctx, asked)
		} else {
			u, err = tx.Users().Get(ctx, asked)
		}
		if err != nil {
			return err
		}
		uid, rec.object = u.UID, userObject(u.UID)
		if u.State != domain.UserActive {
			return errNothingToDo
		}
		now := s.now()
		// Counted in the transaction that mails, so that concurrent
		// requests cannot all pass the count.
		sent, err := tx.Outbox().List(ctx, store.OutboxFilter{
			To: u.Email, Subject: resetSubject, Since: now.Add(-s.cfg.ResetMailWindow), Limit: s.cfg.ResetMailLimit,
		})
		if err != nil {
			return err
		}
		if len(sent) >= s.cfg.ResetMailLimit {
			s.log.InfoContext(ctx, "password reset not mailed: the account's limit is reached", "uid", uid, "limit", s.cfg.ResetMailLimit, "window", s.cfg.ResetMailWindow)
			return errNothingToDo
		}
		if err := tx.OneTimeTokens().DeleteFor(ctx, uid, store.PurposeResetPassword); err != nil {
			return err
		}
		tok, h := newSecret()
		if err := tx.OneTimeTokens().Create(ctx, &store.OneTimeToken{
			Hash: h, Purpose: store.PurposeResetPassword, UID: uid, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTTL),
		}); err != nil {
			return err
		}
		body := fmt.Sprintf(`Hello,

Someone, hopefully you, asked to reset the password of Trellis account %s.
Your reset token is:

    %s

Set a new password on this page:

    %s

or with the command line client:

    trellis --server %s user reset-password --token %s

It expires in %s and works once. Every session of the account will be ended.
If you did not ask for this, ignore this message: your password is unchanged.
`, uid, domain.MailSecret, s.portalLink(PortalResetPath), s.cfg.PublicURL, domain.MailSecret, s.cfg.ResetTTL)
		return s.mailSecret(ctx, tx, &domain.Mail{CreatedAt: now, To: u.Email, Subject: resetSubject, Body: body}, tok)
	}))
	if err != nil {
		return "", err
	}
	return s.resetAnswer(), nil
}

// ResetPassword redeems a reset token and sets a new password; every
// session of the account ends.
func (s *Accounts) ResetPassword(ctx context.Context, p *auth.Principal, tok, pw string) error {
	if err := s.authorize(ctx, p, opUsersResetPassword, policy.None); err != nil {
		return err
	}
	var vs domain.Violations
	if tok == "" {
		vs.Add("token", "token.required", "the reset token is required")
	}
	if err := vs.Check(password.CheckPolicy("new_password", "", pw)); err != nil {
		return err
	}
	if err := vs.Err(); err != nil {
		return err
	}
	secrets, err := s.newPassword(ctx, pw)
	if err != nil {
		return err
	}
	rec := &record{op: opUsersResetPassword.Name}
	return s.update(ctx, rec, func(tx store.Tx) error {
		t, err := tx.OneTimeTokens().Consume(ctx, hashSecret(tok), store.PurposeResetPassword, s.now())
		if err != nil {
			return badToken("token", "reset", err)
		}
		rec.object, rec.actor = userObject(t.UID), &auth.Principal{UID: t.UID}
		// The uid is known only now; the rest of the policy was checked.
		if err := password.CheckPolicy("new_password", t.UID, pw); err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, t.UID, secrets); err != nil {
			return err
		}
		if err := tx.LoginFailures().ResetAll(ctx, t.UID); err != nil {
			return err
		}
		return s.revokeUserSessions(ctx, tx, t.UID)
	})
}

// GetUser returns an account.
func (s *Accounts) GetUser(ctx context.Context, p *auth.Principal, uid string) (*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersGetUser, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	return viewOf(ctx, s.base, func(tx store.Tx) (*domain.User, error) { return tx.Users().Get(ctx, uid) })
}

// ListUsers pages through accounts by uid.
func (s *Accounts) ListUsers(ctx context.Context, p *auth.Principal, prefix string, pageSize int32, pageToken string) ([]*domain.User, string, error) {
	if err := s.authorize(ctx, p, opUsersListUsers, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	var users []*domain.User
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		users, next, err = readPage(pg, func(after string, n int) ([]*domain.User, error) {
			return tx.Users().List(ctx, prefix, store.Page{After: after, Limit: n})
		}, func(u *domain.User) string { return u.UID }, nil)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return users, next, nil
}

// GetUserProfile returns the visible attributes of uid's profile.
func (s *Accounts) GetUserProfile(ctx context.Context, p *auth.Principal, uid string) ([]domain.ProfileValue, error) {
	if err := s.authorize(ctx, p, opUsersGetUserProfile, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	var values map[string]string
	err := s.view(ctx, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, uid)
		if err != nil {
			return err
		}
		if values, err = tx.Profiles().Get(ctx, store.ProfileUser, uid); err != nil {
			return err
		}
		// The account is the source of truth for these two.
		values["uid"], values["email"] = u.UID, u.Email
		return nil
	})
	if err != nil {
		return nil, err
	}
	d, err := s.describe(ctx, store.ProfileUser)
	if err != nil {
		return nil, err
	}
	return d.Visible(values), nil
}

// RulePendingConfirmation reports an e-mail change that waits for the new
// address to be confirmed.
const RulePendingConfirmation = "pending_confirmation"

// SetUserProfile applies what it can and reports every attribute named.
func (s *Accounts) SetUserProfile(ctx context.Context, p *auth.Principal, uid string, set map[string]string, clearAttrs []string) ([]domain.AttributeChange, error) {
	if err := s.authorize(ctx, p, opUsersSetUserProfile, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	var changes []domain.AttributeChange
	rec := &record{op: opUsersSetUserProfile.Name, actor: p, object: userObject(uid)}
	err := s.update(ctx, rec, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, uid)
		if err != nil {
			return err
		}
		current, err := tx.Profiles().Get(ctx, store.ProfileUser, uid)
		if err != nil {
			return err
		}
		current["uid"], current["email"] = u.UID, u.Email
		d, err := s.descriptionIn(ctx, tx, store.ProfileUser)
		if err != nil {
			return err
		}
		if d, err = s.writer(ctx, p, d); err != nil {
			return err
		}
		next, ch := d.Apply(current, set, clearAttrs)
		changes = ch
		for i := range changes {
			c := &changes[i]
			if c.Name == "uid" && c.Changed {
				// The account's uid is its name everywhere; not even an
				// administrator renames it through the profile.
				next["uid"] = u.UID
				c.Changed, c.Rule, c.Reason = false, domain.RuleReadOnly, "the uid names the account and cannot change"
				continue
			}
			if c.Name != "email" || !c.Changed {
				continue
			}
			// A new address takes effect only once it is confirmed.
			next["email"] = u.Email
			c.Changed = false
			email, err := domain.NormalizeEmail("email", set["email"])
			if err != nil {
				c.Rule, c.Reason = domain.RuleFormat, "not a valid e-mail address"
				continue
			}
			other, err := tx.Users().GetByEmail(ctx, email)
			switch {
			case err == nil && other.UID != uid:
				c.Rule, c.Reason = "taken", "another account uses this e-mail address"
				continue
			case err != nil && !domain.HasCode(err, domain.CodeNotFound):
				return err
			}
			if err := s.mailConfirmation(ctx, tx, uid, email, email); err != nil {
				return err
			}
			c.Rule, c.Reason = RulePendingConfirmation, "a confirmation was mailed to the new address; the change takes effect when it is confirmed"
		}
		var changed []string
		for _, c := range changes {
			if c.Changed {
				changed = append(changed, c.Name)
			}
		}
		rec.detail = "changed: " + strings.Join(changed, ",")
		if len(changed) == 0 {
			return nil
		}
		delete(next, "uid")
		delete(next, "email")
		return tx.Profiles().Set(ctx, store.ProfileUser, uid, next)
	})
	return changes, err
}

// ChangePassword sets a new password. The account's owner must give the
// current one; an admin changing another account's password need not.
func (s *Accounts) ChangePassword(ctx context.Context, p *auth.Principal, uid, current, next string) error {
	if err := s.authorize(ctx, p, opUsersChangePassword, policy.Account("uid", uid)); err != nil {
		return err
	}
	if uid == "" {
		uid = p.UID
	}
	if err := password.CheckPolicy("new_password", uid, next); err != nil {
		return err
	}
	// Past the rule, another account's password is an admin's to set.
	if uid == p.UID {
		if current == "" {
			return domain.Invalid("current_password", "current_password.required", "give the current password")
		}
		if err := s.confirmPassword(ctx, p, opUsersChangePassword.Name, "current_password", current); err != nil {
			return err
		}
	}
	secrets, err := s.newPassword(ctx, next)
	if err != nil {
		return err
	}
	return s.update(ctx, &record{op: opUsersChangePassword.Name, actor: p, object: userObject(uid)}, func(tx store.Tx) error {
		if err := s.setPassword(ctx, tx, uid, secrets); err != nil {
			return err
		}
		if uid != p.UID {
			// Whoever held the account's sessions no longer knows its
			// password.
			return s.revokeUserSessions(ctx, tx, uid)
		}
		return nil
	})
}

// SetUserState locks, disables or reactivates an account.
func (s *Accounts) SetUserState(ctx context.Context, p *auth.Principal, uid string, state domain.UserState) (*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersSetUserState, policy.None); err != nil {
		return nil, err
	}
	if uid == p.UID {
		return nil, domain.FailedPrecondition("administrators cannot change the state of their own account")
	}
	var u *domain.User
	err := s.update(ctx, &record{op: opUsersSetUserState.Name, actor: p, object: userObject(uid), detail: "state=" + string(state)}, func(tx store.Tx) error {
		var err error
		if u, err = tx.Users().Get(ctx, uid); err != nil {
			return err
		}
		if u.State == domain.UserPendingEmail && state == domain.UserActive {
			return domain.FailedPrecondition("account %s has not confirmed its e-mail address yet", uid)
		}
		u.State, u.UpdatedAt = state, s.now()
		if err := tx.Users().Update(ctx, u); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeUser, uid); err != nil {
			return err
		}
		if state != domain.UserActive {
			return s.revokeUserSessions(ctx, tx, uid)
		}
		return nil
	})
	return u, err
}

// SetAdmin grants or withdraws administration. The last admin stays.
func (s *Accounts) SetAdmin(ctx context.Context, p *auth.Principal, uid string, admin bool) (*domain.User, error) {
	if err := s.authorize(ctx, p, opUsersSetAdmin, policy.None); err != nil {
		return nil, err
	}
	var u *domain.User
	err := s.update(ctx, &record{op: opUsersSetAdmin.Name, actor: p, object: userObject(uid), detail: fmt.Sprintf("admin=%t", admin)}, func(tx store.Tx) error {
		var err error
		if u, err = tx.Users().Get(ctx, uid); err != nil {
			return err
		}
		if u.Admin == admin {
			return nil
		}
		if !admin {
			n, err := tx.Users().CountAdmins(ctx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return domain.FailedPrecondition("%s is the last administrator; make another one first", uid)
			}
		}
		u.Admin, u.UpdatedAt = admin, s.now()
		if err := tx.Users().Update(ctx, u); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeUser, uid)
	})
	return u, err
}

// Bootstrap creates the first administrator on a store that has none. It is
// the operator's way in; it is not an API operation.
func (s *Accounts) bootstrap(ctx context.Context, op, uid, email, pw string) (*domain.User, error) {
	var vs domain.Violations
	if err := vs.Check(domain.ValidateUID("uid", uid)); err != nil {
		return nil, err
	}
	email, err := domain.NormalizeEmail("email", email)
	if err := vs.Check(err); err != nil {
		return nil, err
	}
	if err := vs.Check(password.CheckPolicy("password", uid, pw)); err != nil {
		return nil, err
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	secrets, err := s.newPassword(ctx, pw)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &domain.User{UID: uid, Email: email, EmailVerified: true, State: domain.UserActive, Admin: true, CreatedAt: now, UpdatedAt: now}
	err = s.update(ctx, &record{op: op, object: userObject(uid), detail: "first administrator"}, func(tx store.Tx) error {
		n, err := tx.Users().CountAdmins(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return domain.FailedPrecondition("an administrator already exists; bootstrap is only for an empty testbed")
		}
		if err := tx.Users().Create(ctx, u, ""); err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, uid, secrets); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileUser, uid, map[string]string{"name": uid}); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeUser, uid)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// HasAdmin reports whether any administrator exists.
func (s *Accounts) hasAdmin(ctx context.Context) (bool, error) {
	n, err := viewOf(ctx, s.base, func(tx store.Tx) (int, error) { return tx.Users().CountAdmins(ctx) })
	return n > 0, err
}

// GetProfileDescription describes the user profile's attributes, for the
// forms that register and edit accounts.
func (s *Accounts) GetProfileDescription(ctx context.Context, p *auth.Principal) (*domain.ProfileDescription, error) {
	if err := s.authorize(ctx, p, opUsersGetProfileDescription, policy.None); err != nil {
		return nil, err
	}
	return s.describe(ctx, store.ProfileUser)
}

// confirmPassword checks that pw, given in field, is p's own password: a
// change as grave as a new password or closing the account takes the
// password as well as a session. A wrong one is audited as a refusal of op.
func (s *Accounts) confirmPassword(ctx context.Context, p *auth.Principal, op, field, pw string) error {
	hash, err := viewOf(ctx, s.base, func(tx store.Tx) (string, error) { return tx.Users().PasswordHash(ctx, p.UID) })
	if err != nil {
		return err
	}
	ok, _, err := s.verifyPassword(ctx, hash, pw)
	if err != nil {
		return err
	}
	if !ok {
		err := domain.Invalid(field, field+".wrong", "the password is not correct")
		s.auditRefusal(ctx, op, p, userObject(p.UID), err, "wrong password")
		return err
	}
	return nil
}
