package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

var ops = &auth.Principal{UID: adminUID, Admin: true}

// realization gives owner an approved project, an experiment of one node
// and a resource, and realizes it: the id.
func (tb *testbed) realization(owner, project, resource string) string {
	tb.t.Helper()
	ctx := context.Background()
	p := &auth.Principal{UID: owner}
	svc := tb.srv.Service
	if _, _, err := svc.Social.RequestProject(ctx, p, project, "a lab", nil, false); err != nil {
		tb.t.Fatal(err)
	}
	if _, err := svc.Social.ApproveProject(ctx, ops, project); err != nil {
		tb.t.Fatal(err)
	}
	if _, err := svc.Testbed.CreateExperiment(ctx, p, owner+":exp", "", nil, []service.AspectInput{{Type: "layout", Name: "main", Content: []byte("nodes:\n  - name: a\n")}}); err != nil {
		tb.t.Fatal(err)
	}
	if _, err := svc.Sites.GetProvider(ctx, ops, "site1"); err != nil {
		if _, _, _, err := svc.Sites.AddProvider(ctx, ops, "site1", "https://site1.example.org:7800"); err != nil {
			tb.t.Fatal(err)
		}
	}
	if _, err := svc.Testbed.RegisterResource(ctx, ops, &domain.Resource{Name: resource, Kind: domain.KindNode, Provider: "site1", Attributes: map[string]string{"cores": "8"}}); err != nil {
		tb.t.Fatal(err)
	}
	rz, err := svc.Testbed.Realize(ctx, p, owner+":exp", project, 0)
	if err != nil {
		tb.t.Fatal(err)
	}
	return rz.ID
}

var adminPages = []struct{ path, element string }{
	{"/admin/users", `id="users"`},
	{"/admin/realizations", `id="realizations"`},
	{"/admin/resources", `id="resources"`},
	{"/admin/clients", `id="add-client"`},
	{"/admin/audit", `id="audit"`},
	{"/admin/outbox", `id="outbox"`},
	{"/admin/ca", `id="rotate-ca"`},
}

// Every admin page: an anonymous visitor is sent to sign in, an unrelated
// user is refused by the service (a clear page), an administrator sees it
// with the administration's navigation; a researcher's changes are
// refused too.
func TestAdminPagesRefuse(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	tb.newUser("mallory")
	tb.realization("alice", "lab", "n1")
	anon, alice, mallory, admin := tb.browser(), tb.browser(), tb.browser(), tb.browser()
	alice.signIn("alice", userPassword)
	mallory.signIn("mallory", userPassword)
	admin.signIn(adminUID, adminPassword)
	if strings.Contains(alice.get("/").body, `id="nav-admin"`) {
		t.Error("a researcher's header links the administration")
	}
	want(t, "admin header", admin.get("/"), http.StatusOK, `id="nav-admin"`)
	for _, p := range adminPages {
		if a := anon.get(p.path); a.status != http.StatusSeeOther || a.location() != "/signin?next="+url.QueryEscape(p.path) {
			t.Errorf("anonymous %s: %d %q", p.path, a.status, a.location())
		}
		// mallory belongs to no project: even the resources, which any
		// researcher who may realize sees, are refused.
		want(t, "unrelated user "+p.path, mallory.get(p.path), http.StatusForbidden, "Not allowed")
		want(t, "admin "+p.path, admin.get(p.path), http.StatusOK, p.element, `aria-label="Administration"`)
	}
	// Posts too: the service refuses them, nothing changes.
	alice.get("/credentials")
	for _, path := range []string{"/admin/users/alice/admin", "/admin/realizations/x/release", "/admin/resources/n1/state", "/admin/services", "/admin/clients", "/admin/ca/rotate"} {
		a := alice.post(path, url.Values{"admin": {"true"}, "state": {"down"}, "name": {"evil"}, "redirect_uris": {"https://evil.example.org/cb"}, "confirm": {"yes"}})
		want(t, "researcher posts "+path, a, http.StatusForbidden, "Not allowed")
	}
	u, err := tb.srv.Service.Accounts.GetUser(context.Background(), ops, "alice")
	if err != nil || u.Admin {
		t.Fatalf("alice made herself admin: %v %v", u, err)
	}
}

func TestAdminUsers(t *testing.T) {
	tb := newTestbed(t)
	for i := range 22 { // more than a page (20)
		tb.newUser(fmt.Sprintf("user%02d", i))
	}
	tb.newUser("alice")
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	a := admin.get("/admin/users")
	want(t, "first page", a, http.StatusOK, `id="u-alice"`, `rel="next"`)
	m := regexpNext.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatal("no next link")
	}
	want(t, "second page", admin.get(strings.ReplaceAll(m[1], "&amp;", "&")), http.StatusOK, `id="u-user20"`, "First page")
	a = admin.get("/admin/users?q=ali")
	want(t, "search", a, http.StatusOK, `id="u-alice"`)
	if strings.Contains(a.body, `id="u-user00"`) {
		t.Error("search shows others")
	}

	// Locking alice ends her session.
	alice := tb.browser()
	alice.signIn("alice", userPassword)
	a = admin.post("/admin/users/alice/state", url.Values{"state": {"locked"}, "back": {"q=ali"}})
	if a.status != http.StatusSeeOther || a.location() != "/admin/users?done=state&q=ali" {
		t.Fatalf("lock: %d %q\n%s", a.status, a.location(), a.body)
	}
	want(t, "locked", admin.get(a.location()), http.StatusOK, "Account state changed", `<span class="state locked">locked</span>`)
	want(t, "locked alice", alice.get("/"), http.StatusUnauthorized, "Your session has ended")
	want(t, "bad state", admin.post("/admin/users/alice/state", url.Values{"state": {"sleeping"}}), http.StatusBadRequest, "That did not work")
	a = admin.post("/admin/users/alice/admin", url.Values{"admin": {"true"}})
	want(t, "made admin", admin.get(a.location()), http.StatusOK, `id="unadmin-alice"`)
}

var regexpNext = regexp.MustCompile(`href="([^"]+)" rel="next"`)

// LambdaLink's first wish: an administrator sees every realization and
// force-releases one; its resource is free again, its owner told.
func TestAdminForceRelease(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	id := tb.realization("alice", "lab", "n1")
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	want(t, "realizations", admin.get("/admin/realizations"), http.StatusOK, `id="r-`+id+`"`, `id="release-`+id+`"`, "alice:exp")
	want(t, "resources", admin.get("/admin/resources"), http.StatusOK, "<code>"+id+"</code>", "cores=8")
	a := admin.post("/admin/realizations/"+id+"/release", url.Values{"reason": {"maintenance window"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("force release: %d\n%s", a.status, a.body)
	}
	a = admin.get(a.location())
	want(t, "released", a, http.StatusOK, "Realization released")
	if strings.Contains(a.body, `id="r-`+id+`"`) {
		t.Error("a released realization is listed among the live ones")
	}
	want(t, "ended ones", admin.get("/admin/realizations?ended=1"), http.StatusOK, `id="r-`+id+`"`, "released")
	want(t, "resource free", admin.get("/admin/resources"), http.StatusOK, `<span class="muted">free</span>`)
	a = admin.post("/admin/resources/n1/state", url.Values{"state": {"maintenance"}})
	want(t, "maintenance", admin.get(a.location()), http.StatusOK, "Resource state changed", `<span class="state maintenance">maintenance</span>`)
	want(t, "filter", admin.get("/admin/resources?state=available"), http.StatusOK, `id="none"`)
	want(t, "bad filter", admin.get("/admin/resources?attr=%3D%3D"), http.StatusBadRequest, `id="e-attr"`)
	alice := tb.browser()
	alice.signIn("alice", userPassword)
	want(t, "alice notified", alice.get("/notifications"), http.StatusOK, id)
}

func TestAdminClients(t *testing.T) {
	tb := newTestbed(t)
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	admin.get("/admin/clients")
	a := admin.post("/admin/services", url.Values{"name": {"Bad Name"}})
	want(t, "bad service", a, http.StatusBadRequest, `id="e-sname"`, `value="Bad Name"`)
	a = admin.post("/admin/services", url.Values{"name": {"jupyter"}})
	want(t, "service", a, http.StatusOK, `id="new-secret"`, "service jupyter", `id="remove-service-jupyter"`)
	a = admin.post("/admin/clients", url.Values{"name": {"wiki"}, "redirect_uris": {"https://wiki.example.org/callback"}})
	want(t, "client", a, http.StatusOK, `id="new-secret"`, "OIDC client wiki", `id="remove-client-wiki"`, "confidential")
	a = admin.post("/admin/clients", url.Values{"name": {"spa"}, "redirect_uris": {"not a url"}, "public": {"on"}})
	want(t, "bad client", a, http.StatusBadRequest, `id="e-uris"`, "not a url</textarea>")
	if strings.Contains(admin.get("/admin/clients").body, `id="new-secret"`) {
		t.Error("a secret is shown again")
	}
	a = admin.post("/admin/clients/wiki/remove", nil)
	want(t, "client removed", admin.get(a.location()), http.StatusOK, "OIDC client removed", `id="no-clients"`)
	a = admin.post("/admin/services/jupyter/remove", nil)
	want(t, "service removed", admin.get(a.location()), http.StatusOK, "Service removed", `id="no-services"`)
}

func TestAdminAuditOutboxCA(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	a := admin.get("/admin/audit?actor=alice")
	want(t, "audit by actor", a, http.StatusOK, "trellis.v1.Users/ConfirmEmail")
	if strings.Contains(a.body, "trellis.v1.Auth/Login</code>") {
		t.Error("the actor filter lets the admin's login through")
	}
	want(t, "audit by operation", admin.get("/admin/audit?operation=trellis.v1.Auth/Login"), http.StatusOK, "trellis.v1.Auth/Login")
	want(t, "audit future", admin.get("/admin/audit?since=2999-01-01T00:00"), http.StatusOK, `id="none"`)
	want(t, "audit past", admin.get("/admin/audit?until=2000-01-01T00:00"), http.StatusOK, `id="none"`)
	want(t, "audit bad time", admin.get("/admin/audit?since=yesterday"), http.StatusBadRequest, `id="e-since"`)
	want(t, "audit range", admin.get("/admin/audit?since=2026-01-02T00:00&until=2026-01-01T00:00"), http.StatusBadRequest, `id="e-until"`)

	// No mail server: the outbox shows the mail with its link.
	want(t, "outbox", admin.get("/admin/outbox?to=alice@uni.example.edu"), http.StatusOK, "Confirm your e-mail address for Trellis", "/confirm?token=")
	want(t, "outbox link", admin.get("/"), http.StatusOK) // the header works
	if !strings.Contains(admin.get("/admin/users").body, `href="/admin/outbox"`) {
		t.Error("no outbox link without a mail server")
	}

	admin.get("/admin/ca")
	want(t, "unconfirmed rotation", admin.post("/admin/ca/rotate", nil), http.StatusBadRequest, `id="form-error"`, "nothing was changed")
	a = admin.post("/admin/ca/rotate", url.Values{"confirm": {"yes"}})
	want(t, "rotated", a, http.StatusOK, `id="rotated"`, "BEGIN CERTIFICATE", `id="past-rotations"`)
}
