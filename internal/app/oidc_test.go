package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/oidctest"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/transport/ratelimit"
)

const rpRedirect = "http://127.0.0.1:9/callback"

// rp is a relying party with its user's browser.
type rp struct {
	*oidctest.RP
	conf    *oauth2.Config
	browser *oidctest.Browser
	t       *testing.T
}

func newRP(t *testing.T, h *harness, clientID, secret string) *rp {
	r := oidctest.NewRP(t, h.url+"/oidc", clientID, secret, rpRedirect)
	return &rp{RP: r, conf: &r.Config, browser: oidctest.NewBrowser(t), t: t}
}

func (r *rp) get(u string) (*http.Response, string) { return r.browser.Get(u) }
func (r *rp) post(u string, form url.Values) (*http.Response, string) {
	return r.browser.Post(u, form)
}

func (r *rp) startLogin(opts ...oauth2.AuthCodeOption) (loginURL, id string) {
	return r.browser.StartLogin(r.conf.AuthCodeURL("state-123", opts...))
}

func (r *rp) logIn(loginURL, id, uid, pw string) (code, state string) {
	r.t.Helper()
	back := r.browser.LogIn(loginURL, id, uid, pw)
	if !strings.HasPrefix(back.String(), rpRedirect) {
		r.t.Fatalf("sent back to %q, want %s", back, rpRedirect)
	}
	return back.Query().Get("code"), back.Query().Get("state")
}

func TestOIDCProvider(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testOIDCProvider(t, kind) })
	}
}

func testOIDCProvider(t *testing.T, kind storeKind) {
	ctx := context.Background()
	h := newHarness(t, kind)
	adminTok := h.bootstrapAdmin()
	userTok := h.newUser("alice")
	clients := trellisv1connect.NewOidcClientsClient(h.http, h.url)

	// Registration: admins only; bad redirect URIs named.
	_, err := clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "notebooks", RedirectUris: []string{rpRedirect}}, userTok))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "notebooks", RedirectUris: []string{"http://notebooks.example.org/cb", "https://x.example/cb#frag", "ftp://x.example/"}}, adminTok))
	if got := violations(err); got["redirect_uris[0]"] != "redirect_uri.format" || got["redirect_uris[1]"] != "redirect_uri.format" || got["redirect_uris[2]"] != "redirect_uri.format" {
		t.Errorf("bad redirect URIs: violations %v", got)
	}
	_, err = clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "notebooks"}, adminTok))
	if got := violations(err); got["redirect_uris"] != "redirect_uris.required" {
		t.Errorf("no redirect URI: violations %v", got)
	}
	added, err := clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "notebooks", RedirectUris: []string{rpRedirect}}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	secret := added.Msg.ClientSecret
	if secret == "" || added.Msg.Client.Public {
		t.Fatalf("confidential client: %+v, secret %q", added.Msg.Client, secret)
	}
	_, err = clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "notebooks", RedirectUris: []string{rpRedirect}}, adminTok))
	if got := violations(err); got["name"] != "name.duplicate" {
		t.Errorf("duplicate client: violations %v", got)
	}

	r := newRP(t, h, "notebooks", secret)
	if got := r.Provider.Endpoint().AuthURL; got != h.url+"/oidc/authorize" {
		t.Errorf("discovered authorization endpoint %q", got)
	}
	// Discovery says what the provider does, and no more.
	var disco struct {
		GrantTypes    []string `json:"grant_types_supported"`
		ResponseTypes []string `json:"response_types_supported"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		Device        string   `json:"device_authorization_endpoint"`
		SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.Provider.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	if strings.Join(disco.GrantTypes, " ") != "authorization_code" || strings.Join(disco.ResponseTypes, " ") != "code" ||
		strings.Join(disco.PKCE, " ") != "S256" || disco.Device != "" || strings.Join(disco.SigningAlgs, " ") != "EdDSA" {
		t.Errorf("discovery: %+v", disco)
	}

	// The code flow with PKCE, as a relying party runs it.
	verifier := oauth2.GenerateVerifier()
	loginURL, id := r.startLogin(oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-42"))
	// A wrong password is refused on the page, and audited like a login.
	resp, body := r.post(loginURL, url.Values{"id": {id}, "uid": {"alice"}, "password": {"wrong password"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid uid or password") {
		t.Errorf("wrong password: status %d, page %q", resp.StatusCode, body)
	}
	if strings.Contains(body, "wrong password") {
		t.Error("the login page repeats the password")
	}
	code, state := r.logIn(loginURL, id, "alice", userPassword)
	if state != "state-123" || code == "" {
		t.Fatalf("code %q, state %q", code, state)
	}
	tok, err := r.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := r.Provider.Verifier(&oidc.Config{ClientID: "notebooks"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Email             string `json:"email"`
		EmailVerified     bool   `json:"email_verified"`
		PreferredUsername string `json:"preferred_username"`
		Name              string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || idt.Nonce != "nonce-42" || claims.Email != "alice@uni.example.edu" || !claims.EmailVerified || claims.PreferredUsername != "alice" || claims.Name != "ALICE" {
		t.Errorf("ID token: sub %q nonce %q claims %+v", idt.Subject, idt.Nonce, claims)
	}
	// A wrong audience is refused by the relying party's verifier.
	if _, err := r.Provider.Verifier(&oidc.Config{ClientID: "dashboards"}).Verify(ctx, rawID); err == nil {
		t.Error("ID token accepted for another client")
	}
	info, err := r.Provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != "alice" || info.Email != "alice@uni.example.edu" {
		t.Errorf("userinfo: %+v", info)
	}
	// Neither token is a Trellis credential.
	for _, v := range []string{rawID, tok.AccessToken} {
		_, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, v))
		wantCode(t, err, connect.CodeUnauthenticated)
	}
	// A code is good once.
	_, err = r.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantOAuthError(t, err, "invalid_grant")

	// PKCE mismatch: the code is refused (and spent).
	verifier = oauth2.GenerateVerifier()
	loginURL, id = r.startLogin(oauth2.S256ChallengeOption(verifier))
	code, _ = r.logIn(loginURL, id, "alice", userPassword)
	_, err = r.conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	wantOAuthError(t, err, "invalid_grant")
	_, err = r.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantOAuthError(t, err, "invalid_grant")

	// A wrong client secret.
	verifier = oauth2.GenerateVerifier()
	loginURL, id = r.startLogin(oauth2.S256ChallengeOption(verifier))
	code, _ = r.logIn(loginURL, id, "alice", userPassword)
	bad := *r.conf
	bad.ClientSecret = "not-the-secret"
	_, err = bad.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantOAuthError(t, err, "invalid_client")

	// No PKCE: sent back to the client with the error.
	resp, _ = r.get(r.conf.AuthCodeURL("state-9"))
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || back.Query().Get("error") != "invalid_request" || !strings.Contains(back.Query().Get("error_description"), "PKCE") {
		t.Errorf("no PKCE: status %d, sent to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A redirect URI not registered: no redirect at all.
	other := *r.conf
	other.RedirectURL = "https://attacker.example/cb"
	resp, _ = r.get(other.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "https://attacker.example") || resp.StatusCode < 400 {
		t.Errorf("unregistered redirect URI: status %d, Location %q", resp.StatusCode, loc)
	}
	// An unknown client.
	ghost := *r.conf
	ghost.ClientID = "ghost"
	resp, _ = r.get(ghost.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp.StatusCode < 400 {
		t.Errorf("unknown client: status %d", resp.StatusCode)
	}
	// A used or unknown request id on the login page.
	resp, _ = r.get(h.url + "/oidc/login?id=nope")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("login page of an unknown request: status %d", resp.StatusCode)
	}

	// Audited: the login, the tokens, the refusals.
	wantAudit := func(op, outcome, actor string, detail ...string) {
		t.Helper()
		evs, _, err := h.srv.Service.Accounts.ListAuditEvents(ctx, operator, service.AuditQuery{Operation: op})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Outcome == outcome && e.Actor == actor && (len(detail) == 0 || strings.Contains(e.Detail, detail[0])) {
				if strings.Contains(e.Detail, userPassword) || strings.Contains(e.Detail, secret) {
					t.Errorf("audit detail holds a secret: %q", e.Detail)
				}
				return
			}
		}
		t.Errorf("no %s audit record with outcome %s by %q (detail %q)", op, outcome, actor, detail)
	}
	wantAudit(service.OpOIDCLogin, "ok", "alice")
	wantAudit(service.OpOIDCLogin, "unauthenticated", "")
	wantAudit(service.OpOIDCToken, "ok", "alice")
	wantAudit(service.OpOIDCToken, "unauthenticated", "", "invalid_client")
	wantAudit(service.OpOIDCToken, "permission_denied", "", "invalid_grant: invalid code_verifier") // PKCE mismatch
	wantAudit(service.OpOIDCToken, "permission_denied", "", "invalid_grant: invalid code")          // a code used twice
	wantAudit("oidc.authorize", "invalid_argument", "", "PKCE is required")
	wantAudit("oidc.authorize", "invalid_argument", "", "redirect_uri")

	// A public client proves itself by PKCE alone.
	pub, err := clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "cli-app", RedirectUris: []string{rpRedirect}, Public: true}, adminTok))
	if err != nil || pub.Msg.ClientSecret != "" || !pub.Msg.Client.Public {
		t.Fatalf("public client: %v %+v", err, pub)
	}
	p := newRP(t, h, "cli-app", "")
	verifier = oauth2.GenerateVerifier()
	loginURL, id = p.startLogin(oauth2.S256ChallengeOption(verifier))
	code, _ = p.logIn(loginURL, id, "alice", userPassword)
	ptok, err := p.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("public client's exchange: %v", err)
	}

	list, err := clients.ListClients(ctx, req(&trellisv1.ListClientsRequest{}, adminTok))
	if err != nil || len(list.Msg.Clients) != 2 || list.Msg.Clients[0].Name != "cli-app" {
		t.Fatalf("ListClients: %v %+v", err, list)
	}
	// Removing a client ends its tokens at once.
	if _, err := clients.RemoveClient(ctx, req(&trellisv1.RemoveClientRequest{Name: "cli-app"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provider.UserInfo(ctx, oauth2.StaticTokenSource(ptok)); err == nil {
		t.Error("userinfo with the token of a removed client")
	}
	wantAudit("oidc.userinfo", "unauthenticated", "")
	_, err = clients.RemoveClient(ctx, req(&trellisv1.RemoveClientRequest{Name: "cli-app"}, adminTok))
	wantCode(t, err, connect.CodeNotFound)
	// The other client's token still works.
	if _, err := r.Provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Errorf("userinfo of the remaining client: %v", err)
	}
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Errorf("error %v, want OAuth error %s", err, code)
		return
	}
	if re.ErrorCode != code {
		t.Errorf("OAuth error %q (%s), want %s", re.ErrorCode, re.ErrorDescription, code)
	}
}

// BenchmarkOIDCCodeFlow runs whole logins through the provider, as a relying
// party and a browser do: authorize, login page, callback, code exchange
// and ID token verification. Passwords use the tests' cheap argon2id
// parameters, so this is the provider's own cost (a real login adds one
// argon2id run, about 49 ms):
//
//	go test -run '^$' -bench OIDCCodeFlow -benchtime 200x ./internal/app/
func BenchmarkOIDCCodeFlow(b *testing.B) {
	ctx := context.Background()
	// One address runs every login: no page limit.
	h := newServer(b, openStore(b, sqlite), func(c *app.Config) { c.BrowserPageLimit = ratelimit.Limit{Every: time.Nanosecond, Burst: 1 << 30} })
	adminTok := h.bootstrapAdmin()
	added, err := trellisv1connect.NewOidcClientsClient(h.http, h.url).AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "notebooks", RedirectUris: []string{rpRedirect}}, adminTok))
	if err != nil {
		b.Fatal(err)
	}
	r := oidctest.NewRP(b, h.url+"/oidc", "notebooks", added.Msg.ClientSecret, rpRedirect)
	verifier := r.Provider.Verifier(&oidc.Config{ClientID: "notebooks"})
	b.ResetTimer()
	for range b.N {
		pkce := oauth2.GenerateVerifier()
		back := oidctest.NewBrowser(b).Authorize(r.Config.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce)), "ops", adminPassword)
		tok, err := r.Config.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if _, err := verifier.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// TestOIDCPagesRateLimited: the pages a browser visits answer anyone, so
// one address is held to a steady rate.
func TestOIDCPagesRateLimited(t *testing.T) {
	// A limit that does not refill during the test: with the default one
	// (20 pages/s), a machine slow enough refills the bucket as fast as
	// the test drains it.
	limit := ratelimit.Limit{Every: time.Hour, Burst: 10}
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) { c.BrowserPageLimit = limit })
	b := oidctest.NewBrowser(t)
	limited := false
	for range limit.Burst + 1 {
		if resp, _ := b.Get(h.url + "/oidc/login?id=nope"); resp.StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("no 429 for a flood of login pages from one address")
	}
	// Discovery is not a page a browser loads: relying parties read it.
	if resp, _ := b.Get(h.url + "/oidc/.well-known/openid-configuration"); resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery while the pages are limited: %d", resp.StatusCode)
	}
}
