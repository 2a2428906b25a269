package service

import (
	"context"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/policy"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// OpBasicAuth names HTTP Basic authentication (the local backend's) in the
// audit record: it is no API operation of its own, but its refusals (a
// wrong password, an unknown uid, a back-off, an account that may not log
// in) are recorded like a login's.
const OpBasicAuth = "auth.basic"

// errPasswordLoginDisabled refuses a password login on a server without
// the local authentication backend.
var errPasswordLoginDisabled = domain.FailedPrecondition("password login is disabled on this server (the local authentication backend is not enabled): sign in through the server's other authentication backend")

// passwordLoginAllowed refuses when password logins are disabled.
func (s *Accounts) passwordLoginAllowed() error {
	if s.cfg.PasswordLoginDisabled {
		return errPasswordLoginDisabled
	}
	return nil
}

// AuthenticatePassword checks uid's password for a request that carries it
// (HTTP Basic, the local backend's auth.PasswordCheck). It is a login
// without a session: the back-off applies, a wrong password and an unknown
// uid get the same answer and count (and are audited) as failed logins,
// and an account that may not log in is refused once the password proved
// it. Success clears the client's failure count; nothing else is written.
func (s *Accounts) AuthenticatePassword(ctx context.Context, p *auth.Principal, uid, pw string) (*domain.User, error) {
	if err := s.authorize(ctx, p, opBasicAuthenticate, policy.None); err != nil {
		return nil, err
	}
	if err := s.passwordLoginAllowed(); err != nil {
		return nil, err
	}
	if err := domain.ValidateUID("uid", uid); err != nil {
		return nil, err
	}
	now := s.now()
	l, err := s.checkPassword(ctx, OpBasicAuth, uid, pw, now)
	if err != nil {
		return nil, err
	}
	u := l.user
	if err := u.CanLogIn(); err != nil {
		s.auditRefusal(ctx, OpBasicAuth, nil, userObject(u.UID), err, "account state "+string(u.State))
		return nil, err
	}
	if err := s.st.Update(ctx, func(tx store.Tx) error { return s.resetFailures(ctx, tx, u.UID) }); err != nil {
		return nil, err
	}
	return u, nil
}
