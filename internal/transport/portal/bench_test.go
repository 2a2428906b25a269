package portal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/store"
)

// BenchmarkPortalPages renders the dashboard and the project list, through
// the whole handler (authentication of the session cookie included), at
// the 10,000-user dataset, for the member of the most projects and for an
// administrator (who reads every project):
//
//	go test -run '^$' -bench PortalPages -benchtime 200x ./internal/transport/portal/
func BenchmarkPortalPages(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	pop, err := dataset.Generate(ctx, st, dataset.Testbed)
	if err != nil {
		b.Fatal(err)
	}
	// The busiest member, given a password (written as the dataset writes).
	count := map[string]int{}
	busiest := ""
	for _, m := range pop.Memberships {
		count[m[0]]++
		if count[m[0]] > count[busiest] {
			busiest = m[0]
		}
	}
	params := password.TestParams()
	hash, err := (&password.Hasher{Params: params}).Hash(userPassword)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Users().SetPasswordHash(ctx, busiest, hash) }); err != nil {
		b.Fatal(err)
	}
	b.Logf("member %s: %d direct memberships besides owned projects", busiest, count[busiest])
	srv := build(b, st)
	if _, err := srv.Service.Bootstrap(ctx, adminUID, "ops@testbed.example.org", adminPassword); err != nil {
		b.Fatal(err)
	}
	for _, who := range []struct{ name, uid, pw string }{{"member", busiest, userPassword}, {"admin", adminUID, adminPassword}} {
		cookie := signInDirect(b, srv, who.uid, who.pw)
		for _, page := range []struct{ name, path, want string }{{"dashboard", "/", "Welcome"}, {"projects", "/projects", `id="projects"`}} {
			b.Run(who.name+"/"+page.name, func(b *testing.B) {
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, page.path, nil)
					req.AddCookie(cookie)
					w := httptest.NewRecorder()
					srv.Handler.ServeHTTP(w, req)
					if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), page.want) {
						b.Fatalf("%s: %d\n%s", page.path, w.Code, w.Body)
					}
				}
			})
		}
	}
}

// signInDirect signs in through the handler and returns the session cookie.
func signInDirect(b *testing.B, srv *app.Server, uid, pw string) *http.Cookie {
	b.Helper()
	w := httptest.NewRecorder()
	srv.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/signin", nil))
	form := w.Result().Cookies()
	m := csrfInPage.FindStringSubmatch(w.Body.String())
	if len(form) == 0 || m == nil {
		b.Fatalf("sign-in page: %d\n%s", w.Code, w.Body)
	}
	body := url.Values{"uid": {uid}, "password": {pw}, "csrf": {m[1]}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(form[0])
	w = httptest.NewRecorder()
	srv.Handler.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == "trellis_session" && c.Value != "" {
			return c
		}
	}
	b.Fatalf("sign in as %s: %d\n%s", uid, w.Code, w.Body)
	return nil
}
