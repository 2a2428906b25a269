package portal_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

const (
	adminUID      = "ops"
	adminPassword = "correct horse battery staple"
	userPassword  = "mad hatter tea party"
)

// testbed is a built Trellis (the whole handler: API, portal and all)
// behind a test HTTP server, with an administrator.
type testbed struct {
	t   testing.TB
	srv *app.Server
	url string
}

func quietLog() *slog.Logger {
	if os.Getenv("TRELLIS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, t.TempDir()+"/trellis.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func build(t testing.TB, st store.Store) *app.Server {
	t.Helper()
	params := password.TestParams()
	srv, err := app.Build(context.Background(), app.Config{Listen: "127.0.0.1:0", PasswordParams: &params, Log: quietLog()}, st)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func newTestbed(t testing.TB) *testbed {
	t.Helper()
	srv := build(t, openStore(t))
	if _, err := srv.Service.Bootstrap(context.Background(), adminUID, "ops@testbed.example.org", adminPassword); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	return &testbed{t: t, srv: srv, url: ts.URL}
}

// newUser registers and confirms uid through the service, as the API would.
func (tb *testbed) newUser(uid string) {
	tb.t.Helper()
	ctx := context.Background()
	email := uid + "@uni.example.edu"
	_, err := tb.srv.Service.Accounts.Register(ctx, nil, service.Registration{
		UID: uid, Email: email, Password: userPassword,
		Profile: map[string]string{"name": strings.ToUpper(uid[:1]) + uid[1:] + " Example", "phone": "+1 310 555 0100"},
	})
	if err != nil {
		tb.t.Fatal(err)
	}
	if _, err := tb.srv.Service.Accounts.ConfirmEmail(ctx, nil, tb.mailedToken(email)); err != nil {
		tb.t.Fatal(err)
	}
}

var tokenInMail = regexp.MustCompile(`user confirm (\S+)`)

// mailedToken reads the newest confirmation token mailed to addr from the
// outbox, as an operator with the database would.
func (tb *testbed) mailedToken(addr string) string {
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
	// The token is kept sealed beside the body, which names it.
	body := mail[0].Body
	if mail[0].SealedSecret != nil {
		tok, err := tb.srv.Sealer.Open(mail[0].SealedSecret)
		if err != nil {
			tb.t.Fatalf("mail to %s: open its token: %v", addr, err)
		}
		body = domain.RenderMail(body, string(tok))
	}
	m := tokenInMail.FindStringSubmatch(body)
	if m == nil {
		tb.t.Fatalf("no token in mail:\n%s", mail[0].Body)
	}
	return m[1]
}

// browser is an HTTP client with cookies that does not follow redirects,
// so tests see each answer.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	// last is the body of the last page read; its form token is what the
	// next post sends.
	last string
}

func (tb *testbed) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: tb.t, base: tb.url, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type answer struct {
	status int
	body   string
	header http.Header
}

func (a answer) location() string { return a.header.Get("Location") }

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		b.last = string(body)
	}
	return answer{status: resp.StatusCode, body: string(body), header: resp.Header}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

var csrfInPage = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the form token of the last page read.
func (b *browser) csrf() string {
	m := csrfInPage.FindStringSubmatch(b.last)
	if m == nil {
		return ""
	}
	return m[1]
}

// post sends a form with the last page's form token.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf())
	}
	return b.postRaw(path, form, nil)
}

func (b *browser) postRaw(path string, form url.Values, hdr http.Header) answer {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	return b.do(req)
}

// signIn signs uid in through the form.
func (b *browser) signIn(uid, pw string) {
	b.t.Helper()
	b.get("/signin")
	a := b.post("/signin", url.Values{"uid": {uid}, "password": {pw}, "next": {"/"}})
	if a.status != http.StatusSeeOther || a.location() != "/" {
		b.t.Fatalf("sign in as %s: %d %s\n%s", uid, a.status, a.location(), a.body)
	}
	b.get("/")
}

// want checks an answer's status and that its body holds each of parts.
func want(t testing.TB, what string, a answer, status int, parts ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, a.status, status, a.body)
	}
	for _, p := range parts {
		if !strings.Contains(a.body, p) {
			t.Fatalf("%s: no %q in\n%s", what, p, a.body)
		}
	}
}

var (
	regexpID    = regexp.MustCompile(`name="id" value="(\d+)"`)
	regexpAsset = regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`)
	// regexpAccept finds the first request a notifications page offers to accept.
	regexpAccept = regexp.MustCompile(`action="(/requests/[^"/]+/accept)"`)
)
