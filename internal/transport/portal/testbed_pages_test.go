package portal_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/dataset"
)

// The researcher's object pages: experiments, libraries, circles,
// resources, realizations. Each page is checked for its status and the
// element it must have; anonymous visitors are sent to sign in; the
// service's refusals of an unrelated user are drawn as clear pages.

const pingLayout = "nodes:\n  - name: client\n    constraints: {cores: \">=2\"}\n  - name: server\n    constraints: {arch: x86_64}\nlinks:\n  - [client, server]\n"

// postMultipart sends a multipart form with the last page's form token
// and, when file is set, one file.
func (b *browser) postMultipart(path string, fields url.Values, fileField, fileName, file string) answer {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if _, ok := fields["csrf"]; !ok {
		fields.Set("csrf", b.csrf())
	}
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	if fileField != "" {
		fw, err := mw.CreateFormFile(fileField, fileName)
		if err != nil {
			b.t.Fatal(err)
		}
		fw.Write([]byte(file))
	}
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, b.base+path, &body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// seeOther checks a redirect and returns where it goes.
func seeOther(t *testing.T, what string, a answer, prefix string) string {
	t.Helper()
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location(), prefix) {
		t.Fatalf("%s: %d %q, want 303 to %s…\n%s", what, a.status, a.location(), prefix, a.body)
	}
	return a.location()
}

// researchers is a testbed with four nodes and three users: alice owns
// the approved project netsec (every right), bob is a researcher of
// another project, mallory belongs to none (powerless, unrelated).
type researchers struct {
	tb                  *testbed
	alice, bob, mallory *browser
}

func newResearchers(t *testing.T) *researchers {
	t.Helper()
	tb := newTestbed(t)
	if err := dataset.Nodes(context.Background(), tb.srv.Store, 4, 1); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"alice", "bob", "mallory"} {
		tb.newUser(uid)
	}
	rs := &researchers{tb: tb, alice: tb.browser(), bob: tb.browser(), mallory: tb.browser()}
	rs.alice.signIn("alice", userPassword)
	rs.bob.signIn("bob", userPassword)
	rs.mallory.signIn("mallory", userPassword)
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	for _, p := range []struct {
		b    *browser
		name string
	}{{rs.alice, "netsec"}, {rs.bob, "robotics"}} {
		p.b.get("/projects/new")
		seeOther(t, "request "+p.name, p.b.post("/projects/new", url.Values{"name": {p.name}, "description": {"research"}}), "/projects/"+p.name)
		admin.get("/admin/approvals")
		seeOther(t, "approve "+p.name, admin.post("/admin/approvals/"+p.name+"/approve", nil), "/admin/approvals")
	}
	return rs
}

// newExperiment creates id from the ping layout through the form.
func (rs *researchers) newExperiment(t *testing.T, b *browser, id string) {
	t.Helper()
	b.get("/experiments/new")
	seeOther(t, "create "+id, b.postMultipart("/experiments/new", url.Values{"id": {id}}, "layout_file", "ping.yaml", pingLayout), "/experiments/"+id)
}

func TestTestbedPagesAnonymous(t *testing.T) {
	tb := newTestbed(t)
	b := tb.browser()
	for _, path := range []string{"/experiments", "/experiments/new", "/experiments/alice:ping", "/libraries", "/libraries/alice:classics",
		"/circles", "/circles/alice:friends", "/resources", "/resources/node00000", "/realizations", "/realizations/r-abc"} {
		a := b.get(path)
		if a.status != http.StatusSeeOther || a.location() != "/signin?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: %d %q, want 303 to sign in", path, a.status, a.location())
		}
	}
	b.get("/signin")
	for _, path := range []string{"/experiments/new", "/experiments/alice:ping/realize", "/libraries", "/circles", "/realizations/r-abc/release"} {
		want(t, "anonymous post "+path, b.post(path, url.Values{}), http.StatusUnauthorized, "Your session has ended")
	}
}

var regexpRealization = regexp.MustCompile(`^/realizations/(r-[a-z2-7]+)\?done=realized$`)

// An experiment from a layout file: its picture, aspects, access; realized
// under a project, renewed and released. Bad values come back on the form
// in the service's words; strangers are refused by the service.
func TestExperimentPages(t *testing.T) {
	rs := newResearchers(t)
	alice, bob, mallory := rs.alice, rs.bob, rs.mallory

	want(t, "no experiments", alice.get("/experiments"), http.StatusOK, `id="no-experiments"`, `href="/experiments/new"`, `aria-current="page">Mine`)
	want(t, "new experiment", alice.get("/experiments/new"), http.StatusOK, `id="new-experiment"`, `enctype="multipart/form-data"`, `value="alice:"`, `<option value="netsec:">`, `<label for="f-layout-file">`)

	// A bad layout, pasted: the form again, the text kept, the service's
	// words (with the line) next to the field.
	bad := "nodes:\n  - name: Client\n  - name: b\n    colour: red\n"
	a := alice.postMultipart("/experiments/new", url.Values{"id": {"alice:ping"}, "description": {"ping test"}, "layout": {bad}}, "", "", "")
	want(t, "bad layout", a, http.StatusBadRequest, `id="e-layout"`, "line 2: node name", "line 4: unknown field", `value="alice:ping"`, `value="ping test"`, "name: Client")
	// A bad name, with a file: the file's text comes back in the text area.
	a = alice.postMultipart("/experiments/new", url.Values{"id": {"alice:Ping Test"}}, "layout_file", "ping.yaml", pingLayout)
	want(t, "bad name", a, http.StatusBadRequest, `id="e-id"`, "name is 1 to 64 characters", "you sent ping.yaml", "name: client")
	// Another's namespace: refused by the service, said on the form.
	a = alice.postMultipart("/experiments/new", url.Values{"id": {"bob:ping"}}, "layout_file", "ping.yaml", pingLayout)
	want(t, "another's namespace", a, http.StatusForbidden, `id="form-error"`, `value="bob:ping"`)

	// The file, uploaded.
	loc := seeOther(t, "create", alice.postMultipart("/experiments/new", url.Values{"id": {"alice:ping"}, "description": {"ping test"}}, "layout_file", "ping.yaml", pingLayout), "/experiments/alice:ping?done=created")
	a = alice.get(loc)
	want(t, "experiment page", a, http.StatusOK, `id="notice"`, `<svg`, `Topology: 2 nodes, 1 link`, `<title>client</title>`, `id="aspects"`, "layout", "2 nodes, 1 link",
		`id="realize"`, `<option value="netsec">`, `name="project" value="netsec"`, `id="change-access"`, `id="no-grants"`, "2 read-only views")
	if n := strings.Count(a.body, `<g class="node">`); n != 2 {
		t.Errorf("%d nodes drawn, want 2", n)
	}
	want(t, "mine", alice.get("/experiments"), http.StatusOK, `id="experiments"`, `<a href="/experiments/alice:ping">alice:ping</a>`, "ping test")
	want(t, "shared with alice", alice.get("/experiments?view=shared"), http.StatusOK, `id="no-experiments"`)

	// Strangers: not found, as the service says; a stranger's realize is
	// refused and changes nothing.
	want(t, "stranger's view", mallory.get("/experiments/alice:ping"), http.StatusNotFound, "Not found")
	want(t, "bob's view", bob.get("/experiments/alice:ping"), http.StatusNotFound, "Not found")
	bob.get("/experiments")
	if a := bob.post("/experiments/alice:ping/realize", url.Values{"project": {"robotics"}}); a.status != http.StatusNotFound && a.status != http.StatusForbidden {
		t.Fatalf("stranger realizes: %d\n%s", a.status, a.body)
	}

	// Share it with bob's circle: bob reads it (shared with him), may not
	// realize or share it further.
	alice.get("/experiments/alice:ping")
	a = alice.post("/experiments/alice:ping/access", url.Values{"circle": {"nosuch:nosuch"}, "rights": {"read"}})
	want(t, "unknown circle", a, http.StatusNotFound, `id="e-circle"`, `value="nosuch:nosuch"`)
	alice.get("/experiments/alice:ping")
	a = alice.post("/experiments/alice:ping/access", url.Values{"circle": {"bob"}, "rights": {"read"}})
	want(t, "bad circle", a, http.StatusBadRequest, `id="e-circle"`, `value="bob"`)
	seeOther(t, "share", alice.post("/experiments/alice:ping/access", url.Values{"circle": {"bob:bob"}, "rights": {"read"}}), "/experiments/alice:ping?done=shared")
	want(t, "grants", alice.get("/experiments/alice:ping"), http.StatusOK, `id="grants"`, `<a href="/circles/bob:bob">bob:bob</a>`, "<td>read</td>")
	want(t, "shared with bob", bob.get("/experiments?view=shared"), http.StatusOK, `<a href="/experiments/alice:ping">alice:ping</a>`)
	a = bob.get("/experiments/alice:ping")
	want(t, "bob reads", a, http.StatusOK, `<svg`)
	if strings.Contains(a.body, `id="change-access"`) || strings.Contains(a.body, `id="realize"`) {
		t.Error("a reader is offered to share or realize")
	}

	// Realize: a bad lease, a project she does not belong to, then good.
	alice.get("/experiments/alice:ping")
	want(t, "bad lease", alice.post("/experiments/alice:ping/realize", url.Values{"project": {"netsec"}, "lease": {"soon"}}), http.StatusBadRequest, `id="e-lease"`, `value="soon"`)
	want(t, "too long", alice.post("/experiments/alice:ping/realize", url.Values{"project": {"netsec"}, "lease": {"30d"}}), http.StatusBadRequest, `id="e-lease"`, "at most")
	a = alice.post("/experiments/alice:ping/realize", url.Values{"project": {"robotics"}, "lease": {"2h"}})
	want(t, "another's project", a, http.StatusNotFound, `id="e-project"`, `id="realize"`)
	loc = seeOther(t, "realize", alice.post("/experiments/alice:ping/realize", url.Values{"project": {"netsec"}, "lease": {"2h"}}), "/realizations/r-")
	m := regexpRealization.FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("realized at %q", loc)
	}
	rz := "/realizations/" + m[1]
	a = alice.get(loc)
	want(t, "realization", a, http.StatusOK, `id="notice"`, `id="realization-state">allocated`, `data-live="5"`, `id="bindings"`, "<td>client</td>", "<td>server</td>",
		`href="/resources/node0000`, `id="renew"`, `id="release"`, `<a href="/experiments/alice:ping">`)
	want(t, "realizations", alice.get("/realizations"), http.StatusOK, `id="realizations"`, `<a href="`+rz+`">`, "allocated")
	want(t, "stranger's realization", mallory.get(rz), http.StatusNotFound, "Not found")
	mallory.get("/realizations")
	if a := mallory.post(rz+"/release", nil); a.status != http.StatusNotFound && a.status != http.StatusForbidden {
		t.Fatalf("stranger releases: %d\n%s", a.status, a.body)
	}
	want(t, "mallory's realizations", mallory.get("/realizations"), http.StatusOK, `id="no-realizations"`)

	alice.get(rz)
	want(t, "bad renewal", alice.post(rz+"/renew", url.Values{"lease": {"1s"}}), http.StatusBadRequest, `id="e-lease"`, "at least one minute")
	seeOther(t, "renew", alice.post(rz+"/renew", url.Values{"lease": {"3h"}}), rz+"?done=renewed")
	seeOther(t, "release", alice.post(rz+"/release", nil), rz+"?done=released")
	a = alice.get(rz)
	want(t, "released", a, http.StatusOK, `id="realization-state">released`, `id="ended"`)
	if strings.Contains(a.body, "data-live") || strings.Contains(a.body, `id="release"`) {
		t.Error("a released realization is still live on its page")
	}
	want(t, "live list", alice.get("/realizations"), http.StatusOK, `id="no-realizations"`)
	want(t, "ended list", alice.get("/realizations?ended=1"), http.StatusOK, `<a href="`+rz+`">`, "released")
}

func TestLibraryPages(t *testing.T) {
	rs := newResearchers(t)
	alice, mallory := rs.alice, rs.mallory
	rs.newExperiment(t, alice, "alice:ping")

	// An experiment without a layout: nothing to draw or realize.
	alice.get("/experiments/new")
	seeOther(t, "no layout", alice.postMultipart("/experiments/new", url.Values{"id": {"alice:notes"}}, "", "", ""), "/experiments/alice:notes")
	a := alice.get("/experiments/alice:notes")
	want(t, "no layout", a, http.StatusOK, `id="no-layout"`, "Add a layout aspect to realize")
	if strings.Contains(a.body, "<svg") || strings.Contains(a.body, `id="realize"`) {
		t.Error("an experiment without a layout is drawn or offered to realize")
	}

	want(t, "libraries", alice.get("/libraries"), http.StatusOK, `id="no-libraries"`, `id="new-library"`, `value="alice:"`)
	want(t, "bad name", alice.post("/libraries", url.Values{"id": {"alice:Old Classics"}, "description": {"the classics"}}), http.StatusBadRequest,
		`id="e-id"`, `value="alice:Old Classics"`, `value="the classics"`)
	loc := seeOther(t, "create", alice.post("/libraries", url.Values{"id": {"alice:classics"}, "description": {"the classics"}}), "/libraries/alice:classics?done=created")
	want(t, "library", alice.get(loc), http.StatusOK, `id="notice"`, `id="no-experiments"`, `id="add-experiment"`, "the classics")
	want(t, "unknown experiment", alice.post("/libraries/alice:classics/experiments", url.Values{"experiment": {"alice:nothing"}}), http.StatusNotFound, `id="e-experiment"`, `value="alice:nothing"`)
	seeOther(t, "add", alice.post("/libraries/alice:classics/experiments", url.Values{"experiment": {"alice:ping"}}), "/libraries/alice:classics?done=added")
	want(t, "with experiment", alice.get("/libraries/alice:classics"), http.StatusOK, `id="library-experiments"`, `<a href="/experiments/alice:ping">alice:ping</a>`, `action="/libraries/alice:classics/experiments/remove"`)
	want(t, "listed", alice.get("/libraries"), http.StatusOK, `id="libraries"`, `<a href="/libraries/alice:classics">alice:classics</a>`)

	want(t, "stranger", mallory.get("/libraries/alice:classics"), http.StatusNotFound, "Not found")
	mallory.get("/libraries")
	if a := mallory.post("/libraries/alice:classics/experiments/remove", url.Values{"experiment": {"alice:ping"}}); a.status != http.StatusNotFound && a.status != http.StatusForbidden {
		t.Fatalf("stranger removes: %d\n%s", a.status, a.body)
	}
	alice.get("/libraries/alice:classics")
	seeOther(t, "remove", alice.post("/libraries/alice:classics/experiments/remove", url.Values{"experiment": {"alice:ping"}}), "/libraries/alice:classics?done=removed")
	want(t, "emptied", alice.get("/libraries/alice:classics"), http.StatusOK, `id="no-experiments"`)
}

func TestCirclePages(t *testing.T) {
	rs := newResearchers(t)
	alice, bob, mallory := rs.alice, rs.bob, rs.mallory

	a := alice.get("/circles")
	want(t, "circles", a, http.StatusOK, `id="circles"`, `<a href="/circles/alice:alice">alice:alice</a> <span class="tag">automatic</span>`, `id="new-circle"`)
	want(t, "bad name", alice.post("/circles", url.Values{"id": {"alice:My Friends"}}), http.StatusBadRequest, `id="e-id"`, `value="alice:My Friends"`)
	loc := seeOther(t, "create", alice.post("/circles", url.Values{"id": {"alice:friends"}, "description": {"reading group"}}), "/circles/alice:friends?done=created")
	want(t, "circle", alice.get(loc), http.StatusOK, `id="notice"`, `id="members"`, "<td>alice", "reading group", `id="add-members"`)
	a = alice.post("/circles/alice:friends/members", url.Values{"uids": {"bob"}, "rights": {"realize_experiment"}})
	want(t, "add bob", a, http.StatusOK, `id="outcomes"`, "<strong>bob</strong>: asked; added once they accept")
	a = bob.get("/notifications")
	accept := regexpAccept.FindStringSubmatch(a.body)
	if accept == nil {
		t.Fatalf("no request for bob to accept:\n%s", a.body)
	}
	seeOther(t, "accept", bob.post(accept[1], nil), "/notifications")
	want(t, "bob a member", bob.get("/circles/alice:friends"), http.StatusOK, "<td>bob", "realize_experiment")
	if strings.Contains(bob.last, `id="add-members"`) {
		t.Error("bob, without add_user, is offered to add members")
	}
	want(t, "automatic circle", alice.get("/circles/alice:alice"), http.StatusOK, "follow its owner")

	a = mallory.get("/circles/alice:friends")
	if a.status != http.StatusNotFound && a.status != http.StatusForbidden {
		t.Fatalf("stranger's view: %d\n%s", a.status, a.body)
	}
	mallory.get("/circles")
	if a := mallory.post("/circles/alice:friends/members", url.Values{"uids": {"mallory"}}); a.status != http.StatusNotFound && a.status != http.StatusForbidden {
		t.Fatalf("stranger adds: %d\n%s", a.status, a.body)
	}
}

func TestResourcePages(t *testing.T) {
	rs := newResearchers(t)
	alice, mallory := rs.alice, rs.mallory
	a := alice.get("/resources")
	want(t, "resources", a, http.StatusOK, `id="filter"`, `id="resources"`, `<a href="/resources/node00000">node00000</a>`, "free")
	if n := strings.Count(a.body, `<a href="/resources/node`); n != 4 {
		t.Errorf("%d resources listed, want 4", n)
	}
	a = alice.get("/resources?filter=" + url.QueryEscape("cores>=64 arch=arm64 memory_gb>=100000"))
	want(t, "filtered", a, http.StatusOK, `id="no-resources"`, `value="cores&gt;=64 arch=arm64 memory_gb&gt;=100000"`)
	want(t, "by kind", alice.get("/resources?kind=image"), http.StatusOK, `id="no-resources"`, "<option selected>image</option>")
	want(t, "bad filter", alice.get("/resources?filter="+url.QueryEscape("cores>>8")), http.StatusBadRequest, `id="e-filter"`, `value="cores&gt;&gt;8"`)
	want(t, "resource", alice.get("/resources/node00001"), http.StatusOK, `id="resource"`, `id="attributes"`, "<td>cores</td>", "no realization: free")
	want(t, "unknown", alice.get("/resources/nothing"), http.StatusNotFound, "Not found")
	// A user of no approved project may not see the inventory.
	want(t, "powerless", mallory.get("/resources"), http.StatusForbidden, "Not allowed")
	want(t, "powerless resource", mallory.get("/resources/node00000"), http.StatusForbidden, "Not allowed")
}

// Every list pages: 20 a page, the next page from the link.
func TestTestbedListsPage(t *testing.T) {
	rs := newResearchers(t)
	alice := rs.alice
	for i := range 21 {
		alice.get("/circles")
		seeOther(t, "create", alice.post("/circles", url.Values{"id": {"alice:c" + string(rune('a'+i))}}), "/circles/")
	}
	a := alice.get("/circles")
	next := regexp.MustCompile(`href="(/circles\?after=[^"]+)" rel="next"`).FindStringSubmatch(a.body)
	if next == nil {
		t.Fatalf("no next page:\n%s", a.body)
	}
	want(t, "second page", alice.get(strings.ReplaceAll(next[1], "&amp;", "&")), http.StatusOK, `href="/circles">First page`)
}
