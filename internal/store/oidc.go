package store

import (
	"context"
	"github.com/trellis-testbed/trellis/internal/domain"
	"time"
)

// OIDCAuthRequest is an authorization request, from the client's redirect
// to the provider until its code is redeemed or it expires.
type OIDCAuthRequest struct {
	ID           string
	ClientID     string
	RedirectURI  string
	Scopes       []string
	State        string
	Nonce        string
	ResponseType string
	ResponseMode string
	// CodeChallenge and CodeChallengeMethod are the PKCE challenge.
	CodeChallenge       string
	CodeChallengeMethod string
	// UID and AuthTime are set when the user has logged in.
	UID      string
	AuthTime time.Time
	// CodeHash is SHA-256 of the authorization code issued for it; nil
	// until issued, and again once redeemed.
	CodeHash  []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OIDCToken is an access token the provider issued to a client for a user:
// the token the client holds is opaque and names this row.
type OIDCToken struct {
	ID        string
	ClientID  string
	UID       string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OIDC holds the OpenID Connect provider's clients, authorization requests
// and access tokens.
type OIDC interface {
	// CreateClient stores a client; domain already-exists naming the field
	// "name" when the id is taken.
	CreateClient(ctx context.Context, c *domain.OIDCClient) error
	// GetClient returns the client, or domain not-found.
	GetClient(ctx context.Context, id string) (*domain.OIDCClient, error)
	// ListClients returns every client, by id.
	ListClients(ctx context.Context) ([]*domain.OIDCClient, error)
	// DeleteClient removes a client with its pending requests and its
	// tokens; domain not-found when there is none.
	DeleteClient(ctx context.Context, id string) error

	// CreateAuthRequest stores a request; domain not-found when its client
	// is gone.
	CreateAuthRequest(ctx context.Context, r *OIDCAuthRequest) error
	// GetAuthRequest returns the request, expired or not (the caller
	// judges), or domain not-found.
	GetAuthRequest(ctx context.Context, id string) (*OIDCAuthRequest, error)
	// CompleteAuthRequest records who logged in, and when; domain
	// not-found when the request is gone.
	CompleteAuthRequest(ctx context.Context, id, uid string, at time.Time) error
	// SetCode records the hash of the code issued for a request; domain
	// not-found when the request is gone.
	SetCode(ctx context.Context, id string, codeHash []byte) error
	// RedeemCode returns the request whose code hashes to codeHash and
	// forgets the code, so of two redemptions exactly one gets it; domain
	// not-found when no request holds that code.
	RedeemCode(ctx context.Context, codeHash []byte) (*OIDCAuthRequest, error)
	// DeleteAuthRequest removes a request; a missing one is no error.
	DeleteAuthRequest(ctx context.Context, id string) error

	// CreateToken stores an access token; domain not-found when its client
	// is gone.
	CreateToken(ctx context.Context, t *OIDCToken) error
	// GetToken returns the token, expired or not, or domain not-found.
	GetToken(ctx context.Context, id string) (*OIDCToken, error)
	// DeleteToken removes a token; a missing one is no error.
	DeleteToken(ctx context.Context, id string) error
	// DeleteUserTokens removes uid's tokens issued to clientID and returns
	// how many.
	DeleteUserTokens(ctx context.Context, uid, clientID string) (int, error)
	// DeleteExpired removes requests and tokens that expired before the
	// cutoff and returns how many.
	DeleteExpired(ctx context.Context, before time.Time) (int, error)
}
