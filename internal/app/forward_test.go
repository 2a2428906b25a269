package app_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/verify"
)

// fakeSite records what the centre forwards to it and answers what the
// test says.
type fakeSite struct {
	mu     sync.Mutex
	got    []*http.Request
	bodies []string
	answer func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, r)
	f.bodies = append(f.bodies, string(b))
	answer := f.answer
	f.mu.Unlock()
	answer(w, r)
}

func (f *fakeSite) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func (f *fakeSite) last() (*http.Request, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return nil, ""
	}
	return f.got[len(f.got)-1], f.bodies[len(f.bodies)-1]
}

func withToken[T any](msg *T, tok string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+tok)
	return req
}

// TestForwardToSite: the centre forwards a connected user's request to the
// site unchanged, adding only its own token for that site and user; it
// relays the site's answer within bounds, says "unavailable" when the site
// cannot be reached, and forwards nothing for a user who is not connected
// (any more) or to a disabled site. The site here is a fake that records
// what arrives (the real site's checks are internal/provider's e2e test).
func TestForwardToSite(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testForwardToSite(t, kind) })
	}
}

func testForwardToSite(t *testing.T, kind storeKind) {
	ctx := context.Background()
	st := openStore(t, kind)
	samePublicURL := func(c *app.Config) { c.PublicURL = "http://trellis.test" }
	h, h2 := newServer(t, st, samePublicURL), newServer(t, st, samePublicURL) // two replicas of one centre
	site := &fakeSite{answer: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}}
	hs := httptest.NewServer(site)
	defer hs.Close()

	providers := trellisv1connect.NewProvidersClient(h.http, h.url)
	admin := h.bootstrapAdmin()
	added, err := providers.AddProvider(ctx, withToken(&trellisv1.AddProviderRequest{Name: "site1", Url: hs.URL}, admin))
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	reg, err := providers.RegisterSite(ctx, connect.NewRequest(&trellisv1.RegisterSiteRequest{
		Token: added.Msg.RegistrationToken, PublicKey: base64.StdEncoding.EncodeToString(pub)}))
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := h.newUser("alice"), h.newUser("bob")
	h.approvedProject(admin, alice, "aproj")
	h.approvedProject(admin, bob, "bproj")

	// Alice connects: a ticket, and the site's report of her mapping,
	// signed with the site's key.
	ticket, err := providers.CreateConnectionTicket(ctx, withToken(&trellisv1.CreateConnectionTicketRequest{Provider: "site1"}, alice))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(ctx, verify.Options{Issuer: reg.Msg.Issuer, JWKSURL: h.url + "/.well-known/jwks.json", Audience: reg.Msg.Audience})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tc, err := v.Verify(ctx, ticket.Msg.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := token.SignAssertion(key, "provider:site1", reg.Msg.CentreAudience, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := providers.ReportConnection(ctx, withToken(&trellisv1.ReportConnectionRequest{
		Uid: "alice", LocalAccount: "tb_alice", UserKeyFingerprint: "SHA256:abc", TicketJti: tc.ID}, assertion)); err != nil {
		t.Fatal(err)
	}

	forward := func(tok string, m *trellisv1.ForwardRequest) (*trellisv1.ForwardResponse, error) {
		resp, err := providers.Forward(ctx, withToken(m, tok))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	const sig = "eyJhbGciOiJFZERTQSJ9.eyJ1c2VyIjoiYWxpY2UifQ.c2lnbmF0dXJl" // opaque to the centre
	body := []byte(`{"argv":["id","-un"]}`)

	// Forwarded unchanged, with the centre's token for site1 and alice.
	resp, err := forward(alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec?x=1", Body: body, UserSignature: sig})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusAccepted || string(resp.Body) != `{"ok":true}` || resp.ContentType != "application/json" || resp.SiteUrl != hs.URL {
		t.Errorf("answer relayed as %d %q %q %q", resp.Status, resp.Body, resp.ContentType, resp.SiteUrl)
	}
	r, got := site.last()
	if r.Method != "POST" || r.URL.RequestURI() != "/exec?x=1" || got != string(body) || r.Header.Get("Trellis-User-Signature") != sig {
		t.Errorf("the site got %s %s %q signature %q", r.Method, r.URL.RequestURI(), got, r.Header.Get("Trellis-User-Signature"))
	}
	claims, err := v.Verify(ctx, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if err != nil || claims.Subject != "alice" || claims.Purpose != "request" {
		t.Errorf("the centre's token at the site: %+v, %v", claims, err)
	}

	// What the centre refuses before the site hears of it.
	for name, tc := range map[string]struct {
		tok  string
		m    *trellisv1.ForwardRequest
		code connect.Code
		word string
	}{
		"bob is not connected": {bob, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec", Body: body}, connect.CodeFailedPrecondition, "not connected"},
		"another host":         {alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "//evil.example/exec"}, connect.CodeInvalidArgument, "target"},
		"a body over 64 KiB":   {alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec", Body: make([]byte, 64<<10+1)}, connect.CodeInvalidArgument, "body"},
		"an unknown method":    {alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "TRACE", Target: "/exec"}, connect.CodeInvalidArgument, "method"},
		"no such site":         {alice, &trellisv1.ForwardRequest{Provider: "site9", Method: "POST", Target: "/exec"}, connect.CodeNotFound, "site9"},
		"without a credential": {"", &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec"}, connect.CodeUnauthenticated, ""},
	} {
		before := site.count()
		_, err := forward(tc.tok, tc.m)
		if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.word) {
			t.Errorf("%s: %v, want %v saying %q", name, err, tc.code, tc.word)
		}
		if site.count() != before {
			t.Errorf("%s: the site heard of it", name)
		}
	}

	// A site's answer larger than the centre relays.
	site.mu.Lock()
	site.answer = func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(make([]byte, 8<<20+1)) }
	site.mu.Unlock()
	if _, err := forward(alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec", Body: body}); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("an answer over 8 MiB: %v", err)
	}
	// A redirect is relayed, not followed.
	site.mu.Lock()
	site.answer = func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://evil.example/", http.StatusFound)
	}
	site.mu.Unlock()
	if resp, err := forward(alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec", Body: body}); err != nil || resp.Status != http.StatusFound {
		t.Errorf("a redirect: %v, %v", resp, err)
	}

	// A disabled site gets nothing; enabled again, it does.
	if _, err := providers.SetProviderState(ctx, withToken(&trellisv1.SetProviderStateRequest{Name: "site1", State: trellisv1.ProviderState_PROVIDER_STATE_DISABLED}, admin)); err != nil {
		t.Fatal(err)
	}
	if _, err := forward(alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec"}); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("a disabled site: %v", err)
	}
	if _, err := providers.SetProviderState(ctx, withToken(&trellisv1.SetProviderStateRequest{Name: "site1", State: trellisv1.ProviderState_PROVIDER_STATE_ACTIVE}, admin)); err != nil {
		t.Fatal(err)
	}

	// The site down: unavailable, saying so.
	hs.Close()
	_, err = forward(alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec", Body: body})
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), `site "site1" cannot be reached`) {
		t.Errorf("the site down: %v", err)
	}

	// Alice disconnects on one replica: nothing more is forwarded for her
	// there, at once, nor, once the change feed brought it, on the other,
	// which had her connection cached.
	providers2 := trellisv1connect.NewProvidersClient(h2.http, h2.url)
	if _, err := providers2.Forward(ctx, withToken(&trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec"}, alice)); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("the other replica before: %v", err)
	}
	if _, err := providers.RemoveConnection(ctx, withToken(&trellisv1.RemoveConnectionRequest{Provider: "site1"}, alice)); err != nil {
		t.Fatal(err)
	}
	if _, err := forward(alice, &trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec"}); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("after disconnecting: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := providers2.Forward(ctx, withToken(&trellisv1.ForwardRequest{Provider: "site1", Method: "POST", Target: "/exec"}, alice))
		if connect.CodeOf(err) == connect.CodeFailedPrecondition {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica still forwards for alice: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the replica's feed polls every 50ms; nothing to wait on
	}
}
