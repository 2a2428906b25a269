package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/clientaddr"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// The login lockout policy (docs/operations.md, "Login lockout policy"):
// failed logins are counted per account and per client (the address, as
// package clientaddr keys it). A client past LoginBackoffAfter failures for
// an account waits, the wait doubling with each further failure up to
// LoginBackoffMax; other clients, the account's owner among them, are not
// slowed down, and nothing locks an account for good. Every attempt is
// counted before its password is checked, so concurrent guesses cannot all
// slip past the back-off; a success forgets the client's count.

// reserveAttempt counts an attempt to log in as uid from the caller's
// client, in tx, unless the client's back-off refuses it. The read and the
// write share the transaction, which the store runs as if alone, so of
// concurrent attempts no more than the back-off allows are counted in.
func (s *Accounts) reserveAttempt(ctx context.Context, tx store.Tx, uid string, now time.Time) error {
	client := clientaddr.From(ctx)
	n, last, err := tx.LoginFailures().Get(ctx, uid, client)
	if err != nil {
		return err
	}
	if n > 0 && now.Sub(last) >= s.cfg.LoginFailureReset {
		// Forgotten: the count starts again.
		if err := tx.LoginFailures().Reset(ctx, uid, client); err != nil {
			return err
		}
		n = 0
	}
	if err := s.backoff(uid, n, last, now); err != nil {
		return err
	}
	_, err = tx.LoginFailures().Record(ctx, uid, client, now)
	return err
}

// checkBackoff refuses a login of uid from the caller's client while the
// client is cooling down after repeated failures, without counting an
// attempt (a challenge request, which checks no password).
func (s *Accounts) checkBackoff(ctx context.Context, tx store.Tx, uid string, now time.Time) error {
	n, last, err := tx.LoginFailures().Get(ctx, uid, clientaddr.From(ctx))
	if err != nil || now.Sub(last) >= s.cfg.LoginFailureReset {
		return err
	}
	return s.backoff(uid, n, last, now)
}

// backoff refuses an attempt after n failures, the last at last.
func (s *Accounts) backoff(uid string, n int, last, now time.Time) error {
	if n < s.cfg.LoginBackoffAfter {
		return nil
	}
	wait := s.cfg.LoginBackoffBase << min(n-s.cfg.LoginBackoffAfter, 30)
	if wait <= 0 || wait > s.cfg.LoginBackoffMax {
		wait = s.cfg.LoginBackoffMax
	}
	if until := last.Add(wait); now.Before(until) {
		return &backoffRefusal{
			err:   domain.ResourceExhausted("too many failed logins for %q from your address: try again in %s", uid, until.Sub(now).Round(time.Second)+time.Second),
			until: until,
		}
	}
	return nil
}

// backoffRefusal is a refusal by the back-off, which lasts until until.
type backoffRefusal struct {
	err   *domain.Error
	until time.Time
}

func (b *backoffRefusal) Error() string { return b.err.Error() }
func (b *backoffRefusal) Unwrap() error { return b.err }

// auditBackoff audits a refusal of uid's login through op by the back-off,
// once per client, account and back-off period (on each replica): a
// client that goes on knocking during its wait, as fast as it can, adds no
// more records.
func (s *Accounts) auditBackoff(ctx context.Context, op, uid string, err error) {
	var br *backoffRefusal
	if !errors.As(err, &br) || !s.backoffs.first(uid, clientaddr.From(ctx), br.until, s.now()) {
		return
	}
	s.auditRefusal(ctx, op, nil, userObject(uid), err, "login back-off")
}

// maxBackoffMemo bounds the back-offs whose refusal is remembered as
// audited; past it, those over are forgotten, and then all (a refusal is
// audited again, never lost).
const maxBackoffMemo = 10_000

// backoffMemo remembers, per account and client, the end of the back-off
// whose refusal was audited.
type backoffMemo struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// first reports whether a refusal of uid from client during the back-off
// ending at until is the first, and remembers it.
func (m *backoffMemo) first(uid, client string, until, now time.Time) bool {
	k := uid + "\x00" + client
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = map[string]time.Time{}
	}
	if u, ok := m.until[k]; ok && u.Equal(until) {
		return false
	}
	if len(m.until) >= maxBackoffMemo {
		for k, u := range m.until {
			if !now.Before(u) {
				delete(m.until, k)
			}
		}
		if len(m.until) >= maxBackoffMemo {
			clear(m.until)
		}
	}
	m.until[k] = until
	return true
}

// resetFailures forgets the failed logins of uid from the caller's client:
// its password was just proved.
func (s *Accounts) resetFailures(ctx context.Context, tx store.Tx, uid string) error {
	return tx.LoginFailures().Reset(ctx, uid, clientaddr.From(ctx))
}

// auditLoginFailure audits a failed login of uid through op (it was
// counted when it was attempted).
func (s *Accounts) auditLoginFailure(ctx context.Context, op, uid string) {
	s.auditRefusal(ctx, op, nil, userObject(uid), errBadCredentials, "bad credentials")
}
