package service

import (
	"context"

	"github.com/trellis-testbed/trellis/internal/auth/scram"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// passwordSecrets are what the store keeps of a password: the PHC hash that
// password logins verify, and the SCRAM verifier that challenge logins
// verify (with a salt of its own: see package scram). Every path that sets a
// password derives them with newPassword and stores them with setPassword,
// so the two always describe the same password.
type passwordSecrets struct {
	hash     string
	verifier string
}

// newPassword derives the stored forms of pw, each Argon2id run within the
// hashing concurrency bound.
func (s *Accounts) newPassword(ctx context.Context, pw string) (*passwordSecrets, error) {
	h, err := s.hashPassword(ctx, pw)
	if err != nil {
		return nil, err
	}
	release, err := s.hashSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	v, err := scram.NewVerifier(pw, s.hasher.Effective())
	if err != nil {
		return nil, domain.Internal(err, "password hashing failed")
	}
	return &passwordSecrets{hash: h, verifier: v.Encode()}, nil
}

// setPassword stores ps as uid's password. A new password is a change of
// the account that every replica hears of through the feed: passwords
// verified before (the local backend's HTTP Basic cache) are forgotten.
func (s *Accounts) setPassword(ctx context.Context, tx store.Tx, uid string, ps *passwordSecrets) error {
	if err := tx.Users().SetPasswordHash(ctx, uid, ps.hash); err != nil {
		return err
	}
	if err := tx.Users().SetScramVerifier(ctx, uid, ps.verifier); err != nil {
		return err
	}
	return tx.Changes().Append(ctx, store.ChangeUser, uid)
}

// verifierOutdated reports whether a stored SCRAM verifier should be
// replaced at the next password login: there is none (the password predates
// challenge logins), it cannot be read, or the hashing parameters changed.
func (s *Accounts) verifierOutdated(encoded string) bool {
	if encoded == "" {
		return true
	}
	v, err := scram.ParseVerifier(encoded)
	return err != nil || v.Params != s.hasher.Effective()
}
