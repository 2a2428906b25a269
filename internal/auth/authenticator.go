package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Authenticator resolves "Authorization: Bearer <access token>" to a
// principal. The token's signature is checked by the verifier (which caches
// verified tokens); the session and the account are checked on every request
// against in-memory views that the change feed invalidates, so a revoked
// session or a locked account is refused by every replica within the feed's
// polling interval, and at once by the replica that made the change.
type Authenticator struct {
	verifier *token.Verifier
	st       store.Store
	now      func() time.Time

	mu       sync.RWMutex
	gen      uint64 // bumped by every invalidation; see load
	sessions *view[*domain.Session]
	users    *view[*domain.User]
	tokens   apiTokens                 // API tokens (apitoken.go); rows guarded by mu
	services *view[*store.Service]     // registered services (acting.go)
	bindings *view[*store.CertBinding] // client certificates' bindings (clientcert.go)
	touches  sync.WaitGroup
	// backends read what a request without a bearer token carries
	// (backend.go); set while wiring, read-only after.
	backends []Backend
	// siteAudience, when set, is the audience of the JWTs registered
	// sites sign (site.go); empty: sites are not recognized.
	siteAudience string
	// fresh, when set (Strict), runs before every authentication.
	fresh func(context.Context) error
}

// maxCached bounds each in-memory view; past it the entries least recently
// read make room (view.go), which costs a reload and never a wrong answer.
const maxCached = 100_000

// NewAuthenticator returns an authenticator; wire its Invalidate methods to
// the change feed.
func NewAuthenticator(v *token.Verifier, st store.Store, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{
		verifier: v, st: st, now: now,
		sessions: newView[*domain.Session](maxCached),
		users:    newView[*domain.User](maxCached),
		tokens:   apiTokens{rows: newView[*domain.APIToken](maxCached), touched: newView[time.Time](maxCached)},
		services: newView[*store.Service](maxCached),
		bindings: newView[*store.CertBinding](maxCached),
	}
}

// InvalidateSession drops what is known of a session.
func (a *Authenticator) InvalidateSession(id string) {
	a.mu.Lock()
	a.gen++
	a.sessions.remove(id)
	a.mu.Unlock()
}

// InvalidateUser drops what is known of an account.
func (a *Authenticator) InvalidateUser(uid string) {
	a.mu.Lock()
	a.gen++
	a.users.remove(uid)
	a.mu.Unlock()
	for _, b := range a.backends {
		if inv, ok := b.(UserInvalidator); ok {
			inv.InvalidateUser(uid)
		}
	}
}

// Reset drops everything kept: the change feed lost track.
func (a *Authenticator) Reset() {
	a.mu.Lock()
	a.gen++
	a.sessions.clear()
	a.users.clear()
	a.tokens.rows.clear()
	a.services.clear()
	a.bindings.clear()
	a.mu.Unlock()
	for _, b := range a.backends {
		if r, ok := b.(Resetter); ok {
			r.Reset()
		}
	}
}

// Strict makes every authentication wait first for barrier, the change
// feed's (changefeed.Follower.Barrier): a session revoked, an account
// locked, an API token or a certificate binding removed on any replica
// before the request began is refused by this one, at the price of about
// one read of the feed's head per round of requests. Without it, another
// replica's revocation reaches this one's views within the feed's polling
// interval. Call it while wiring.
func (a *Authenticator) Strict(barrier func(context.Context) error) { a.fresh = barrier }

// catchUp waits for the barrier in strict mode.
func (a *Authenticator) catchUp(ctx context.Context) error {
	if a.fresh == nil {
		return nil
	}
	if err := a.fresh(ctx); err != nil {
		return fmt.Errorf("auth: catch up with the change feed: %w", err)
	}
	return nil
}

// BearerToken extracts the bearer token of h; ok is false when there is no
// Authorization header at all.
func BearerToken(h http.Header) (tok string, ok bool, err error) {
	v := h.Get("Authorization")
	if v == "" {
		return "", false, nil
	}
	scheme, rest, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
		return "", true, domain.Unauthenticated("malformed Authorization header: expected \"Bearer <access token>\"")
	}
	return strings.TrimSpace(rest), true, nil
}

// Authenticate returns the principal named by the request's credentials, nil
// when it carries none, or an unauthenticated error when they are bad. The
// order: a bearer token (Trellis's own tokens); else each backend in turn
// (backend.go); else, with no Authorization header, a TLS client
// certificate (see ClientCertFrom). An Authorization header that nothing
// read is refused, not ignored.
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header) (*Principal, error) {
	v := h.Get("Authorization")
	if scheme, _, _ := strings.Cut(strings.TrimSpace(v), " "); strings.EqualFold(scheme, "Bearer") {
		raw, _, err := BearerToken(h)
		if err != nil {
			return nil, err
		}
		return a.AuthenticateToken(ctx, raw)
	}
	// Before the backends, whatever headers they read: a backend may keep
	// state (verified passwords) that a change on another replica drops.
	if err := a.catchUp(ctx); err != nil {
		return nil, err
	}
	p, read, err := a.authenticateBackends(ctx, h)
	if read {
		return p, err
	}
	if v != "" {
		return nil, a.malformedAuthorization(v)
	}
	return a.authenticateCert(ctx)
}

// AuthenticateToken resolves an access token, or an API token, to a
// principal.
func (a *Authenticator) AuthenticateToken(ctx context.Context, raw string) (*Principal, error) {
	if err := a.catchUp(ctx); err != nil {
		return nil, err
	}
	if strings.HasPrefix(raw, APITokenPrefix) {
		return a.authenticateAPIToken(ctx, raw)
	}
	claims, err := a.verifier.Verify(raw)
	if err != nil {
		// Only a token the centre did not sign pays for this look.
		if iss, ok := a.siteToken(raw); ok {
			return a.authenticateSite(ctx, raw, iss)
		}
		return nil, err
	}
	if claims.Actor != "" {
		return a.authenticateActing(ctx, claims)
	}
	sess, err := a.liveSession(ctx, claims.SessionID, claims.Subject, a.now())
	if err != nil {
		return nil, err
	}
	u, err := a.user(ctx, claims.Subject)
	if err != nil {
		return nil, err
	}
	if u == nil || u.State != domain.UserActive {
		return nil, domain.Unauthenticated("account is not active")
	}
	return &Principal{
		UID:            u.UID,
		Admin:          u.Admin,
		SessionID:      sess.ID,
		SessionExpires: sess.ExpiresAt,
		TokenExpires:   claims.Expiry,
	}, nil
}

// liveSession is the revocation check of every request with an access
// token: the token's session exists, is live at now, and is uid's.
func (a *Authenticator) liveSession(ctx context.Context, id, uid string, now time.Time) (*domain.Session, error) {
	sess, err := a.session(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess == nil || !sess.Live(now) || sess.UID != uid {
		return nil, domain.Unauthenticated("session revoked or expired: log in again")
	}
	return sess, nil
}

func (a *Authenticator) session(ctx context.Context, id string) (*domain.Session, error) {
	a.mu.RLock()
	s, ok := a.sessions.get(id)
	a.mu.RUnlock()
	if ok {
		return s, nil
	}
	return load(a, ctx, a.sessions, id, func(tx store.Tx) (*domain.Session, error) {
		return tx.Sessions().Get(ctx, id)
	})
}

func (a *Authenticator) user(ctx context.Context, uid string) (*domain.User, error) {
	a.mu.RLock()
	u, ok := a.users.get(uid)
	a.mu.RUnlock()
	if ok {
		return u, nil
	}
	return load(a, ctx, a.users, uid, func(tx store.Tx) (*domain.User, error) {
		return tx.Users().Get(ctx, uid)
	})
}

// load reads one entry from the store and remembers it, unless an
// invalidation happened while it was being read: then the value may predate
// the change, so it is returned for this request but not kept. A missing row
// is remembered as nil.
func load[T any](a *Authenticator, ctx context.Context, v *view[*T], key string, read func(store.Tx) (*T, error)) (*T, error) {
	a.mu.RLock()
	gen := a.gen
	a.mu.RUnlock()
	var val *T
	err := a.st.View(ctx, func(tx store.Tx) error {
		var err error
		val, err = read(tx)
		return err
	})
	if domain.HasCode(err, domain.CodeNotFound) {
		val, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.gen == gen {
		v.put(key, val)
	}
	a.mu.Unlock()
	return val, nil
}
