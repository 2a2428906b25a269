package cli

import (
	"strings"
	"testing"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// The example export of docs/migrate.md, and its users' passwords.
const exampleExport = "../../testdata/migrate/users.jsonl"

var examplePasswords = map[string]string{
	"ada":      "analytical engine 1843",
	"babbage":  "difference engine 1822",
	"hopper":   "cobol compiler 1959",
	"hamilton": "lunar module 1969",
}

// TestAdminImportUsers imports the example export with the CLI; each
// migrated user then logs in with the CLI with the password of the old
// testbed, and again after the login replaced the legacy hash.
func TestAdminImportUsers(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	admin := as(t, srv, apptest.AdminUID)
	r := admin.run("", "admin", "import", "users", exampleExport)
	if r.code != 0 {
		t.Fatalf("import: code %d, stderr %q", r.code, r.err)
	}
	if !strings.Contains(r.out, "Imported 5 accounts.") || !strings.Contains(r.out, "hopper\tgrace@navy.example.mil") {
		t.Errorf("import output %q", r.out)
	}
	for uid, pw := range examplePasswords {
		for i := 0; i < 2; i++ { // the legacy hash, then its argon2id successor
			e := newEnv(t, srv)
			if r := e.run(pw+"\n", "login", uid, "--password-stdin"); r.code != 0 {
				t.Fatalf("login %d of %s: code %d, stderr %q", i+1, uid, r.code, r.err)
			}
		}
		if r := newEnv(t, srv).run("not "+pw+"\n", "login", uid, "--password-stdin"); r.code == 0 {
			t.Errorf("%s logged in with a wrong password", uid)
		}
	}
	// The profile came along, flat attributes and the profile object's.
	p := must(srv.Admin(t).Users.GetUserProfile(bg, req(&trellisv1.GetUserProfileRequest{Uid: "hopper"})))(t)
	got := map[string]string{}
	for _, a := range p.GetAttributes() {
		got[a.GetName()] = a.GetValue()
	}
	if got["name"] != "Grace Hopper" || got["state"] != "Virginia" {
		t.Errorf("hopper's profile %v", got)
	}
	u := must(srv.Admin(t).Users.GetUser(bg, req(&trellisv1.GetUserRequest{Uid: "turing"})))(t)
	if u.GetUser().GetState() != trellisv1.UserState_USER_STATE_DISABLED {
		t.Errorf("turing is %v", u.GetUser().GetState())
	}
	// Then the projects, with their members' rights.
	if r := admin.run("", "admin", "import", "projects", "../../testdata/migrate/projects.jsonl"); r.code != 0 || !strings.Contains(r.out, "Imported 2 projects: engines, apollo.") {
		t.Fatalf("import projects: %+v", r)
	}
	ms := must(srv.Admin(t).Projects.ListMembers(bg, req(&trellisv1.ListMembersRequest{Name: "engines"})))(t)
	rights := map[string]string{}
	for _, m := range ms.GetMembers() {
		rights[m.GetUid()] = strings.Join(m.GetRights(), ",")
	}
	if len(rights) != 3 || !strings.Contains(rights["ada"], "realize_experiment") || rights["hopper"] != "create_experiment" || !strings.Contains(rights["babbage"], "create_library") {
		t.Errorf("engines' members: %v", rights)
	}
	if r := admin.run(`{"name":"x","owner":"ada","membres":[]}`+"\n", "admin", "import", "projects", "-"); r.code != 1 || !strings.Contains(r.err, "-:1: not a project") {
		t.Errorf("bad project line: %+v", r)
	}
	// Importing again is refused whole, naming the first taken uid.
	if r := admin.run("", "admin", "import", "users", exampleExport); r.code != 1 || !strings.Contains(r.err, "users[0]") {
		t.Errorf("second import: %+v", r)
	}
	// A line that is not an account is named by file and line.
	if r := admin.run(`{"uid":"x","admin":"yes"}`+"\n", "admin", "import", "users", "-"); r.code != 1 || !strings.Contains(r.err, "-:1: admin: want true or false") {
		t.Errorf("bad line: %+v", r)
	}
	// An unknown hash format is refused naming the field, not showing it.
	line := `{"uid":"eve","email":"eve@example.org","name":"Eve","phone":"+1 555 0100","password_hash":"{SSHA}c2VjcmV0c2FsdA=="}`
	if r := admin.run(line+"\n", "admin", "import", "users", "-"); r.code != 1 || !strings.Contains(r.err, "users[0].password_hash") || strings.Contains(r.err, "c2VjcmV0") {
		t.Errorf("unknown format: %+v", r)
	}
}

// TestAccountLifecycleCommands: admin user create (active at once, no
// mail), a taken uid with a suggestion, user close, admin user remove.
func TestAccountLifecycleCommands(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	admin := as(t, srv, apptest.AdminUID)
	create := func(uid string) result {
		return admin.run(apptest.Password+"\n", "admin", "user", "create", "--uid", uid, "--email", uid+"@lab.example.org",
			"--name", "Carol Shaw", "--phone", "+1 555 0100", "--password-stdin")
	}
	if r := create("carol"); r.code != 0 || !strings.Contains(r.out, "carol") {
		t.Fatalf("create: %+v", r)
	}
	carol := as(t, srv, "carol") // active without any confirmation
	r := admin.run(apptest.Password+"\n", "admin", "user", "create", "--uid", "carol", "--email", "other@lab.example.org",
		"--name", "Carol Shaw", "--phone", "+1 555 0100", "--password-stdin")
	if r.code != 1 || !strings.Contains(r.err, `uid "cshaw" is free`) {
		t.Errorf("taken uid: %+v", r)
	}
	if r := carol.run("wrong password\n", "user", "close", "--password-stdin"); r.code != 1 || !strings.Contains(r.err, "password") {
		t.Errorf("close with a wrong password: %+v", r)
	}
	if r := carol.run(apptest.Password+"\n", "user", "close", "--password-stdin"); r.code != 0 || !strings.Contains(r.out, "Closed your account.") {
		t.Fatalf("close: %+v", r)
	}
	if r := carol.run("", "whoami"); r.code == 0 {
		t.Errorf("whoami after closing: %+v", r)
	}
	srv.NewUser(t, "dave")
	dave := as(t, srv, "dave")
	if r := admin.run("", "admin", "user", "remove", "dave"); r.code != 0 || !strings.Contains(r.out, "Removed dave.") {
		t.Fatalf("remove: %+v", r)
	}
	if r := dave.run("", "whoami"); r.code == 0 {
		t.Errorf("whoami after removal: %+v", r)
	}
	if r := admin.run("", "admin", "user", "remove", "dave"); r.code != 1 || !strings.Contains(r.err, "not found") {
		t.Errorf("second removal: %+v", r)
	}
}
