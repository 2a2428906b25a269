// Package oidctest drives OpenID Connect logins in tests: a relying party
// built on the standard libraries (go-oidc, x/oauth2), and a browser that
// logs in on Trellis's login page and reports where it is sent back.
package oidctest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// RP is a relying party of the provider at an issuer.
type RP struct {
	Provider *oidc.Provider
	Config   oauth2.Config
}

// NewRP discovers the provider at issuer and configures a client of it.
func NewRP(t testing.TB, issuer, clientID, secret, redirect string) *RP {
	t.Helper()
	provider, err := oidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatalf("discovery of %s: %v", issuer, err)
	}
	return &RP{Provider: provider, Config: oauth2.Config{
		ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}}
}

// Browser is a user's browser: it keeps cookies and follows no redirect by
// itself, so that each step can be looked at.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{t: t, Client: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// Get fetches u and returns the response and its body.
func (b *Browser) Get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.Client.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(resp)
}

// Post submits a form to u.
func (b *Browser) Post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.Client.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return resp, readBody(resp)
}

func readBody(resp *http.Response) string {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// StartLogin opens an authorization URL of Trellis's provider, which sends
// the browser to its login page; it returns the page's address and the
// authorization request's id the form carries.
func (b *Browser) StartLogin(authURL string) (loginURL, id string) {
	b.t.Helper()
	resp, body := b.Get(authURL)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("authorize: status %d, want a redirect to the login page: %s", resp.StatusCode, body)
	}
	loginURL = resp.Header.Get("Location")
	resp, body = b.Get(loginURL)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("login page: status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		b.t.Errorf("login page may be framed: X-Frame-Options %q", resp.Header.Get("X-Frame-Options"))
	}
	m := hiddenID.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no request id in the login page:\n%s", body)
	}
	return loginURL, m[1]
}

// LogIn submits the login form and follows the provider until it sends the
// browser back to the client; it returns that address (with the code and
// state, or an error).
func (b *Browser) LogIn(loginURL, id, uid, pw string) *url.URL {
	b.t.Helper()
	resp, body := b.Post(loginURL, url.Values{"id": {id}, "uid": {uid}, "password": {pw}})
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("login: status %d: %s", resp.StatusCode, body)
	}
	resp, body = b.Get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("authorize callback: status %d: %s", resp.StatusCode, body)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		b.t.Fatalf("sent back to %q: %v", resp.Header.Get("Location"), err)
	}
	return back
}

// Authorize runs a whole login at Trellis's provider: authorization URL,
// login page, back to the client.
func (b *Browser) Authorize(authURL, uid, pw string) *url.URL {
	b.t.Helper()
	loginURL, id := b.StartLogin(authURL)
	return b.LogIn(loginURL, id, uid, pw)
}
