package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-jose/go-jose/v4"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
	"github.com/trellis-testbed/trellis/verify"
)

// clock is a clock a test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type signer struct {
	kid string
	key ed25519.PrivateKey
}

func (s signer) Signer() (string, ed25519.PrivateKey) { return s.kid, s.key }

// stubCentre answers a site's reports as the centre would when it agrees,
// and counts them.
type stubCentre struct {
	trellisv1connect.UnimplementedProvidersHandler
	mu      sync.Mutex
	reports []*trellisv1.ReportConnectionRequest
}

func (c *stubCentre) ReportConnection(_ context.Context, r *connect.Request[trellisv1.ReportConnectionRequest]) (*connect.Response[trellisv1.ReportConnectionResponse], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = append(c.reports, r.Msg)
	return connect.NewResponse(&trellisv1.ReportConnectionResponse{}), nil
}

func (c *stubCentre) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reports)
}

// handlerSite is a site's server as NewServer makes it, but on a test clock,
// with a centre whose key set and reports are the test's. It serves no
// workers: the tests here stop before a command would run.
type handlerSite struct {
	*Server
	clock  *clock
	centre signer
	stub   *stubCentre
	issuer string
}

const centreIssuer = "https://centre.test"

func newHandlerSite(t testing.TB) *handlerSite {
	t.Helper()
	dir := t.TempDir()
	_, centreKey, _ := ed25519.GenerateKey(nil)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: centreKey.Public(), KeyID: "k1", Algorithm: string(jose.EdDSA), Use: "sig"}}}
	jwks, _ := json.Marshal(set)
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	t.Cleanup(keys.Close)
	stub := &stubCentre{}
	mux := http.NewServeMux()
	mux.Handle(trellisv1connect.NewProvidersHandler(stub))
	centre := httptest.NewServer(mux)
	t.Cleanup(centre.Close)

	clk := &clock{now: time.Now().Truncate(time.Second)}
	v, err := verify.New(context.Background(), verify.Options{Issuer: centreIssuer, JWKSURL: keys.URL, Audience: "provider:site1", Now: clk.Now, MinRefetch: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	mapFile := filepath.Join(dir, "users")
	// nobody (uid 65534) is an ordinary account as far as min_uid goes.
	if err := os.WriteFile(mapFile, []byte("alice nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Name: "site1", Central: centre.URL, Issuer: centreIssuer, Audience: "provider:site1", CentreAudience: "trellis",
		Mapper: "static:" + mapFile, RequireUserSignature: true}
	cfg.Defaults(dir)
	m, err := newMapper(cfg.Mapper, time.Duration(cfg.MapperTimeout))
	if err != nil {
		t.Fatal(err)
	}
	st, err := openState(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	aud, err := openAudit(filepath.Join(dir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aud.Close() })
	_, siteKey, _ := ed25519.GenerateKey(nil)
	s := &Server{cfg: cfg, dir: dir, key: siteKey, verifier: v, state: st, audit: aud, mapper: m,
		centre: trellisv1connect.NewProvidersClient(centre.Client(), centre.URL),
		nonces: newNonceCache(100_000), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: clk.Now}
	return &handlerSite{Server: s, clock: clk, centre: signer{"k1", centreKey}, stub: stub, issuer: centreIssuer}
}

// token is the centre's token for uid at site1, issued now for ttl.
func (ts *handlerSite) token(t testing.TB, uid, purpose, jti string, ttl time.Duration) string {
	t.Helper()
	now := ts.clock.Now()
	raw, err := token.Sign(ts.centre, token.Claims{Issuer: ts.issuer, Subject: uid, Audience: []string{"provider:site1"}, ID: jti,
		IssuedAt: now, NotBefore: now, Expiry: now.Add(ttl), Purpose: purpose})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// post serves one request and returns its status and body.
func (ts *handlerSite) post(path, tok, sig string, body []byte) (int, string) {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if sig != "" {
		r.Header.Set(usersig.Header, sig)
	}
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// lastAudit is the newest line of the site's audit log.
func (ts *handlerSite) lastAudit(t testing.TB) auditEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ts.dir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var e auditEntry
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatalf("audit line %q: %v", lines[len(lines)-1], err)
	}
	return e
}

// connectAs puts uid's mapping to account with a fresh user key, as a
// connection would, and returns the key.
func (ts *handlerSite) connectAs(t testing.TB, uid, account string) ed25519.PrivateKey {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	if err := ts.state.putMapping(uid, &Mapping{Account: account, UserKey: pub, CreatedAt: ts.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	return priv
}

func needNobody(t *testing.T) {
	t.Helper()
	if u, err := user.Lookup("nobody"); err != nil || u.Uid == "0" {
		t.Skip("needs the nobody account (uid >= 1000)")
	}
}

// want checks a response and, for a refusal, the audit record it left.
func want(t *testing.T, ts *handlerSite, what string, code int, body string, wantCode int, words string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: %d %s, want %d", what, code, body, wantCode)
		return
	}
	if !strings.Contains(body, words) {
		t.Errorf("%s: %s does not say %q", what, body, words)
	}
	if wantCode == http.StatusOK {
		return
	}
	if e := ts.lastAudit(t); e.Outcome != "refused" || !strings.Contains(e.Reason, words) {
		t.Errorf("%s: audit %+v, want a refusal saying %q", what, e, words)
	}
}

// TestSiteClockCentreTokenExpired: a request token is honoured until its
// expiry (and the verifier's 30 s leeway for clocks), refused after.
func TestSiteClockCentreTokenExpired(t *testing.T) {
	ts := newHandlerSite(t)
	start := ts.clock.Now()
	key := ts.connectAs(t, "alice", "nobody")
	tok := ts.token(t, "alice", purposeRequest, "r1", 5*time.Minute)
	sign := func() string {
		sig, err := usersig.Sign(key, "alice", "site1", http.MethodPost, "/disconnect", []byte("{}"), ts.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	ts.clock.set(start.Add(5*time.Minute + 31*time.Second))
	code, body := ts.post("/disconnect", tok, sign(), []byte("{}"))
	want(t, ts, "a token past its expiry", code, body, http.StatusUnauthorized, "expired")
	if _, ok := ts.state.mapping("alice"); !ok {
		t.Error("a refused request changed the site's state")
	}
	ts.clock.set(start.Add(4 * time.Minute))
	code, body = ts.post("/disconnect", tok, sign(), []byte("{}"))
	want(t, ts, "the same token before its expiry", code, body, http.StatusOK, "{}")
	// Verified once, the token is cached; the cache does not outlive it.
	key = ts.connectAs(t, "alice", "nobody")
	ts.clock.set(start.Add(5*time.Minute + 31*time.Second))
	code, body = ts.post("/disconnect", tok, sign(), []byte("{}"))
	want(t, ts, "a cached token past its expiry", code, body, http.StatusUnauthorized, "expired")
}

// TestSiteClockSignatureMaxAge: a user signature is fresh for
// signature_max_age either side of the site's clock.
func TestSiteClockSignatureMaxAge(t *testing.T) {
	ts := newHandlerSite(t)
	start := ts.clock.Now()
	key := ts.connectAs(t, "alice", "nobody")
	tok := ts.token(t, "alice", purposeRequest, "r1", 5*time.Minute)
	body := []byte("{}")
	signedAt := func(at time.Time) string {
		sig, err := usersig.Sign(key, "alice", "site1", http.MethodPost, "/disconnect", body, at)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	ts.clock.set(start.Add(2 * time.Minute))
	now := ts.clock.Now()
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"signed 61s before the site's now", now.Add(-61 * time.Second)},
		{"signed 10 minutes before", now.Add(-10 * time.Minute)},
		{"signed 61s after (a clock far ahead)", now.Add(61 * time.Second)},
	} {
		code, b := ts.post("/disconnect", tok, signedAt(tc.at), body)
		want(t, ts, tc.name, code, b, http.StatusForbidden, "not fresh")
	}
	// A shorter max age is the site's to set.
	ts.cfg.SignatureMaxAge = Duration(10 * time.Second)
	code, b := ts.post("/disconnect", tok, signedAt(now.Add(-11*time.Second)), body)
	want(t, ts, "signed 11s before, max age 10s", code, b, http.StatusForbidden, "not fresh")
	ts.cfg.SignatureMaxAge = Duration(time.Minute)
	code, b = ts.post("/disconnect", tok, signedAt(now.Add(-59*time.Second)), body)
	want(t, ts, "signed 59s before", code, b, http.StatusOK, "{}")
}

// TestSiteClockTicketExpired: a connection ticket past its expiry is
// refused before anything is mapped or reported; before it, it connects.
func TestSiteClockTicketExpired(t *testing.T) {
	needNobody(t)
	ts := newHandlerSite(t)
	start := ts.clock.Now()
	pub, _, _ := ed25519.GenerateKey(nil)
	connectBody := func(ticket string) []byte {
		b, _ := json.Marshal(ConnectRequest{Ticket: ticket, UserPublicKey: base64Std(pub)})
		return b
	}
	late := ts.token(t, "alice", purposeConnect, "t1", 10*time.Minute)
	ts.clock.set(start.Add(10*time.Minute + 31*time.Second))
	code, body := ts.post("/connect", "", "", connectBody(late))
	want(t, ts, "an expired ticket", code, body, http.StatusUnauthorized, "expired")
	if _, ok := ts.state.mapping("alice"); ok || ts.stub.count() != 0 {
		t.Errorf("an expired ticket left a mapping (%v) or a report (%d)", ok, ts.stub.count())
	}
	// The same ticket, in time, connects, once.
	ts.clock.set(start.Add(9 * time.Minute))
	code, body = ts.post("/connect", "", "", connectBody(late))
	want(t, ts, "the ticket in time", code, body, http.StatusOK, `"local_account":"nobody"`)
	if m, ok := ts.state.mapping("alice"); !ok || m.Account != "nobody" || ts.stub.count() != 1 {
		t.Errorf("after connecting: mapping %+v, %d reports", m, ts.stub.count())
	}
	code, body = ts.post("/connect", "", "", connectBody(late))
	want(t, ts, "the ticket again", code, body, http.StatusConflict, "used already")
}

// TestSiteRefusesForgedRequests: the compromised-centre cases without
// root: a request needs the centre's token for this site and purpose, and
// the user's own signature over exactly this request, used once.
func TestSiteRefusesForgedRequests(t *testing.T) {
	ts := newHandlerSite(t)
	alice := ts.connectAs(t, "alice", "nobody")
	bob := ts.connectAs(t, "bob", "nobody")
	body := []byte("{}")
	sign := func(key ed25519.PrivateKey, uid, path string, b []byte) string {
		sig, err := usersig.Sign(key, uid, "site1", http.MethodPost, path, b, ts.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	tok := ts.token(t, "alice", purposeRequest, "r1", 5*time.Minute)
	forged := func(key ed25519.PrivateKey, kid, aud string) string {
		now := ts.clock.Now()
		raw, err := token.Sign(signer{kid, key}, token.Claims{Issuer: ts.issuer, Subject: "alice", Audience: []string{aud}, ID: "f1", IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Minute), Purpose: purposeRequest})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	_, other, _ := ed25519.GenerateKey(nil)
	for _, tc := range []struct {
		name, tok, sig string
		code           int
		words          string
	}{
		{"no centre token", "", sign(alice, "alice", "/disconnect", body), http.StatusUnauthorized, "no centre token"},
		{"a token of an unknown key", forged(other, "k9", "provider:site1"), sign(alice, "alice", "/disconnect", body), http.StatusUnauthorized, "centre token refused"},
		{"a token another key signed under the centre's key id", forged(other, "k1", "provider:site1"), sign(alice, "alice", "/disconnect", body), http.StatusUnauthorized, "centre token refused"},
		{"a token for another site", forged(ts.centre.key, "k1", "provider:site2"), sign(alice, "alice", "/disconnect", body), http.StatusUnauthorized, "centre token refused"},
		{"a connection ticket", ts.token(t, "alice", purposeConnect, "t1", time.Minute), sign(alice, "alice", "/disconnect", body), http.StatusUnauthorized, "its purpose is"},
		{"no user signature", tok, "", http.StatusForbidden, "no user signature"},
		{"another key's signature", tok, sign(other, "alice", "/disconnect", body), http.StatusForbidden, "does not verify"},
		{"bob's signature on alice's token", tok, sign(bob, "bob", "/disconnect", body), http.StatusForbidden, "signature"},
		{"signed another body", tok, sign(alice, "alice", "/disconnect", []byte(`{"x":1}`)), http.StatusForbidden, "signed another body"},
		{"signed another path", tok, sign(alice, "alice", "/exec", body), http.StatusForbidden, "another method or target"},
		{"garbage for a signature", tok, "not.a.jws", http.StatusForbidden, "malformed"},
	} {
		code, b := ts.post("/disconnect", tc.tok, tc.sig, body)
		want(t, ts, tc.name, code, b, tc.code, tc.words)
		if _, ok := ts.state.mapping("alice"); !ok {
			t.Fatalf("%s: the refused request disconnected alice", tc.name)
		}
	}

	// A signature is good once.
	sig := sign(alice, "alice", "/disconnect", body)
	m, _ := ts.state.mapping("alice")
	code, b := ts.post("/disconnect", tok, sig, body)
	want(t, ts, "the genuine request", code, b, http.StatusOK, "{}")
	if err := ts.state.putMapping("alice", m); err != nil { // connected again, same key
		t.Fatal(err)
	}
	code, b = ts.post("/disconnect", tok, sig, body)
	want(t, ts, "the same signature again", code, b, http.StatusForbidden, "replayed")

	// A site that does not require the signature takes the token alone,
	// but still refuses a signature that is there and wrong.
	ts.cfg.RequireUserSignature = false
	code, b = ts.post("/disconnect", tok, sign(other, "alice", "/disconnect", body), body)
	want(t, ts, "a wrong signature where none is required", code, b, http.StatusForbidden, "does not verify")
	code, b = ts.post("/disconnect", tok, "", body)
	want(t, ts, "no signature where none is required", code, b, http.StatusOK, "{}")
}
