package store

import (
	"context"
	"time"
)

// IdentityLink links an identity at an external identity provider (the
// oidc authentication backend's) to a Trellis account.
type IdentityLink struct {
	Issuer    string
	Subject   string
	UID       string
	Email     string // as the provider said at linking, for the user's list
	CreatedAt time.Time
}

// ExternalLogin is a login through an external identity provider, from its
// start (a client asks for the provider's address) until the client
// collects the session it ended in.
type ExternalLogin struct {
	ID string
	// StateHash is SHA-256 of the OAuth state the provider sends back with
	// the browser; PollHash of the secret the starting client collects the
	// session with.
	StateHash []byte
	PollHash  []byte
	Nonce     string
	Verifier  string // the PKCE code verifier
	// LinkUID, when set, is the logged-in user who started the login to
	// link the identity to their account.
	LinkUID string
	// Issuer, Subject and Email are set when the provider has vouched for
	// the identity.
	Issuer, Subject, Email string
	// LinkHash is SHA-256 of the token of the link form shown when the
	// identity was linked to no account (first use).
	LinkHash []byte
	// ReturnTo is the starting client's loopback address the browser is
	// sent back to with the finish code; empty when the user copies it.
	ReturnTo string
	// FinishHash is SHA-256 of the finish code, set when the login has
	// ended in an account: only its holder collects the login.
	FinishHash []byte
	// UID is set when the login has ended in an account.
	UID       string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Federation holds identity links and logins in progress through external
// identity providers.
type Federation interface {
	// CreateLink stores a link; domain already-exists when the identity is
	// linked already, domain not-found when there is no such user.
	CreateLink(ctx context.Context, l *IdentityLink) error
	// GetLink returns the link of an identity, or domain not-found.
	GetLink(ctx context.Context, issuer, subject string) (*IdentityLink, error)
	// ListLinks returns uid's links, oldest first.
	ListLinks(ctx context.Context, uid string) ([]*IdentityLink, error)
	// DeleteLink removes uid's link of an identity; domain not-found when
	// uid holds no such link.
	DeleteLink(ctx context.Context, uid, issuer, subject string) error

	// CreateLogin stores a login in progress.
	CreateLogin(ctx context.Context, l *ExternalLogin) error
	// GetLogin returns a login, expired or not, or domain not-found.
	GetLogin(ctx context.Context, id string) (*ExternalLogin, error)
	// GetLoginByState returns the login whose state hashes to stateHash, or
	// domain not-found.
	GetLoginByState(ctx context.Context, stateHash []byte) (*ExternalLogin, error)
	// ClaimCallback records the identity the provider vouched for, once:
	// domain already-exists when the login came back before (a replayed or
	// concurrent callback), domain not-found when it is gone.
	ClaimCallback(ctx context.Context, id, issuer, subject, email string) error
	// UpdateLogin records the link form's token (LinkHash), the account
	// (UID) and the finish code (FinishHash); domain not-found when the
	// login is gone.
	UpdateLogin(ctx context.Context, l *ExternalLogin) error
	// DeleteLogin removes a login; domain not-found when it is gone, so of
	// two that end it exactly one succeeds.
	DeleteLogin(ctx context.Context, id string) error
	// DeleteExpiredLogins removes logins that expired before the cutoff.
	DeleteExpiredLogins(ctx context.Context, before time.Time) (int, error)
}
