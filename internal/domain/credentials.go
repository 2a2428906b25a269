package domain

// The credentials an account holds, as the store keeps them (secrets only as hashes).

import "time"

// Session is a login. Tokens name it by ID; revoking it refuses them all.
type Session struct {
	ID          string
	UID         string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	RevokedAt   time.Time // zero while live
	RefreshHash []byte    // SHA-256 of the current refresh token
	// PrevRefreshHash is the refresh token just replaced; presenting it
	// again means it was stolen.
	PrevRefreshHash []byte
	LastSeenAt      time.Time
}

// Live reports whether the session still authenticates at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// APIToken is a user's token for automation. Only a hash of its secret is
// stored: the token itself is shown once, when it is created.
type APIToken struct {
	ID         string // the lookup key, part of the token; not secret
	UID        string
	Name       string // unique among uid's tokens
	Scopes     string // as the policy layer encodes them
	SecretHash []byte // SHA-256 of the secret
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // zero when never used
	RevokedAt  time.Time // zero unless revoked
}

// SSHKey is an SSH public key registered to a user. Its fingerprint is
// unique across all users: a certificate is issued for a key to the one user
// who holds it, which two holders would make ambiguous.
type SSHKey struct {
	UID         string
	Fingerprint string // "SHA256:…", as ssh-keygen -l prints it
	Type        string // "ssh-ed25519", "ecdsa-sha2-nistp256", …
	Bits        int
	Comment     string
	PublicKey   string // authorized_keys form without comment
	CreatedAt   time.Time
}

// OIDCClient is a web service registered to log Trellis users in through
// Trellis's OpenID Connect provider.
type OIDCClient struct {
	ID string // the client_id; a name like a uid
	// SecretHash is SHA-256 of the client secret of a confidential client;
	// nil for a public client (a native or browser app), which proves
	// itself by PKCE alone.
	SecretHash   []byte
	RedirectURIs []string // exact matches only
	CreatedAt    time.Time
}
