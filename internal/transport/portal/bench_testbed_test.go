package portal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/store"
)

// BenchmarkTestbedPages renders the experiment, library, circle, resource
// and realization pages through the whole handler at the 10,000-user
// dataset with 10,000 experiments (a third shared with circles) and 1,000
// nodes, for the member of the most projects, who has a 200-node
// experiment realized, a library and a circle, and for an administrator
// (who reads everything):
//
//	go test -run '^$' -bench TestbedPages -benchtime 200x ./internal/transport/portal/
func BenchmarkTestbedPages(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	spec := dataset.Testbed
	spec.Experiments = 10_000
	pop, err := dataset.Generate(ctx, st, spec)
	if err != nil {
		b.Fatal(err)
	}
	if err := dataset.Nodes(ctx, st, 1000, 1); err != nil {
		b.Fatal(err)
	}
	count := map[string]int{}
	busiest := ""
	for _, m := range pop.Memberships {
		count[m[0]]++
		if count[m[0]] > count[busiest] {
			busiest = m[0]
		}
	}
	hash, err := (&password.Hasher{Params: password.TestParams()}).Hash(userPassword)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Users().SetPasswordHash(ctx, busiest, hash) }); err != nil {
		b.Fatal(err)
	}
	srv := build(b, st)
	if _, err := srv.Service.Bootstrap(ctx, adminUID, "ops@testbed.example.org", adminPassword); err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler)
	b.Cleanup(ts.Close)
	tb := &testbed{t: b, srv: srv, url: ts.URL}

	// The member's own things, made through the pages.
	m := tb.browser()
	m.signIn(busiest, userPassword)
	m.get("/projects/new")
	if a := m.post("/projects/new", url.Values{"name": {"benchlab"}, "description": {"benchmarks"}}); a.status != http.StatusSeeOther {
		b.Fatalf("request project: %d\n%s", a.status, a.body)
	} else if strings.Contains(a.location(), "requested") {
		admin := tb.browser()
		admin.signIn(adminUID, adminPassword)
		admin.get("/admin/approvals")
		admin.post("/admin/approvals/benchlab/approve", nil)
	}
	x := busiest + ":campus"
	m.get("/experiments/new")
	if a := m.postMultipart("/experiments/new", url.Values{"id": {x}, "layout": {campusLayout()}}, "", "", ""); a.status != http.StatusSeeOther {
		b.Fatalf("create: %d\n%s", a.status, a.body)
	}
	m.get("/experiments/" + x)
	a := m.post("/experiments/"+x+"/realize", url.Values{"project": {"benchlab"}})
	if a.status != http.StatusSeeOther {
		b.Fatalf("realize: %d\n%s", a.status, a.body)
	}
	rz, _, _ := strings.Cut(a.location(), "?")
	m.get("/libraries")
	m.post("/libraries", url.Values{"id": {busiest + ":lib"}})
	m.post("/libraries/"+busiest+":lib/experiments", url.Values{"experiment": {x}})
	m.get("/circles")
	m.post("/circles", url.Values{"id": {busiest + ":group"}})
	b.Logf("member %s: %d direct memberships; experiment %s (200 nodes) realized as %s", busiest, count[busiest], x, rz)

	memberPages := []struct{ name, path, want string }{
		{"experiments", "/experiments", `id="experiments"`},
		{"experiments-shared", "/experiments?view=shared", "Shared with me"},
		{"experiment-200", "/experiments/" + x, `<g class="node">`},
		{"libraries", "/libraries", `id="libraries"`},
		{"library", "/libraries/" + busiest + ":lib", `id="library-experiments"`},
		{"circles", "/circles", `id="circles"`},
		{"circle", "/circles/" + busiest + ":group", `id="members"`},
		{"resources", "/resources", `id="resources"`},
		{"resources-filtered", "/resources?filter=" + url.QueryEscape("cores>=32 arch=x86_64"), `id="resources"`},
		{"resource", "/resources/node00001", `id="attributes"`},
		{"realizations", "/realizations", `id="realizations"`},
		{"realization-200", rz, `id="bindings"`},
	}
	adminPages := []struct{ name, path, want string }{
		{"experiments-all", "/experiments?view=all", `id="experiments"`},
		{"libraries", "/libraries", `id="libraries"`},
		{"circles", "/circles", `id="circles"`},
		{"experiment-200", "/experiments/" + x, `<g class="node">`},
	}
	for _, who := range []struct {
		name, uid, pw string
		pages         []struct{ name, path, want string }
	}{{"member", busiest, userPassword, memberPages}, {"admin", adminUID, adminPassword, adminPages}} {
		cookie := signInDirect(b, srv, who.uid, who.pw)
		for _, page := range who.pages {
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
