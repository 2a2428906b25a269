package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	oidcv1 "github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/oidctest"
	"github.com/trellis-testbed/trellis/internal/service"
)

// federation is a testbed whose users log in through an institution's
// identity provider, played by another Trellis server (its own OpenID
// Connect provider), where jdoe has an account.
type federation struct {
	t       *testing.T
	idp, tb *harness
	login   oidcv1connect.LoginClient
	issuer  string
}

func newFederation(t *testing.T, kind storeKind) *federation {
	t.Helper()
	ctx := context.Background()
	idp := newHarness(t, sqlite)
	idpAdmin := idp.bootstrapAdmin()
	idp.newUser("jdoe")
	issuer := idp.url + "/oidc"
	tb := newServer(t, openStore(t, kind), func(c *app.Config) {
		clients := trellisv1connect.NewOidcClientsClient(idp.http, idp.url)
		resp, err := clients.AddClient(ctx, req(&trellisv1.AddClientRequest{Name: "testbed", RedirectUris: []string{"http://" + c.Listen + "/auth/oidc/callback"}}, idpAdmin))
		if err != nil {
			t.Fatal(err)
		}
		c.AuthBackends = []string{app.BackendLocal, app.BackendOIDC}
		c.OIDCBackend = app.OIDCBackendConfig{Issuer: issuer, ClientID: "testbed", ClientSecret: resp.Msg.ClientSecret}
	})
	return &federation{t: t, idp: idp, tb: tb, login: oidcv1connect.NewLoginClient(tb.http, tb.url), issuer: issuer}
}

var (
	hiddenLogin = regexp.MustCompile(`name="login" value="([^"]+)"`)
	hiddenToken = regexp.MustCompile(`name="token" value="([^"]+)"`)
	finishCode  = regexp.MustCompile(`<code id="finish-code">([^<]+)</code>`)
)

// browse starts a login (as tok when set; to link with link; handing the
// finish code to returnTo when set), logs jdoe in at the identity provider
// and returns the testbed's answer to the browser coming back, the
// browser, and the login's start.
func (f *federation) browse(tok string, link bool, returnTo string) (resp *http.Response, body string, b *oidctest.Browser, start *oidcv1.StartLoginResponse) {
	f.t.Helper()
	st, err := f.login.StartLogin(context.Background(), req(&oidcv1.StartLoginRequest{Link: link, ReturnTo: returnTo}, tok))
	if err != nil {
		f.t.Fatalf("StartLogin: %v", err)
	}
	b = oidctest.NewBrowser(f.t)
	back := b.Authorize(st.Msg.AuthorizationUrl, "jdoe", userPassword)
	if !strings.HasPrefix(back.String(), f.tb.url+"/auth/oidc/callback?") {
		f.t.Fatalf("the provider sent the browser to %s", back)
	}
	resp, body = b.Get(back.String())
	return resp, body, b, st.Msg
}

// shownCode is the finish code a page shows.
func (f *federation) shownCode(body string) string {
	f.t.Helper()
	m := finishCode.FindStringSubmatch(body)
	if m == nil {
		f.t.Fatalf("no finish code on the page:\n%s", body)
	}
	return m[1]
}

func (f *federation) finish(st *oidcv1.StartLoginResponse, code string) (*oidcv1.FinishLoginResponse, error) {
	resp, err := f.login.FinishLogin(context.Background(), req(&oidcv1.FinishLoginRequest{LoginId: st.LoginId, PollSecret: st.PollSecret, FinishCode: code}, ""))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (f *federation) whoami(tok string) string {
	f.t.Helper()
	who, err := f.tb.auth.WhoAmI(context.Background(), req(&trellisv1.WhoAmIRequest{}, tok))
	if err != nil {
		f.t.Fatalf("WhoAmI: %v", err)
	}
	return who.Msg.Uid
}

func (f *federation) links(tok string) []*oidcv1.Link {
	f.t.Helper()
	resp, err := f.login.ListLinks(context.Background(), req(&oidcv1.ListLinksRequest{}, tok))
	if err != nil {
		f.t.Fatalf("ListLinks: %v", err)
	}
	return resp.Msg.Links
}

func TestOIDCBackend(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testOIDCBackend(t, kind) })
	}
}

func testOIDCBackend(t *testing.T, kind storeKind) {
	ctx := context.Background()
	f := newFederation(t, kind)
	f.tb.bootstrapAdmin()
	aliceTok := f.tb.newUser("alice")
	bobTok := f.tb.newUser("bob")

	// First use: the identity is linked to no account; jdoe proves which
	// Trellis account is theirs with its password, once. No return_to: the
	// browser shows the finish code.
	resp, body, b, st := f.browse("", false, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "not linked to a Trellis account") || !strings.Contains(body, "jdoe@uni.example.edu") {
		t.Fatalf("first use: status %d:\n%s", resp.StatusCode, body)
	}
	_, err := f.finish(st, "")
	wantMessage(t, err, connect.CodeFailedPrecondition, "pending")
	form := url.Values{"login": {hiddenLogin.FindStringSubmatch(body)[1]}, "token": {hiddenToken.FindStringSubmatch(body)[1]}, "uid": {"alice"}, "password": {"wrong password"}}
	linkURL := f.tb.url + "/auth/oidc/link"
	resp, body = b.Post(linkURL, form)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid uid or password") || strings.Contains(body, "wrong password") {
		t.Errorf("link with a wrong password: status %d:\n%s", resp.StatusCode, body)
	}
	bad := url.Values{"login": form["login"], "token": {"forged"}, "uid": {"alice"}, "password": {userPassword}}
	if resp, _ := b.Post(linkURL, bad); resp.StatusCode != http.StatusNotFound {
		t.Errorf("link with a forged token: status %d", resp.StatusCode)
	}
	form.Set("password", userPassword)
	resp, body = b.Post(linkURL, form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "logged in to Trellis as <strong>alice</strong>") {
		t.Fatalf("link: status %d:\n%s", resp.StatusCode, body)
	}
	code := f.shownCode(body)
	// Collected only with both the poll secret and the finish code.
	_, err = f.login.FinishLogin(ctx, req(&oidcv1.FinishLoginRequest{LoginId: st.LoginId, PollSecret: "guess", FinishCode: code}, ""))
	wantCode(t, err, connect.CodeNotFound)
	_, err = f.finish(st, "")
	wantRule(t, err, connect.CodeInvalidArgument, "finish_code", "finish_code.required")
	_, err = f.finish(st, "guess")
	wantCode(t, err, connect.CodePermissionDenied)
	fin, err := f.finish(st, code)
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if f.whoami(fin.Tokens.AccessToken) != "alice" || fin.Uid != "alice" || fin.Identity.Issuer != f.issuer || fin.Identity.Email != "jdoe@uni.example.edu" {
		t.Errorf("finished as %s %+v", fin.Uid, fin.Identity)
	}
	_, err = f.finish(st, code) // collected once
	wantCode(t, err, connect.CodeNotFound)

	// Later logins need no Trellis password; the browser takes the code to
	// the client's loopback address.
	const loopback = "http://127.0.0.1:9/done"
	resp, _, _, st = f.browse("", false, loopback)
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), loopback+"?code=") {
		t.Fatalf("second login: status %d, sent to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if fin, err = f.finish(st, back.Query().Get("code")); err != nil || f.whoami(fin.Tokens.AccessToken) != "alice" {
		t.Fatalf("second login: %v", err)
	}
	links := f.links(aliceTok)
	if len(links) != 1 || links[0].Email != "jdoe@uni.example.edu" {
		t.Fatalf("ListLinks: %+v", links)
	}
	subject := links[0].Subject

	// A login sent to someone else is of no use to its sender: the code
	// goes to the browser's machine, never to another address.
	_, err = f.login.StartLogin(ctx, req(&oidcv1.StartLoginRequest{ReturnTo: "https://attacker.example/cb"}, ""))
	wantRule(t, err, connect.CodeInvalidArgument, "return_to", "return_to.loopback")
	resp, body, _, st = f.browse("", false, "") // the victim's browser completes the attacker's login
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("victim's browser: status %d", resp.StatusCode)
	}
	_, err = f.finish(st, "")
	wantRule(t, err, connect.CodeInvalidArgument, "finish_code", "finish_code.required")

	// Another account cannot take the identity over.
	resp, body, _, _ = f.browse(bobTok, true, "")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "linked to another account") {
		t.Errorf("bob linking alice's identity: status %d:\n%s", resp.StatusCode, body)
	}
	// Unlinked, it may be linked again, by a logged-in user who asks and
	// holds the finish code: a link request whose browser is someone
	// else's links nothing.
	_, err = f.login.Unlink(ctx, req(&oidcv1.UnlinkRequest{Issuer: f.issuer, Subject: subject}, bobTok))
	wantCode(t, err, connect.CodeNotFound)
	if _, err := f.login.Unlink(ctx, req(&oidcv1.UnlinkRequest{Issuer: f.issuer, Subject: subject}, aliceTok)); err != nil {
		t.Fatal(err)
	}
	resp, body, _, st = f.browse(bobTok, true, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "linked to the Trellis account <strong>bob</strong>") {
		t.Fatalf("bob's link request: status %d:\n%s", resp.StatusCode, body)
	}
	if _, err := f.finish(st, "guess"); connect.CodeOf(err) != connect.CodePermissionDenied || len(f.links(bobTok)) != 0 {
		t.Fatalf("link without the browser's code: %v, links %v", err, f.links(bobTok))
	}
	code = f.shownCode(body)
	fin, err = f.finish(st, code)
	if err != nil || fin.Tokens != nil || fin.Uid != "bob" || fin.Identity.Subject != subject {
		t.Fatalf("bob's link: %v %+v", err, fin)
	}
	if links := f.links(bobTok); len(links) != 1 || links[0].Subject != subject {
		t.Fatalf("bob's links: %+v", links)
	}

	// Bad input.
	_, err = f.login.StartLogin(ctx, req(&oidcv1.StartLoginRequest{Link: true}, ""))
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = f.login.FinishLogin(ctx, req(&oidcv1.FinishLoginRequest{}, ""))
	if got := violations(err); got["login_id"] != "login_id.required" || got["poll_secret"] != "poll_secret.required" {
		t.Errorf("FinishLogin without names: %v", got)
	}
	_, err = f.login.Unlink(ctx, req(&oidcv1.UnlinkRequest{}, bobTok))
	if got := violations(err); got["issuer"] != "issuer.required" || got["subject"] != "subject.required" {
		t.Errorf("Unlink without names: %v", got)
	}
	resp, _ = oidctest.NewBrowser(t).Get(f.tb.url + "/auth/oidc/callback?state=forged&code=x")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("callback with a forged state: status %d", resp.StatusCode)
	}
	resp, body = oidctest.NewBrowser(t).Get(f.tb.url + "/auth/oidc/callback?error=access_denied&error_description=%3Cscript%3E")
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "<script>") {
		t.Errorf("provider's refusal: status %d:\n%s", resp.StatusCode, body)
	}
	// A replayed callback is refused.
	st2, err := f.login.StartLogin(ctx, req(&oidcv1.StartLoginRequest{}, ""))
	if err != nil {
		t.Fatal(err)
	}
	br := oidctest.NewBrowser(t)
	again := br.Authorize(st2.Msg.AuthorizationUrl, "jdoe", userPassword)
	br.Get(again.String())
	if resp, _ := br.Get(again.String()); resp.StatusCode != http.StatusConflict {
		t.Errorf("replayed callback: status %d", resp.StatusCode)
	}

	// Audited, with no secret in the record.
	evs, _, err := f.tb.srv.Service.Accounts.ListAuditEvents(ctx, operator, service.AuditQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Operation+" "+e.Outcome] = true
		if strings.Contains(e.Detail, userPassword) || strings.Contains(e.Detail, st.PollSecret) || strings.Contains(e.Detail, code) {
			t.Errorf("audit record holds a secret: %+v", e)
		}
	}
	for _, want := range []string{
		service.OpExternalCallback + " ok", service.OpExternalCallback + " not_found", service.OpExternalCallback + " already_exists",
		service.OpExternalLink + " ok", service.OpExternalLink + " unauthenticated",
		"trellis.v1.ext.auth.oidc.v1.Login/FinishLogin ok", "trellis.v1.ext.auth.oidc.v1.Login/FinishLogin permission_denied",
	} {
		if !seen[want] {
			t.Errorf("no audit record %q", want)
		}
	}

	// A server without the backend refuses its operations.
	_, err = oidcv1connect.NewLoginClient(f.idp.http, f.idp.url).StartLogin(ctx, req(&oidcv1.StartLoginRequest{}, ""))
	wantCode(t, err, connect.CodeFailedPrecondition)
}
