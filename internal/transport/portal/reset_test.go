package portal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/oidctest"
	"github.com/trellis-testbed/trellis/internal/store"
)

// latestMail is the newest mail to addr, its token put back in the body as
// delivery would.
func (tb *testbed) latestMail(addr string) *domain.Mail {
	tb.t.Helper()
	var mail []*domain.Mail
	err := tb.srv.Store.View(context.Background(), func(tx store.Tx) error {
		var err error
		mail, err = tx.Outbox().List(context.Background(), store.OutboxFilter{To: addr, Limit: 1})
		return err
	})
	if err != nil || len(mail) == 0 {
		tb.t.Fatalf("no mail to %s (err %v)", addr, err)
	}
	m := mail[0]
	if m.SealedSecret != nil {
		tok, err := tb.srv.Sealer.Open(m.SealedSecret)
		if err != nil {
			tb.t.Fatal(err)
		}
		m.Body = domain.RenderMail(m.Body, string(tok))
	}
	return m
}

func (tb *testbed) outboxSize() int {
	tb.t.Helper()
	var n int
	_ = tb.srv.Store.View(context.Background(), func(tx store.Tx) error {
		mail, err := tx.Outbox().List(context.Background(), store.OutboxFilter{Limit: 1000})
		n = len(mail)
		return err
	})
	return n
}

var (
	regexpResetLink   = regexp.MustCompile(`https?://[^/\s]+(/reset\?token=(\S+))`)
	regexpConfirmLink = regexp.MustCompile(`https?://[^/\s]+(/confirm\?token=(\S+))`)
	regexpMessage     = regexp.MustCompile(`<p id="message">([^<]*)</p>`)
)

// Password reset through the pages: asked by uid or by address, answered
// alike for an account that does not exist; the mailed link leads to the
// portal's page, which sets the password once.
func TestPasswordReset(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	// The confirmation mail carries the portal's link too.
	if m := tb.latestMail("alice@uni.example.edu"); !regexpConfirmLink.MatchString(m.Body) {
		t.Errorf("no confirmation link in the mail:\n%s", m.Body)
	}
	b := tb.browser()
	want(t, "sign-in page", b.get("/signin"), http.StatusOK, `href="/reset/request" id="forgot"`)
	want(t, "request page", b.get("/reset/request"), http.StatusOK, `id="reset-request"`, `<label for="f-account">`)
	want(t, "bad uid", b.post("/reset/request", url.Values{"account": {"Not A Uid!"}}), http.StatusBadRequest, `id="e-account"`, `value="Not A Uid!"`)

	before := tb.outboxSize()
	answers := map[string]string{}
	for _, account := range []string{"nosuchuser", "nosuchuser@uni.example.edu", "alice", "alice@uni.example.edu"} {
		b.get("/reset/request")
		a := b.post("/reset/request", url.Values{"account": {account}})
		want(t, "request "+account, a, http.StatusOK, "Check your mail")
		m := regexpMessage.FindStringSubmatch(a.body)
		if m == nil {
			t.Fatalf("no message:\n%s", a.body)
		}
		answers[account] = m[1]
	}
	for account, answer := range answers {
		if answer != answers["alice"] {
			t.Errorf("the answer for %s differs from alice's:\n%s\n%s", account, answer, answers["alice"])
		}
	}
	if got := tb.outboxSize() - before; got != 2 {
		t.Fatalf("%d reset mails, want 2 (by uid and by address)", got)
	}
	m := regexpResetLink.FindStringSubmatch(tb.latestMail("alice@uni.example.edu").Body)
	if m == nil {
		t.Fatalf("no reset link in the mail")
	}
	link, tok := m[1], m[2]
	// The link only draws the form: nothing changes by opening it.
	want(t, "reset page", b.get(link), http.StatusOK, `id="reset"`, `value="`+tok+`"`)
	want(t, "differ", b.post("/reset", url.Values{"token": {tok}, "new_password": {"a new passphrase here"}, "repeat": {"another one"}}), http.StatusBadRequest, `id="e-repeat"`)
	want(t, "weak", b.post("/reset", url.Values{"token": {tok}, "new_password": {"short"}, "repeat": {"short"}}), http.StatusBadRequest, `id="e-new_password"`)
	want(t, "bad token", b.post("/reset", url.Values{"token": {"nonsense"}, "new_password": {"a new passphrase here"}, "repeat": {"a new passphrase here"}}), http.StatusBadRequest, `id="e-token"`, "not valid")
	a := b.post("/reset", url.Values{"token": {tok}, "new_password": {"a new passphrase here"}, "repeat": {"a new passphrase here"}})
	if a.status != http.StatusSeeOther || a.location() != "/signin?reset=1" {
		t.Fatalf("reset: %d %q\n%s", a.status, a.location(), a.body)
	}
	want(t, "after reset", b.get(a.location()), http.StatusOK, "Your password is changed")
	b.signIn("alice", "a new passphrase here")
	// The token worked once.
	b2 := tb.browser()
	b2.get(link)
	want(t, "token again", b2.post("/reset", url.Values{"token": {tok}, "new_password": {"yet another passphrase"}, "repeat": {"yet another passphrase"}}), http.StatusBadRequest, `id="e-token"`)
}

// listeningTestbed is a testbed whose public URL is where it listens (an
// identity provider's issuer must be), its configuration changed by
// mutate.
func listeningTestbed(t *testing.T, mutate func(*app.Config)) *testbed {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	params := password.TestParams()
	cfg := app.Config{Listen: ts.Listener.Addr().String(), PasswordParams: &params, Log: quietLog()}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := app.Build(context.Background(), cfg, openStore(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Service.Bootstrap(context.Background(), adminUID, "ops@testbed.example.org", adminPassword); err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler
	ts.Start()
	t.Cleanup(ts.Close)
	return &testbed{t: t, srv: srv, url: ts.URL}
}

// The sign-in page offers the institution only when the oidc backend is
// on; the button leads through the identity provider (another Trellis
// here) back to a portal session, the identity linked on first use.
func TestExternalSignIn(t *testing.T) {
	tb := newTestbed(t)
	if a := tb.browser().get("/signin"); strings.Contains(a.body, "external-signin") {
		t.Fatal("the institution is offered without the oidc backend")
	}

	idp := listeningTestbed(t, nil)
	idp.newUser("jdoe")
	ctx := context.Background()
	var secret string
	fed := listeningTestbed(t, func(c *app.Config) {
		var err error
		_, secret, err = idp.srv.Service.Federation.AddOIDCClient(ctx, &auth.Principal{UID: adminUID, Admin: true}, "testbed", []string{"http://" + c.Listen + "/auth/oidc/callback"}, false)
		if err != nil {
			t.Fatal(err)
		}
		c.AuthBackends = []string{app.BackendLocal, app.BackendOIDC}
		c.OIDCBackend = app.OIDCBackendConfig{Issuer: idp.url + "/oidc", ClientID: "testbed", ClientSecret: secret}
	})
	ts := struct{ URL string }{fed.url}
	fed.newUser("alice")
	want(t, "sign-in page", fed.browser().get("/signin?next=/profile"), http.StatusOK, `id="external-signin" href="/signin/external?next=%2fprofile"`)

	b := oidctest.NewBrowser(t)
	resp, body := b.Get(ts.URL + "/signin/external?next=/profile")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), idp.url+"/oidc/") {
		t.Fatalf("start: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	back := b.Authorize(resp.Header.Get("Location"), "jdoe", userPassword)
	_, body = b.Get(back.String())
	login, token := regexp.MustCompile(`name="login" value="([^"]+)"`).FindStringSubmatch(body), regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(body)
	if login == nil || token == nil {
		t.Fatalf("no link form:\n%s", body)
	}
	resp, body = b.Post(ts.URL+"/auth/oidc/link", url.Values{"login": {login[1]}, "token": {token[1]}, "uid": {"alice"}, "password": {userPassword}})
	done := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(done, ts.URL+"/signin/external/done?code=") {
		t.Fatalf("link: %d %q\n%s", resp.StatusCode, done, body)
	}
	// The finish code is of no use to a browser that did not start the
	// login.
	other := oidctest.NewBrowser(t)
	if resp, _ := other.Get(done); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the code in another browser: %d", resp.StatusCode)
	}
	resp, body = b.Get(done)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("done: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = b.Get(ts.URL + "/profile")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<span class="who">alice</span>`) {
		t.Fatalf("profile after signing in through the institution: %d\n%s", resp.StatusCode, body)
	}
	// Her keys and tokens page lists the identity; she unlinks it.
	resp, body = b.Get(ts.URL + "/credentials")
	if !strings.Contains(body, `id="identities"`) || !strings.Contains(body, idp.url+"/oidc") || !strings.Contains(body, `id="link-identity"`) {
		t.Fatalf("credentials with a linked identity: %d\n%s", resp.StatusCode, body)
	}
	m := csrfInPage.FindStringSubmatch(body)
	issuer := regexp.MustCompile(`name="issuer" value="([^"]+)"`).FindStringSubmatch(body)
	subject := regexp.MustCompile(`name="subject" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil || issuer == nil || subject == nil {
		t.Fatalf("no unlink form:\n%s", body)
	}
	resp, _ = b.Post(ts.URL+"/credentials/identities/remove", url.Values{"csrf": {m[1]}, "issuer": {issuer[1]}, "subject": {subject[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unlink: %d", resp.StatusCode)
	}
	if _, body = b.Get(ts.URL + "/credentials?done=unlinked"); !strings.Contains(body, `id="no-identities"`) {
		t.Fatalf("after unlinking:\n%s", body)
	}
	// And links it again from that page: the login, started by her
	// session, ends in the link, and her session goes on.
	resp, _ = b.Get(ts.URL + "/credentials/link")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link start: %d", resp.StatusCode)
	}
	back = b.Authorize(resp.Header.Get("Location"), "jdoe", userPassword)
	resp, body = b.Get(back.String())
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), ts.URL+"/signin/external/done?code=") {
		t.Fatalf("link callback: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, _ = b.Get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/credentials?done=linked" {
		t.Fatalf("link done: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body = b.Get(ts.URL + "/credentials?done=linked"); !strings.Contains(body, "Identity linked") || !strings.Contains(body, `id="identities"`) {
		t.Fatalf("after linking:\n%s", body)
	}

	// A login that the identity provider has not vouched for yet cannot be
	// collected: the sign-in page says so.
	third := oidctest.NewBrowser(t)
	if resp, _ := third.Get(ts.URL + "/signin/external"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second start: %d", resp.StatusCode)
	}
	resp, body = third.Get(ts.URL + "/signin/external/done?code=forged")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `id="form-error"`) || !strings.Contains(body, "not finished") {
		t.Fatalf("collecting an unfinished login: %d\n%s", resp.StatusCode, body)
	}
}
