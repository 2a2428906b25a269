package portal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// BenchmarkPortalAccountAndAdminPages renders the pages of keys and
// tokens, password reset and administration through the whole handler
// (the session cookie's authentication included) at the 10,000-user
// dataset: a member's keys and tokens (two SSH keys, two API tokens), the
// administrator's lists (first pages: users, realizations, resources, the
// audit log, the outbox, services and clients, the CA page; 10,000 nodes,
// ten live realizations) and the anonymous reset page:
//
//	go test -run '^$' -bench PortalAccountAndAdminPages -benchtime 200x ./internal/transport/portal/
func BenchmarkPortalAccountAndAdminPages(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	pop, err := dataset.Generate(ctx, st, dataset.Testbed)
	if err != nil {
		b.Fatal(err)
	}
	// The inventory: 10,000 nodes, some of them bound (below).
	if err := dataset.Nodes(ctx, st, 10_000, 1); err != nil {
		b.Fatal(err)
	}
	member := pop.Memberships[0][0]
	hash, err := (&password.Hasher{Params: password.TestParams()}).Hash(userPassword)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Users().SetPasswordHash(ctx, member, hash) }); err != nil {
		b.Fatal(err)
	}
	srv := build(b, st)
	if _, err := srv.Service.Bootstrap(ctx, adminUID, "ops@testbed.example.org", adminPassword); err != nil {
		b.Fatal(err)
	}
	// Ten live realizations of 20 nodes each, under an approved project.
	if err := st.Update(ctx, func(tx store.Tx) error {
		now := time.Now()
		if err := tx.Projects().Create(ctx, &domain.Project{Name: "ops-lab", Owner: adminUID, State: domain.ProjectApproved, CreatedAt: now, ApprovedAt: now}); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProject, "ops-lab")
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := srv.Service.Testbed.CreateExperiment(ctx, ops, adminUID+":exp", "", nil, []service.AspectInput{{Type: "layout", Name: "main", Content: dataset.Layout(20)}}); err != nil {
		b.Fatal(err)
	}
	for range 10 {
		if _, err := srv.Service.Testbed.Realize(ctx, ops, adminUID+":exp", "ops-lab", 0); err != nil {
			b.Fatal(err)
		}
	}
	memberCookie := signInDirect(b, srv, member, userPassword)
	adminCookie := signInDirect(b, srv, adminUID, adminPassword)
	// The member's credentials, made through the pages.
	post := func(path, body string) {
		b.Helper()
		w := httptest.NewRecorder()
		get := httptest.NewRequest(http.MethodGet, "/credentials", nil)
		get.AddCookie(memberCookie)
		srv.Handler.ServeHTTP(w, get)
		m := csrfInPage.FindStringSubmatch(w.Body.String())
		if m == nil {
			b.Fatalf("no form token:\n%s", w.Body)
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body+"&csrf="+m[1]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(memberCookie)
		w = httptest.NewRecorder()
		srv.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusSeeOther && w.Code != http.StatusOK {
			b.Fatalf("%s: %d\n%s", path, w.Code, w.Body)
		}
	}
	for _, c := range []string{"a", "b"} {
		key, _ := newSSHKeyB(b, c)
		post("/credentials/ssh", "public_key="+urlEscape(key))
		post("/credentials/tokens", "name=tok-"+c+"&scopes=read&days=7")
	}
	pages := []struct {
		name, path, want string
		cookie           *http.Cookie
	}{
		{"member/credentials", "/credentials", `id="api-tokens"`, memberCookie},
		{"anonymous/reset", "/reset/request", `id="reset-request"`, nil},
		{"admin/users", "/admin/users", `id="users"`, adminCookie},
		{"admin/users-search", "/admin/users?q=u01", `id="users"`, adminCookie},
		{"admin/realizations", "/admin/realizations", `id="realizations"`, adminCookie},
		{"admin/resources", "/admin/resources", `id="resources"`, adminCookie},
		{"admin/resources-filtered", "/admin/resources?kind=node&attr=cores%3E%3D32+arch%3Dx86_64", `id="resources"`, adminCookie},
		{"admin/clients", "/admin/clients", `id="add-client"`, adminCookie},
		{"admin/audit", "/admin/audit", `id="audit"`, adminCookie},
		{"admin/audit-actor", "/admin/audit?actor=" + member, `id="audit"`, adminCookie},
		{"admin/outbox", "/admin/outbox", `Outbox`, adminCookie},
		{"admin/ca", "/admin/ca", `id="rotate-ca"`, adminCookie},
	}
	for _, page := range pages {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, page.path, nil)
				if page.cookie != nil {
					req.AddCookie(page.cookie)
				}
				w := httptest.NewRecorder()
				srv.Handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), page.want) {
					b.Fatalf("%s: %d\n%s", page.path, w.Code, w.Body)
				}
			}
		})
	}
}
