package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// API tokens are "trls_<id>_<secret>": id is 16 random bytes in lower-case
// base32 (26 characters, no '_'), the key the token is looked up by; secret
// is 32 random bytes in unpadded base64url (43 characters), of which the
// store keeps only SHA-256. The prefix lets secret scanners spot a leaked
// token and tells the authenticator it is not a JWT.
const APITokenPrefix = "trls_"

var apiTokenIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

const (
	apiTokenIDLen     = 26
	apiTokenSecretLen = 43
)

// apiTokenTouchEvery is how often a token's last use is written at most.
const apiTokenTouchEvery = time.Minute

// NewAPIToken returns a fresh token, its id and the hash of its secret.
func NewAPIToken() (tok, id string, secretHash []byte) {
	var idb [16]byte
	var sec [32]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(sec[:])
	id = apiTokenIDEncoding.EncodeToString(idb[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	return APITokenPrefix + id + "_" + secret, id, hashAPISecret(secret)
}

func hashAPISecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// parseAPIToken splits a token into id and secret; ok is false when it
// does not have the token's shape.
func parseAPIToken(raw string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(raw, APITokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != apiTokenIDLen || len(secret) != apiTokenSecretLen {
		return "", "", false
	}
	return id, secret, true
}

// errBadAPIToken is the one answer to a token that is malformed, unknown, or
// whose secret is wrong: which of them it was is of use only to a guesser.
var errBadAPIToken = domain.Unauthenticated("API token not valid")

// TokenRefusal is the refusal of an API token whose secret checked out but
// that may not be used (expired, revoked, its account not active). It says
// whose token it was, so that the refusal can be audited; it never holds
// the secret. Its code and message are those of Err.
type TokenRefusal struct {
	Err       *domain.Error
	UID, Name string
	Reason    string
}

func (e *TokenRefusal) Error() string { return e.Err.Error() }
func (e *TokenRefusal) Unwrap() error { return e.Err }

// apiTokens holds what the authenticator knows of API tokens: the stored
// rows (nil for an unknown id), invalidated through the change feed, and
// when each token's last use was written.
type apiTokens struct {
	rows    *view[*domain.APIToken]
	mu      sync.Mutex
	touched *view[time.Time]
}

// InvalidateAPIToken drops what is known of an API token.
func (a *Authenticator) InvalidateAPIToken(id string) {
	a.mu.Lock()
	a.gen++
	a.tokens.rows.remove(id)
	a.mu.Unlock()
}

// authenticateAPIToken resolves an API token to a principal. The secret is
// compared in constant time; expiry, revocation and the account's state are
// checked on every request.
func (a *Authenticator) authenticateAPIToken(ctx context.Context, raw string) (*Principal, error) {
	id, secret, ok := parseAPIToken(raw)
	if !ok {
		return nil, errBadAPIToken
	}
	t, err := a.apiToken(ctx, id)
	if err != nil {
		return nil, err
	}
	if t == nil || subtle.ConstantTimeCompare(hashAPISecret(secret), t.SecretHash) != 1 {
		return nil, errBadAPIToken
	}
	now := a.now()
	refuse := func(reason, format string, args ...any) error {
		return &TokenRefusal{Err: domain.Unauthenticated(format, args...), UID: t.UID, Name: t.Name, Reason: reason}
	}
	switch {
	case !t.RevokedAt.IsZero():
		return nil, refuse("api token revoked", "API token %q was revoked at %s", t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
	case !now.Before(t.ExpiresAt):
		return nil, refuse("api token expired", "API token %q expired at %s: create a new one", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	u, err := a.user(ctx, t.UID)
	if err != nil {
		return nil, err
	}
	if u == nil || u.State != domain.UserActive {
		return nil, refuse("account not active", "account is not active")
	}
	a.touchAPIToken(t.ID, now)
	return &Principal{
		UID:          u.UID,
		Admin:        u.Admin,
		TokenExpires: t.ExpiresAt,
		Scopes:       append([]string{}, strings.Fields(t.Scopes)...),
		TokenID:      t.ID,
		TokenName:    t.Name,
	}, nil
}

func (a *Authenticator) apiToken(ctx context.Context, id string) (*domain.APIToken, error) {
	a.mu.RLock()
	t, ok := a.tokens.rows.get(id)
	a.mu.RUnlock()
	if ok {
		return t, nil
	}
	return load(a, ctx, a.tokens.rows, id, func(tx store.Tx) (*domain.APIToken, error) {
		return tx.APITokens().Get(ctx, id)
	})
}

// touchAPIToken records a use of token id, at most once a minute per token
// and per replica, in a transaction of its own off the request's path: the
// last use is advice for whoever reviews tokens, not worth a write (nor a
// failure) per request.
func (a *Authenticator) touchAPIToken(id string, now time.Time) {
	a.tokens.mu.Lock()
	last, seen := a.tokens.touched.get(id)
	due := !seen || now.Sub(last) >= apiTokenTouchEvery || now.Before(last)
	if due {
		a.tokens.touched.put(id, now)
	}
	a.tokens.mu.Unlock()
	if !due {
		return
	}
	a.touches.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A failure loses one record of use, which the next use retries
		// a minute later; it must not fail the request that was allowed.
		_ = a.st.Update(ctx, func(tx store.Tx) error { return tx.APITokens().Touch(ctx, id, now) })
	})
}

// Wait waits for the background writes of API tokens' last use.
func (a *Authenticator) Wait() { a.touches.Wait() }
