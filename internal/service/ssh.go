package service

import (
	"context"
	"errors"
	"fmt"
	"github.com/trellis-testbed/trellis/internal/policy"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/sshca"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var (
	errNoSSHCA = domain.FailedPrecondition("this server has no SSH certificate authority")
	// errUnregisteredSSHKey answers alike for a key nobody registered and
	// another user's key, so nobody learns whose key it is.
	errUnregisteredSSHKey = domain.Invalid("public_key", "public_key.unregistered",
		"this key is not registered to your account: add it first (trellis ssh key add KEY.pub)")
)

// SSH key and certificate limits.
const (
	// MaxSSHKeys bounds the SSH keys of one account: enough for every
	// device a person uses, few enough that a listing stays small.
	MaxSSHKeys = 50
	// MinSSHCertValidity is the shortest certificate issued: certificate
	// times have a resolution of seconds, and sites' clocks drift.
	MinSSHCertValidity = time.Minute
)

// AddSSHKey registers an SSH public key with uid's account.
func (s *Accounts) AddSSHKey(ctx context.Context, p *auth.Principal, uid, publicKey string) (*domain.SSHKey, error) {
	if err := s.authorize(ctx, p, opUsersAddSSHKey, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	uk, err := sshca.ParseUserKey("public_key", publicKey)
	if err != nil {
		return nil, err
	}
	k := &domain.SSHKey{
		UID: uid, Fingerprint: uk.Fingerprint, Type: uk.Type, Bits: uk.Bits, Comment: uk.Comment,
		PublicKey: uk.AuthorizedKey(), CreatedAt: s.now(),
	}
	rec := &record{op: opUsersAddSSHKey.Name, actor: p, object: userObject(uid), detail: "fingerprint=" + k.Fingerprint + " type=" + k.Type}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		have, err := tx.SSHKeys().List(ctx, uid)
		if err != nil {
			return err
		}
		if len(have) >= MaxSSHKeys {
			return domain.ResourceExhausted("account %s has %d SSH keys, the most allowed: remove one first", uid, len(have))
		}
		return tx.SSHKeys().Create(ctx, k)
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ListSSHKeys returns uid's SSH public keys, oldest first.
func (s *Accounts) ListSSHKeys(ctx context.Context, p *auth.Principal, uid string) ([]*domain.SSHKey, error) {
	if err := s.authorize(ctx, p, opUsersListSSHKeys, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	var ks []*domain.SSHKey
	err := s.view(ctx, func(tx store.Tx) error {
		// An unknown account is "not found", not an empty list.
		if _, err := tx.Users().Get(ctx, uid); err != nil {
			return err
		}
		var err error
		ks, err = tx.SSHKeys().List(ctx, uid)
		return err
	})
	return ks, err
}

// RemoveSSHKey removes one of uid's SSH public keys. Certificates issued for
// it stay valid until they expire: they are short-lived by design.
func (s *Accounts) RemoveSSHKey(ctx context.Context, p *auth.Principal, uid, fingerprint string) error {
	if err := s.authorize(ctx, p, opUsersRemoveSSHKey, policy.Account("uid", uid)); err != nil {
		return err
	}
	if uid == "" {
		uid = p.UID
	}
	if err := sshca.CheckFingerprint("fingerprint", fingerprint); err != nil {
		return err
	}
	rec := &record{op: opUsersRemoveSSHKey.Name, actor: p, object: userObject(uid), detail: "fingerprint=" + fingerprint}
	return s.update(ctx, rec, func(tx store.Tx) error {
		return tx.SSHKeys().Delete(ctx, uid, fingerprint)
	})
}

// SSHCertificate is an issued SSH user certificate.
type SSHCertificate struct {
	// Certificate is in authorized_keys form, as ssh reads KEY-cert.pub.
	Certificate string
	Serial      uint64
	KeyID       string
	Principals  []string
	ValidAfter  time.Time
	ValidBefore time.Time
	Fingerprint string // of the certified key
}

// IssueSSHCertificate signs a user certificate for one of the caller's
// registered keys, with the caller's uid as its one principal. validity nil
// takes the configured default.
func (s *Accounts) IssueSSHCertificate(ctx context.Context, p *auth.Principal, publicKey string, validity *time.Duration) (*SSHCertificate, error) {
	if err := s.authorize(ctx, p, opAuthIssueSSHCertificate, policy.None); err != nil {
		return nil, err
	}
	if s.sshCA == nil {
		return nil, errNoSSHCA
	}
	var vs domain.Violations
	uk, err := sshca.ParseUserKey("public_key", publicKey)
	if err := vs.Check(err); err != nil {
		return nil, err
	}
	d, err := s.sshValidity(validity)
	if err := vs.Check(err); err != nil {
		return nil, err
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	serial := sshca.NewSerial()
	now := s.now()
	var cert *ssh.Certificate
	rec := &record{op: opAuthIssueSSHCertificate.Name, actor: p, object: userObject(p.UID)}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		// A certificate outlives the access token that asked for it: check
		// the account is still in good standing, not only the token.
		u, err := tx.Users().Get(ctx, p.UID)
		if err != nil {
			return err
		}
		if err := u.CanLogIn(); err != nil {
			return err
		}
		k, err := tx.SSHKeys().Get(ctx, uk.Fingerprint)
		switch {
		case domain.HasCode(err, domain.CodeNotFound):
			return errUnregisteredSSHKey
		case err != nil:
			return err
		case k.UID != p.UID:
			return errUnregisteredSSHKey
		}
		cert, err = s.sshCA.Sign(sshca.Request{Key: uk.Key, UID: p.UID, Serial: serial, Now: now, Validity: d})
		if err != nil {
			return domain.Internal(err, "signing the SSH certificate failed")
		}
		rec.detail = fmt.Sprintf("fingerprint=%s serial=%d valid_before=%s", uk.Fingerprint, serial,
			time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339))
		return nil
	})
	if err != nil {
		if errors.Is(err, errUnregisteredSSHKey) {
			s.auditRefusal(ctx, opAuthIssueSSHCertificate.Name, p, userObject(p.UID), err, "key not registered to the caller: fingerprint="+uk.Fingerprint)
		}
		return nil, err
	}
	return &SSHCertificate{
		Certificate: sshca.MarshalCertificate(cert),
		Serial:      cert.Serial,
		KeyID:       cert.KeyId,
		Principals:  cert.ValidPrincipals,
		ValidAfter:  time.Unix(int64(cert.ValidAfter), 0),
		ValidBefore: time.Unix(int64(cert.ValidBefore), 0),
		Fingerprint: uk.Fingerprint,
	}, nil
}

// sshValidity applies the configured default and bounds to a requested
// certificate lifetime.
func (s *Accounts) sshValidity(requested *time.Duration) (time.Duration, error) {
	if requested == nil {
		return s.cfg.SSHCertValidity, nil
	}
	switch d, most := *requested, s.cfg.SSHCertMaxValidity; {
	case d < MinSSHCertValidity:
		return 0, domain.Invalid("validity", "validity.min", fmt.Sprintf("a certificate is valid for at least %s; leave validity unset for the default (%s)", shortDuration(MinSSHCertValidity), shortDuration(s.cfg.SSHCertValidity)))
	case d > most:
		return 0, domain.Invalid("validity", "validity.max", fmt.Sprintf("a certificate is valid for at most %s on this server; %s asked", shortDuration(most), shortDuration(d)))
	default:
		return d, nil
	}
}

// SSHCertificateAuthority returns the SSH user CA's public key as one line
// of sshd's TrustedUserCAKeys file.
func (s *Accounts) SSHCertificateAuthority(ctx context.Context, p *auth.Principal) (string, error) {
	if err := s.authorize(ctx, p, opApiInfoGetSSHCertificateAuthority, policy.None); err != nil {
		return "", err
	}
	if s.sshCA == nil {
		return "", errNoSSHCA
	}
	return s.sshCA.TrustedUserCAKeys(), nil
}

// shortDuration prints 8h rather than 8h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
