package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Bounds of a forwarded request (Providers/Forward).
const (
	// ForwardMaxBody is the most a forwarded request's body may hold: what
	// a site reads of one.
	ForwardMaxBody = 64 << 10
	// ForwardMaxResponse is the most of a site's answer the centre relays.
	ForwardMaxResponse = 8 << 20
	// ForwardTimeout bounds one forwarded request, the site's work
	// included (a site's own exec limit is one minute by default).
	ForwardTimeout = 2 * time.Minute
	// ForwardTokenTTL is the life of the token the centre attaches to a
	// user's forwarded requests to a site (reused for half of it).
	ForwardTokenTTL = 2 * time.Minute

	maxForwardTarget    = 2048
	maxForwardSignature = 4 << 10
)

// userSignatureHeader is the header a site reads the user's signature
// from (internal/provider/usersig.Header; the service does not import the
// site's packages).
const userSignatureHeader = "Trellis-User-Signature"

// ForwardResult is a site's answer to a forwarded request.
type ForwardResult struct {
	Status      int
	Body        []byte
	ContentType string
	// SiteURL is where the site is reached directly.
	SiteURL string
}

// SiteHTTPClient is how the centre reaches sites, for forwarded requests
// and deliveries alike: the system's roots, the centre's own X.509
// authority (a site may serve a certificate it issued) and extraPEM (the
// operator's --site-ca-file). Redirects are not followed: a request goes
// exactly where the site's registered URL says. Each caller bounds its
// requests with its own context.
func SiteHTTPClient(ca *x509ca.CA, extraPEM []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	if ca != nil || len(extraPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if ca != nil {
			for _, c := range ca.Roots() {
				pool.AddCert(c)
			}
		}
		if len(extraPEM) > 0 && !pool.AppendCertsFromPEM(extraPEM) {
			return nil, errors.New("the sites' CA bundle holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

func validateForwardTarget(target string) error {
	u, err := url.ParseRequestURI(target)
	switch {
	case target == "":
		return domain.Invalid("target", "target.required", "the target (path and query at the site) is required")
	case len(target) > maxForwardTarget:
		return domain.Invalid("target", "target.length", "at most 2048 characters")
	case err != nil || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") || u.Host != "" || strings.ContainsAny(target, "# \t\r\n"):
		return domain.Invalid("target", "target.format", "a path at the site starting with '/', with an optional query")
	}
	return nil
}

// Forward carries the caller's request to a site it is connected to. The
// centre adds only its own short-lived token for that site and user; the
// method, target, body and the user's signature go unchanged, and the site
// checks them as it checks a direct request, so the centre cannot make a
// site act on anything the user did not sign. The answer is the site's
// status and body, whatever they say (a refusal included); a site that
// cannot be reached is "unavailable".
//
// The centre keeps no audit record of a forwarded request: it decides
// nothing about it beyond the connection check, and the site audits every
// request with the Trellis uid and the local account.
func (s *Sites) Forward(ctx context.Context, p *auth.Principal, provider, method, target string, body []byte, signature string) (*ForwardResult, error) {
	if err := s.authorize(ctx, p, opProvidersForward, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	_ = vs.Check(domain.ValidateProviderName("provider", provider))
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		vs.Add("method", "method.unknown", "GET, POST, PUT or DELETE")
	}
	_ = vs.Check(validateForwardTarget(target))
	if len(body) > ForwardMaxBody {
		vs.Add("body", "body.length", "at most 64 KiB")
	}
	if len(signature) > maxForwardSignature || strings.ContainsAny(signature, "\r\n") {
		vs.Add("user_signature", "user_signature.format", "a compact JWS of at most 4 KiB")
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	pr, err := s.connectedProvider(ctx, p.UID, provider)
	if err != nil {
		return nil, err
	}
	now, key := s.now(), p.UID+"\x00"+provider
	tok := s.forwardTokens.get(key, now)
	if tok == nil {
		if tok, err = s.siteToken(pr, p.UID, PurposeRequest, newID(), now, ForwardTokenTTL); err != nil {
			return nil, err
		}
		s.forwardTokens.put(key, tok, now)
	}
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(pr.URL, "/")+target, bytes.NewReader(body))
	if err != nil {
		return nil, domain.Invalid("target", "target.format", "a path at the site starting with '/', with an optional query")
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	if signature != "" {
		req.Header.Set(userSignatureHeader, signature)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.siteHTTP.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, domain.Unavailable("site %q did not answer within %s", provider, ForwardTimeout)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, domain.Unavailable("site %q cannot be reached at %s: %s", provider, pr.URL, transportReason(err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, ForwardMaxResponse+1))
	if err != nil {
		return nil, domain.Unavailable("site %q broke off its answer: %s", provider, transportReason(err))
	}
	if len(out) > ForwardMaxResponse {
		return nil, domain.ResourceExhausted("site %q answered with more than %d bytes; the centre relays at most that", provider, ForwardMaxResponse)
	}
	return &ForwardResult{Status: resp.StatusCode, Body: out, ContentType: resp.Header.Get("Content-Type"), SiteURL: pr.URL}, nil
}

// transportReason is the useful end of a transport error (connection
// refused, no such host, a certificate problem) without the request's
// URL repeated.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// connectedProvider returns the named site when the user may make
// requests there: the site is usable and the user is connected to it (one
// read transaction: this runs on every forwarded request).
func (s *Sites) connectedProvider(ctx context.Context, uid, provider string) (*domain.Provider, error) {
	if err := domain.ValidateProviderName("provider", provider); err != nil {
		return nil, err
	}
	var gen uint64
	if s.connections != nil {
		var pr *domain.Provider
		if pr, gen = s.connections.get(uid, provider); pr != nil {
			return pr, nil
		}
	}
	pr, err := s.readConnectedProvider(ctx, uid, provider)
	if err == nil && s.connections != nil {
		s.connections.put(uid, provider, pr, gen)
	}
	return pr, err
}

func (s *Sites) readConnectedProvider(ctx context.Context, uid, provider string) (*domain.Provider, error) {
	var pr *domain.Provider
	var connected bool
	err := s.view(ctx, func(tx store.Tx) error {
		var err error
		if pr, err = tx.Providers().Get(ctx, provider); err != nil {
			return err
		}
		conns, err := tx.Providers().ListConnections(ctx, uid)
		for _, c := range conns {
			connected = connected || c.Provider == provider
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case pr.State != domain.ProviderActive:
		return nil, domain.FailedPrecondition("provider %q is disabled", provider)
	case pr.PublicKey == nil:
		return nil, domain.FailedPrecondition("provider %q has not registered yet (trellis provider init at the site)", provider)
	case !connected:
		return nil, domain.FailedPrecondition("not connected to provider %q: run trellis provider connect %s", provider, provider)
	}
	return pr, nil
}

// connectionCache remembers, per replica, which sites each user may send
// requests to (the site usable, the user connected): the check runs on
// every forwarded request, and a read transaction would be a quarter of
// the centre's work for one (docs/benchmarks.md). Only what passed is
// kept; it is dropped through the change feed when the provider or the
// user's connections change (store.ChangeProvider,
// ChangeProviderConnection, ChangeUser), and all of it when the feed has a
// gap. A put is ignored when anything was invalidated since its read began
// (the generation), so a read that raced a change never outlives it.
type connectionCache struct {
	mu    sync.Mutex
	gen   uint64
	byUID map[string]map[string]*domain.Provider
	n     int
}

const maxCachedConnections = 100_000

func newConnectionCache() *connectionCache {
	return &connectionCache{byUID: map[string]map[string]*domain.Provider{}}
}

func (c *connectionCache) get(uid, provider string) (*domain.Provider, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byUID[uid][provider], c.gen
}

func (c *connectionCache) put(uid, provider string, pr *domain.Provider, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.n >= maxCachedConnections {
		clear(c.byUID)
		c.n = 0
	}
	m := c.byUID[uid]
	if m == nil {
		m = map[string]*domain.Provider{}
		c.byUID[uid] = m
	}
	if _, ok := m[provider]; !ok {
		c.n++
	}
	m[provider] = pr
}

func (c *connectionCache) invalidateUser(uid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.n -= len(c.byUID[uid])
	delete(c.byUID, uid)
}

func (c *connectionCache) invalidateProvider(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, m := range c.byUID {
		if _, ok := m[name]; ok {
			delete(m, name)
			c.n--
		}
	}
}

func (c *connectionCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byUID)
	c.n = 0
}

// forwardTokens keeps the token the centre attaches to a user's forwarded
// requests to a site, reused while it has more than half its life left:
// signing one per request would cost the centre a signature and the site
// a full verification (it remembers tokens it verified) on every request.
type forwardTokens struct {
	mu sync.Mutex
	m  map[string]*SiteTicket
}

const maxForwardTokens = 10_000

func (f *forwardTokens) get(key string, now time.Time) *SiteTicket {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.m[key]
	if t == nil || t.ExpiresAt.Sub(now) < ForwardTokenTTL/2 {
		return nil
	}
	return t
}

func (f *forwardTokens) put(key string, t *SiteTicket, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*SiteTicket{}
	}
	if len(f.m) >= maxForwardTokens {
		for k, v := range f.m {
			if v.ExpiresAt.Sub(now) < ForwardTokenTTL/2 {
				delete(f.m, k)
			}
		}
		if len(f.m) >= maxForwardTokens {
			clear(f.m)
		}
	}
	f.m[key] = t
}
