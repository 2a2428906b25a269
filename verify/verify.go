// Package verify checks Trellis access tokens offline, for the testbed's
// other services: a service imports it, points it at the Trellis server, and
// verifies each request's bearer token without calling Trellis.
//
// A [Verifier] fetches the server's key set (a JSON Web Key Set of Ed25519
// keys, at Issuer + "/.well-known/jwks.json") once at start, refetches it in
// the background every Options.Refresh, and refetches it at once when a token
// names a key it does not know, so a key that Trellis rotated in is picked up
// with the first token it signed. Those refetches are rate-limited
// (Options.MinRefetch): a flood of tokens with made-up key ids costs the
// server at most one request per window.
//
// Each token is checked once (an Ed25519 verification costs tens of
// microseconds) and remembered, by its SHA-256, until it expires; a repeat
// costs a hash and a map lookup.
//
// # Revocation
//
// Offline verification cannot see a logout, a locked account or a password
// reset: a token stays valid here until it expires (10 minutes by default).
// A service that must refuse a revoked session at once asks Trellis instead
// (Auth.WhoAmI with the same token).
//
// # Usage
//
//	v, err := verify.New(ctx, verify.Options{Issuer: "https://trellis.example.org"})
//	if err != nil {
//		return err // the key set could not be fetched
//	}
//	defer v.Close()
//
//	http.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		claims, err := v.VerifyRequest(r)
//		if err != nil {
//			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
//			http.Error(w, "unauthenticated", http.StatusUnauthorized)
//			return
//		}
//		fmt.Fprintf(w, "hello, %s\n", claims.Subject)
//	}))
package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/token"
)

// Defaults of Options.
const (
	DefaultAudience   = "trellis"
	DefaultRefresh    = 5 * time.Minute
	DefaultMinRefetch = 10 * time.Second
	DefaultLeeway     = 30 * time.Second
	// DefaultCacheSize is how many verified tokens are remembered: at a
	// few hundred bytes each, a few MiB.
	DefaultCacheSize = 10_000
)

// JWKSPath is where a Trellis server publishes its key set, under its
// public URL.
const JWKSPath = "/.well-known/jwks.json"

// fetchTimeout bounds one fetch of the key set, whoever asked for it.
const fetchTimeout = 10 * time.Second

// Options configure a Verifier. Only Issuer is required.
type Options struct {
	// Issuer is the Trellis server's public URL, exactly as it appears in
	// its tokens' "iss" claim (e.g. "https://trellis.example.org"). The key
	// set is fetched from Issuer + JWKSPath unless JWKSURL is set.
	Issuer string
	// JWKSURL overrides where the key set is fetched, e.g. when the service
	// reaches Trellis by an internal address.
	JWKSURL string
	// Audience must be among the token's "aud" (default "trellis").
	Audience string
	// HTTPClient fetches the key set (default: a client with a 10s timeout).
	HTTPClient *http.Client
	// Refresh is how often the key set is refetched in the background
	// (default 5m). It bounds how long a key withdrawn on the server (say,
	// compromised) keeps verifying here.
	Refresh time.Duration
	// MinRefetch is the least time between two refetches caused by tokens
	// with unknown key ids (default 10s).
	MinRefetch time.Duration
	// Leeway tolerates clock skew between Trellis and this service when
	// checking "exp" and "nbf" (default 30s, as Trellis itself; negative:
	// none). Trellis sets "nbf" to the issuing instant, so a clock a little
	// behind would otherwise refuse fresh tokens.
	Leeway time.Duration
	// CacheSize bounds the verified-token cache (default DefaultCacheSize;
	// negative: no cache, every token is checked in full).
	CacheSize int
	// Now is the clock tokens are checked against (default time.Now). The
	// refresh schedule always follows the real clock.
	Now func() time.Time
}

// Claims are what a verified access token says about its bearer.
type Claims struct {
	// Subject is the user's uid.
	Subject string
	// SessionID names the login session the token was issued for.
	SessionID string
	// Actor is the service acting for Subject, for tokens a service holds
	// on a user's behalf; empty when the user presents its own token.
	Actor string
	// Purpose narrows a token Trellis issued for a site: "connect" (a
	// connection ticket) or "request" (a user's requests); empty for
	// ordinary access tokens.
	Purpose  string
	Issuer   string
	Audience []string
	// ID ("jti") is unique per token.
	ID        string
	IssuedAt  time.Time
	NotBefore time.Time // zero when the token does not say
	Expiry    time.Time
}

// Errors of Verify and VerifyRequest. Every error they return matches
// exactly one of these with errors.Is; all of them mean the request is
// unauthenticated (HTTP 401).
var (
	// ErrMissing: no token (VerifyRequest: no "Authorization: Bearer" header).
	ErrMissing = errors.New("verify: no access token")
	// ErrMalformed: not a well-formed signed JWT.
	ErrMalformed = errors.New("verify: malformed access token")
	// ErrInvalid: the signature does not verify, or the token is not a
	// Trellis access token (wrong type, algorithm or missing claims).
	ErrInvalid = errors.New("verify: invalid access token")
	// ErrUnknownKey: signed by a key the server does not publish, even after
	// a refetch (or the refetch was rate-limited or failed).
	ErrUnknownKey = errors.New("verify: access token signed by an unknown key")
	// ErrExpired: past its expiry.
	ErrExpired = errors.New("verify: access token expired")
	// ErrNotYetValid: before its "nbf".
	ErrNotYetValid = errors.New("verify: access token not yet valid")
	// ErrIssuer: issued by another issuer than Options.Issuer.
	ErrIssuer = errors.New("verify: access token from another issuer")
	// ErrAudience: issued for another audience than Options.Audience.
	ErrAudience = errors.New("verify: access token for another audience")
)

// Verifier verifies access tokens. It is safe for concurrent use. Create one
// per process with New and share it; Close stops its background refresh.
type Verifier struct {
	inner   *token.Verifier
	keys    atomic.Pointer[keySet]
	fetcher *fetcher

	minRefetch time.Duration
	// fetching serializes fetches (background and on demand), so an older
	// answer never replaces a newer one; it is a channel so that a request
	// waiting for another's fetch can give up with its context.
	fetching chan struct{}
	lastMiss time.Time // last fetch caused by an unknown kid; under fetching
	// clock times MinRefetch: the real clock (Options.Now is the tokens'),
	// which tests move (export_test.go).
	clock     func() time.Time
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
}

// New fetches the key set and returns a Verifier that keeps it fresh until
// Close. It fails when the key set cannot be fetched or holds no usable key:
// a service started that way would refuse every token.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if opts.Issuer == "" {
		return nil, errors.New("verify: Options.Issuer is required")
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.JWKSURL == "" {
		opts.JWKSURL = strings.TrimSuffix(opts.Issuer, "/") + JWKSPath
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.MinRefetch <= 0 {
		opts.MinRefetch = DefaultMinRefetch
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	switch {
	case opts.Leeway == 0:
		opts.Leeway = DefaultLeeway
	case opts.Leeway < 0:
		opts.Leeway = 0
	}
	v := &Verifier{
		fetcher:    &fetcher{url: opts.JWKSURL, client: opts.HTTPClient},
		minRefetch: opts.MinRefetch,
		fetching:   make(chan struct{}, 1),
		done:       make(chan struct{}),
		clock:      time.Now,
	}
	set, err := v.fetcher.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("verify: the key set at %s holds no Ed25519 key with a kid", opts.JWKSURL)
	}
	v.keys.Store(&set)
	v.inner = token.NewVerifier(keySource{v}, token.VerifierOptions{
		Issuer:    opts.Issuer,
		Audience:  opts.Audience,
		Leeway:    opts.Leeway,
		Now:       opts.Now,
		CacheSize: opts.CacheSize,
	})
	bg, stop := context.WithCancel(context.Background())
	v.stop = stop
	go v.refreshLoop(bg, opts.Refresh)
	return v, nil
}

// Close stops the background refresh and waits for it to end. Verify keeps
// working afterwards with the last key set, but fetches no more.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.closed.Store(true)
		v.stop()
		<-v.done
	})
}

// Verify checks raw, a compact JWT, and returns its claims. ctx bounds the
// wait when the token names an unknown key and the key set is refetched.
//
// The claims say who the token was issued to; whether the session is still
// live is not known offline (see the package documentation).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, err := v.inner.Verify(raw)
	if err != nil {
		verr := classify(err)
		if verr != ErrUnknownKey {
			return nil, verr
		}
		// Perhaps the server rotated in a key we have not fetched yet.
		kid := headerKID(raw)
		if kid == "" || !v.refetchFor(ctx, kid) {
			return nil, ErrUnknownKey
		}
		if c, err = v.inner.Verify(raw); err != nil {
			return nil, classify(err)
		}
	}
	return &Claims{
		Subject:   c.Subject,
		SessionID: c.SessionID,
		Actor:     c.Actor,
		Purpose:   c.Purpose,
		Issuer:    c.Issuer,
		Audience:  c.Audience, // c is the inner verifier's copy: ours to keep
		ID:        c.ID,
		IssuedAt:  c.IssuedAt,
		NotBefore: c.NotBefore,
		Expiry:    c.Expiry,
	}, nil
}

// VerifyRequest verifies the bearer token of r's Authorization header
// (RFC 6750), with r's context. A request without one gets ErrMissing.
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, ErrMissing
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, ErrMissing
	}
	return v.Verify(r.Context(), raw)
}

// reasons maps the token package's refusal reasons to this package's.
var reasons = []struct{ theirs, ours error }{
	{token.ErrMissing, ErrMissing},
	{token.ErrMalformed, ErrMalformed},
	{token.ErrUnknownKey, ErrUnknownKey},
	{token.ErrIssuer, ErrIssuer},
	{token.ErrAudience, ErrAudience},
	{token.ErrExpired, ErrExpired},
	{token.ErrNotYetValid, ErrNotYetValid},
	{token.ErrInvalid, ErrInvalid},
}

// classify turns the token package's error into one of ours. Internal types
// and causes (which may quote parser details) do not leak to callers; an
// error with no known reason still refuses, as ErrInvalid.
func classify(err error) error {
	for _, r := range reasons {
		if errors.Is(err, r.theirs) {
			return r.ours
		}
	}
	return ErrInvalid
}

// headerKID reads the "kid" of raw's JOSE header without verifying
// anything: it only decides whether a refetch could help. The token package
// already bounded raw's size and parsed it.
func headerKID(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.KID
}

// refetchFor refetches the key set on behalf of a token signed by kid, at
// most once per MinRefetch, and reports whether kid is known afterwards.
// Concurrent callers wait for one fetch instead of each making their own.
func (v *Verifier) refetchFor(ctx context.Context, kid string) bool {
	if v.closed.Load() {
		return false
	}
	select {
	case v.fetching <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-v.fetching }()
	// Another caller, or the background refresh, may have fetched it while
	// we waited.
	if v.known(kid) {
		return true
	}
	now := v.clock()
	if !v.lastMiss.IsZero() && now.Sub(v.lastMiss) < v.minRefetch {
		return false
	}
	v.lastMiss = now
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	set, err := v.fetcher.fetch(ctx)
	if err != nil {
		// Keep the keys we have; the background refresh or the next miss
		// after MinRefetch tries again.
		return false
	}
	v.keys.Store(&set)
	return v.known(kid)
}

func (v *Verifier) known(kid string) bool {
	_, ok := (*v.keys.Load())[kid]
	return ok
}

// refreshLoop refetches the key set every interval until ctx ends. A failed
// fetch keeps the previous set: the server being briefly unreachable must not
// make every token fail here.
func (v *Verifier) refreshLoop(ctx context.Context, every time.Duration) {
	defer close(v.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case v.fetching <- struct{}{}:
		case <-ctx.Done():
			return
		}
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		set, err := v.fetcher.fetch(fctx)
		cancel()
		if err == nil {
			v.keys.Store(&set)
		}
		<-v.fetching
	}
}

// keySource lets the token package find keys in the current set. It never
// fetches: the token package has no context to give, and Verify decides when
// a refetch is worth it.
type keySource struct{ v *Verifier }

func (s keySource) PublicKey(kid string) (ed25519.PublicKey, bool) {
	k, ok := (*s.v.keys.Load())[kid]
	return k, ok
}
