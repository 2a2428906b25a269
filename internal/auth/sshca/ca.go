// Package sshca is Trellis's SSH certificate authority. It checks the SSH
// public keys users register, and signs short-lived OpenSSH user
// certificates for them with an Ed25519 key that is created on first start
// and kept in the store, its private half sealed like the token-signing
// keys. Sites trust the authority through sshd's TrustedUserCAKeys.
package sshca

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Comment ends the authority's TrustedUserCAKeys line, so operators
// recognize it in a site's sshd configuration.
const Comment = "trellis-user-ca"

// ClockSkew backdates every certificate, so a site whose clock runs a
// little behind accepts it at once.
const ClockSkew = 5 * time.Minute

// extensions are what ssh-keygen grants a user certificate by default: the
// certificate stands in for an authorized key, with the same permissions.
var extensions = map[string]string{
	"permit-X11-forwarding":   "",
	"permit-agent-forwarding": "",
	"permit-port-forwarding":  "",
	"permit-pty":              "",
	"permit-user-rc":          "",
}

// CA signs SSH user certificates. It is safe for concurrent use.
type CA struct {
	signer ssh.Signer
}

// Load returns the SSH user CA kept in st, creating it on first start.
// Replicas that start at once agree on one key. A key stored in plain
// before a key-encryption key was configured is sealed on the way.
func Load(ctx context.Context, st store.Store, sealer keys.Sealer) (*CA, error) {
	if sealer == nil {
		sealer = keys.Plain()
	}
	a, err := keys.LoadAuthority(ctx, st, sealer, store.AuthoritySSHUser, func() (*store.Authority, error) { return newAuthority(sealer) })
	if err != nil {
		return nil, fmt.Errorf("sshca: loading the SSH user CA: %w", err)
	}
	return open(a, sealer)
}

func newAuthority(sealer keys.Sealer) (*store.Authority, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the SSH user CA key: %w", err)
	}
	// Store the 32-byte seed, the canonical private key (RFC 8032).
	sealed, err := sealer.Seal(priv.Seed())
	if err != nil {
		return nil, fmt.Errorf("sealing the SSH user CA key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &store.Authority{
		Name:       store.AuthoritySSHUser,
		Algorithm:  ssh.KeyAlgoED25519,
		PublicKey:  sshPub.Marshal(),
		PrivateKey: sealed,
		CreatedAt:  time.Now(),
	}, nil
}

// open decodes a stored authority; it checks that the private key matches
// the public one the sites trust.
func open(a *store.Authority, sealer keys.Sealer) (*CA, error) {
	if a.Algorithm != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("sshca: the SSH user CA key is of type %q, which this release cannot use", a.Algorithm)
	}
	seed, err := sealer.Open(a.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("sshca: opening the SSH user CA key: %w", err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("sshca: opening the SSH user CA key: the private key has the wrong size")
	}
	signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, fmt.Errorf("sshca: opening the SSH user CA key: %w", err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), a.PublicKey) {
		return nil, errors.New("sshca: opening the SSH user CA key: the private key does not match the public key")
	}
	return &CA{signer: signer}, nil
}

// PublicKey returns the authority's public key.
func (c *CA) PublicKey() ssh.PublicKey { return c.signer.PublicKey() }

// TrustedUserCAKeys returns the authority's public key as one line of
// sshd's TrustedUserCAKeys file, without the newline:
// "ssh-ed25519 AAAA… trellis-user-ca".
func (c *CA) TrustedUserCAKeys() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.PublicKey()))) + " " + Comment
}

// Request is what a certificate says.
type Request struct {
	Key ssh.PublicKey
	// UID is the one principal: the login name at sites.
	UID    string
	Serial uint64
	// The certificate is valid from Now-ClockSkew to Now+Validity.
	Now      time.Time
	Validity time.Duration
}

// KeyID is the certificate's key id, which sshd logs at every login:
// enough to find the issuance in the audit record.
func KeyID(uid string, serial uint64) string { return fmt.Sprintf("trellis:%s:%d", uid, serial) }

// Sign issues a user certificate.
func (c *CA) Sign(r Request) (*ssh.Certificate, error) {
	if r.UID == "" || r.Validity <= 0 {
		return nil, errors.New("sshca: a certificate needs a principal and a positive validity")
	}
	cert := &ssh.Certificate{
		Key:             r.Key,
		Serial:          r.Serial,
		CertType:        ssh.UserCert,
		KeyId:           KeyID(r.UID, r.Serial),
		ValidPrincipals: []string{r.UID},
		ValidAfter:      uint64(r.Now.Add(-ClockSkew).Unix()),
		ValidBefore:     uint64(r.Now.Add(r.Validity).Unix()),
		Permissions:     ssh.Permissions{Extensions: maps.Clone(extensions)},
	}
	if err := cert.SignCert(rand.Reader, c.signer); err != nil {
		return nil, fmt.Errorf("sshca: signing a certificate: %w", err)
	}
	return cert, nil
}

// NewSerial returns a random, non-zero serial number: replicas issue
// certificates without coordinating, and 64 random bits make a collision
// practically impossible.
func NewSerial() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s
		}
	}
}

// MarshalCertificate returns a certificate in authorized_keys form, what
// ssh reads from id_ed25519-cert.pub, ending with its key id as comment.
func MarshalCertificate(cert *ssh.Certificate) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))) + " " + cert.KeyId
}
