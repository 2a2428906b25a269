package portal_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/transport/portal"
)

// An anonymous visitor of any page is sent to sign in, and comes back.
func TestAnonymousIsSentToSignIn(t *testing.T) {
	tb := newTestbed(t)
	b := tb.browser()
	for _, path := range []string{"/profile", "/projects", "/projects/new", "/projects/netsec", "/notifications", "/admin/approvals"} {
		a := b.get(path)
		if a.status != http.StatusSeeOther || a.location() != "/signin?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: %d %q, want 303 to sign in", path, a.status, a.location())
		}
	}
	if a := b.get("/"); a.status != http.StatusSeeOther || a.location() != "/signin" {
		t.Errorf("GET /: %d %q", a.status, a.location())
	}
	// A form posted without a session says so, and changes nothing.
	b.get("/signin")
	want(t, "anonymous post", b.post("/profile", url.Values{"title": {"Dr"}}), http.StatusUnauthorized, "Your session has ended")
}

func TestSignIn(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	b := tb.browser()
	a := b.get("/signin?next=/projects")
	want(t, "sign-in page", a, http.StatusOK, `<form method="post" action="/signin" id="signin">`, `<label for="f-uid">`, `<label for="f-password">`, `value="/projects"`)
	if csp := a.header.Get("Content-Security-Policy"); csp != portal.CSP || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	// A wrong password: the form again, the uid kept, the service's words.
	a = b.post("/signin", url.Values{"uid": {"alice"}, "password": {"wrong"}})
	want(t, "wrong password", a, http.StatusUnauthorized, `id="form-error"`, "invalid uid or password", `value="alice"`)
	a = b.post("/signin", url.Values{"uid": {"alice"}, "password": {userPassword}, "next": {"/projects"}})
	if a.status != http.StatusSeeOther || a.location() != "/projects" {
		t.Fatalf("sign in: %d %q\n%s", a.status, a.location(), a.body)
	}
	c := cookieNamed(a, "trellis_session")
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("session cookie %+v", c)
	}
	// Another site's page may not make the browser sign in (open redirect).
	b2 := tb.browser()
	b2.get("/signin")
	a = b2.post("/signin", url.Values{"uid": {"alice"}, "password": {userPassword}, "next": {"//evil.example.org/"}})
	if a.location() != "/" {
		t.Errorf("next //evil: redirected to %q", a.location())
	}
}

func cookieNamed(a answer, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestDashboard(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	b := tb.browser()
	b.signIn("alice", userPassword)
	a := b.get("/")
	want(t, "dashboard", a, http.StatusOK, "Welcome, alice", `id="no-projects"`, `href="/projects/new"`, `action="/signout"`)
	if strings.Contains(a.body, "/admin/approvals") {
		t.Error("a researcher's dashboard links the admin pages")
	}
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	want(t, "admin dashboard", admin.get("/"), http.StatusOK, `href="/admin/approvals"`)
}

func TestRegisterAndConfirm(t *testing.T) {
	tb := newTestbed(t)
	b := tb.browser()
	a := b.get("/register")
	// The form is drawn from the profile description: each attribute's
	// label, required or optional, its format, read-only uid left out.
	want(t, "register page", a, http.StatusOK, `id="register"`, `<label for="f-name">Full name`, `<label for="f-phone">`,
		"a telephone number: digits", `<label for="f-title">Title or position</label>`, "title · optional", `name="password"`)
	if strings.Contains(a.body, `name="uid" value="" readonly`) {
		t.Error("uid drawn read-only")
	}
	form := url.Values{"uid": {"carol"}, "email": {"carol@uni.example.edu"}, "password": {userPassword},
		"name": {"Carol Example"}, "phone": {"call me"}, "city": {"Oxford"}}
	a = b.post("/register", form)
	want(t, "bad phone", a, http.StatusBadRequest, `id="e-phone"`, "a telephone number: digits, spaces", `value="call me"`, `value="Oxford"`, `value="carol"`)
	if strings.Contains(a.body, userPassword) {
		t.Error("the password is echoed")
	}
	form.Set("phone", "+44 1865 270000")
	form.Del("csrf")
	a = b.post("/register", form)
	if a.status != http.StatusSeeOther || a.location() != "/register/sent" {
		t.Fatalf("register: %d %q\n%s", a.status, a.location(), a.body)
	}
	want(t, "check your mail", b.get("/register/sent"), http.StatusOK, "Check your mail")

	// The mailed token, pasted or from the link.
	tok := tb.mailedToken("carol@uni.example.edu")
	want(t, "confirm page", b.get("/confirm?token="+url.QueryEscape(tok)), http.StatusOK, `id="confirm"`, `value="`+tok+`"`)
	want(t, "bad token", b.post("/confirm", url.Values{"token": {"nonsense"}}), http.StatusBadRequest, `id="e-token"`, "not valid")
	b.get("/confirm")
	a = b.post("/confirm", url.Values{"token": {tok}})
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location(), "/signin?confirmed=1") {
		t.Fatalf("confirm: %d %q\n%s", a.status, a.location(), a.body)
	}
	want(t, "confirmed", b.get(a.location()), http.StatusOK, "Your e-mail address is confirmed")
	b.signIn("carol", userPassword)
}

func TestProfile(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	b := tb.browser()
	b.signIn("alice", userPassword)
	a := b.get("/profile")
	want(t, "profile", a, http.StatusOK, `id="profile"`, `name="uid" value="alice" readonly`, `value="Alice Example"`, "uid · read-only")
	// A bad value and a good one: each attribute's outcome as reported;
	// the bad value kept, its error beside it.
	form := url.Values{"name": {"Alice Liddell"}, "title": {"Dr"}, "URL": {"not a url"}, "phone": {"+1 310 555 0100"}, "email": {"alice@uni.example.edu"}}
	a = b.post("/profile", form)
	want(t, "save", a, http.StatusUnprocessableEntity, `id="outcome"`, `id="e-URL"`, "an http or https URL", `value="not a url"`,
		"<strong>title</strong>: saved", "<strong>name</strong>: saved", "<strong>phone</strong>: unchanged")
	want(t, "profile again", b.get("/profile"), http.StatusOK, `value="Dr"`, `value="Alice Liddell"`)
}

// The project journey through the pages: a powerless user asks, an
// admin approves, the user sees it; an unrelated user is refused by the
// service (the project is not found); a non-admin's approval is refused.
func TestProjects(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	tb.newUser("mallory")
	alice := tb.browser()
	alice.signIn("alice", userPassword)
	want(t, "new project", alice.get("/projects/new"), http.StatusOK, `id="new-project"`, `<label for="f-description">What the project is for`)
	a := alice.post("/projects/new", url.Values{"name": {"Net Sec"}, "description": {"network security research"}})
	want(t, "bad name", a, http.StatusBadRequest, `id="e-name"`, "is not valid", `value="Net Sec"`, "network security research</textarea>")
	a = alice.post("/projects/new", url.Values{"name": {"netsec"}, "description": {"network security research"}})
	if a.status != http.StatusSeeOther || a.location() != "/projects/netsec?done=requested" {
		t.Fatalf("request: %d %q\n%s", a.status, a.location(), a.body)
	}
	want(t, "pending project", alice.get(a.location()), http.StatusOK, `id="project-state">pending`, `id="pending-note"`, "project_approval")
	want(t, "projects list", alice.get("/projects"), http.StatusOK, `<a href="/projects/netsec">netsec</a>`, "pending")

	mallory := tb.browser()
	mallory.signIn("mallory", userPassword)
	want(t, "another's project", mallory.get("/projects/netsec"), http.StatusNotFound, "Not found")
	mallory.get("/admin/approvals")
	want(t, "non-admin approves", mallory.post("/admin/approvals/netsec/approve", nil), http.StatusForbidden, "Not allowed")

	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	want(t, "admin's urgent notification", admin.get("/notifications"), http.StatusOK, `id="urgent"`, "alice requests project netsec")
	want(t, "approvals", admin.get("/admin/approvals"), http.StatusOK, `id="approvals"`, `id="approve-netsec"`, "network security research")
	a = admin.post("/admin/approvals/netsec/approve", nil)
	if a.status != http.StatusSeeOther {
		t.Fatalf("approve: %d\n%s", a.status, a.body)
	}
	want(t, "approved", admin.get(a.location()), http.StatusOK, "Project approved", `id="none"`)

	a = alice.get("/projects/netsec")
	want(t, "approved project", a, http.StatusOK, `id="project-state">approved`, `id="members"`, `id="add-members"`, `id="my-rights">add_user, remove_user`)
	want(t, "dashboard", alice.get("/"), http.StatusOK, `id="my-projects"`, `<a href="/projects/netsec">netsec</a> <span class="tag">owner</span>`)
}

// A member added from the project page accepts from the notification.
func TestAddMemberAccepts(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	tb.newUser("bob")
	// An admin's project needs no approval; it goes to alice.
	alice := tb.browser()
	alice.signIn("alice", userPassword)
	alice.post("/projects/new", url.Values{"name": {"netsec"}, "description": {"network security research"}})
	admin := tb.browser()
	admin.signIn(adminUID, adminPassword)
	admin.get("/admin/approvals")
	admin.post("/admin/approvals/netsec/approve", nil)

	alice.get("/projects/netsec")
	a := alice.post("/projects/netsec/members", url.Values{"uids": {"nobody"}, "rights": {"realize_experiment"}})
	want(t, "unknown member", a, http.StatusUnprocessableEntity, `id="outcomes"`, "<strong>nobody</strong>: failed")
	a = alice.post("/projects/netsec/members", url.Values{"uids": {"bob"}, "rights": {"realize_experiment"}})
	want(t, "add bob", a, http.StatusOK, "<strong>bob</strong>: asked; added once they accept")

	bob := tb.browser()
	bob.signIn("bob", userPassword)
	a = bob.get("/notifications")
	want(t, "bob's notifications", a, http.StatusOK, `id="unread"`, "netsec", `>Accept</button>`)
	accept := regexpAccept.FindStringSubmatch(a.body)
	if accept == nil {
		t.Fatalf("no accept form:\n%s", a.body)
	}
	a = bob.post(accept[1], nil)
	if a.status != http.StatusSeeOther {
		t.Fatalf("accept: %d\n%s", a.status, a.body)
	}
	want(t, "accepted", bob.get(a.location()), http.StatusOK, "Request accepted", "request answered or expired")
	want(t, "bob's dashboard", bob.get("/"), http.StatusOK, `<a href="/projects/netsec">netsec</a>`, "realize_experiment")
	// Mark every notification read: the badge goes.
	for strings.Contains(bob.get("/notifications").body, "Mark read") {
		m := regexpID.FindStringSubmatch(bob.last)
		if a := bob.post("/notifications/read", url.Values{"id": {m[1]}}); a.status != http.StatusSeeOther {
			t.Fatalf("mark read: %d\n%s", a.status, a.body)
		}
	}
	if strings.Contains(bob.get("/").body, `id="unread"`) {
		t.Error("badge still shown")
	}
}

// Forms need the session's token; a form from another site is refused by
// the browser's own signals too; both say so plainly.
func TestCSRF(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	b := tb.browser()
	b.signIn("alice", userPassword)
	want(t, "no token", b.postRaw("/profile", url.Values{"title": {"Dr"}}, nil), http.StatusForbidden, "This form has expired")
	want(t, "wrong token", b.postRaw("/profile", url.Values{"title": {"Dr"}, "csrf": {"x" + b.csrf()}}, nil), http.StatusForbidden, "This form has expired")
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	want(t, "cross-site", b.postRaw("/profile", url.Values{"title": {"Dr"}, "csrf": {b.csrf()}}, cross), http.StatusForbidden, "another site")
	// A form drawn before signing out does not work after signing in again.
	b.get("/")
	old := b.csrf()
	if old == "" {
		t.Fatal("no form token on the dashboard")
	}
	if a := b.post("/signout", nil); a.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", a.status)
	}
	b.signIn("alice", userPassword)
	want(t, "stale token", b.postRaw("/profile", url.Values{"title": {"Dr"}, "csrf": {old}}, nil), http.StatusForbidden, "This form has expired")
}

// Signing out ends the session itself: the cookie's tokens, replayed,
// stand for nothing; an ended session gets a clear page.
func TestSignOut(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	b := tb.browser()
	b.signIn("alice", userPassword)
	u, _ := url.Parse(tb.url)
	saved := b.c.Jar.Cookies(u)
	a := b.post("/signout", nil)
	if a.status != http.StatusSeeOther || a.location() != "/signin?out=1" {
		t.Fatalf("sign out: %d %q", a.status, a.location())
	}
	want(t, "signed out", b.get("/signin?out=1"), http.StatusOK, "You are signed out")
	b.c.Jar.SetCookies(u, saved)
	want(t, "replayed cookie", b.get("/profile"), http.StatusUnauthorized, "Your session has ended", "Sign in again")
}

// An expired access token is refreshed from the cookie's refresh token;
// two requests racing with the same expired cookie both go on, and the
// session survives (a refresh token used twice would revoke it).
func TestRefresh(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	b := tb.browser()
	b.signIn("alice", userPassword)
	u, _ := url.Parse(tb.url)
	var sess *http.Cookie
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "trellis_session" {
			sess = c
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(sess.Value)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	st["e"] = 0 // the access token has expired, says the cookie
	raw, _ = json.Marshal(st)
	expired := &http.Cookie{Name: "trellis_session", Value: base64.RawURLEncoding.EncodeToString(raw)}
	for range 2 {
		b.c.Jar.SetCookies(u, []*http.Cookie{expired})
		a := b.get("/profile")
		want(t, "expired access token", a, http.StatusOK, `id="profile"`)
		if c := cookieNamed(a, "trellis_session"); c == nil || c.Value == expired.Value {
			t.Fatal("no fresh cookie after a refresh")
		}
	}
	want(t, "after refresh", b.get("/profile"), http.StatusOK, `id="profile"`)
}

func TestAssets(t *testing.T) {
	tb := newTestbed(t)
	b := tb.browser()
	page := b.get("/signin").body
	m := regexpAsset.FindAllStringSubmatch(page, -1)
	if len(m) != 3 {
		t.Fatalf("assets in page: %v", m)
	}
	for _, x := range m {
		req, _ := http.NewRequest(http.MethodGet, tb.url+x[1], nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d %v", x[1], resp.StatusCode, resp.Header)
		}
	}
	if a := b.get("/assets/portal.0000000000.css"); a.status != http.StatusNotFound {
		t.Errorf("unknown asset: %d", a.status)
	}
}
