package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// TestPermissions: `trellis permissions KIND` lists what the server says
// exists, without a login; a bad kind is the server's field violation.
func TestPermissions(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	e := newEnv(t, srv) // nobody logged in
	for kind, want := range map[string][]string{
		"experiment":  {"read", "modify", "realize", "modify_access"},
		"library":     {"read", "add_experiment", "remove_experiment", "modify_access"},
		"project":     {"add_user", "remove_user", "create_circle", "create_experiment", "create_library", "realize_experiment"},
		"circle":      {"add_user", "remove_user", "realize_experiment"},
		"realization": {"read", "modify", "release", "modify_access"},
	} {
		r := e.run("", "permissions", kind)
		if r.code != 0 {
			t.Fatalf("permissions %s: %+v", kind, r)
		}
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "RIGHT") {
			t.Fatalf("permissions %s printed:\n%s", kind, r.out)
		}
		for i, w := range want {
			if f := strings.Fields(lines[i+1]); f[0] != w || len(f) < 2 {
				t.Errorf("permissions %s line %d = %q, want right %s with its description", kind, i+1, lines[i+1], w)
			}
		}
		j := e.run("", "--output", "json", "permissions", kind)
		var m trellisv1.GetValidPermissionsResponse
		if j.code != 0 || protojson.Unmarshal([]byte(j.out), &m) != nil || len(m.GetPermissions()) != len(want) || m.GetKind() != kind {
			t.Errorf("permissions %s json: %+v", kind, j)
		}
	}
	r := e.run("", "permissions", "spaceship")
	if r.code == 0 || !strings.Contains(r.err, "kind") || !strings.Contains(r.err, "experiment") {
		t.Errorf("permissions spaceship: %+v", r)
	}
	if r := e.run("", "experiment", "access", "--help"); !strings.Contains(r.out, "trellis permissions") {
		t.Errorf("experiment access --help does not point at permissions:\n%s", r.out)
	}
}

// TestOwnerCommands: `experiment owner` and `library owner` offer the
// object; the new owner takes it with `request accept`.
func TestOwnerCommands(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	srv.NewPowerfulUser(t, "bob", "bobs")
	newExperiment(t, srv, "lab:ping")
	must(srv.As(t, "alice").Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "lab:classics"})))(t)
	alice, bob := as(t, srv, "alice"), as(t, srv, "bob")
	for _, c := range []struct{ kind, id string }{{"experiment", "lab:ping"}, {"library", "lab:classics"}} {
		r := alice.run("", c.kind, "owner", c.id, "bob")
		if r.code != 0 || !strings.Contains(r.out, "Offered "+c.kind+" "+c.id+" to bob") {
			t.Fatalf("%s owner: %+v", c.kind, r)
		}
		j := alice.run("", "--output", "json", c.kind, "owner", c.id, "bob")
		if j.code == 0 || !strings.Contains(j.err, "already") {
			t.Errorf("a second offer: %+v", j)
		}
		reqID := strings.TrimSuffix(strings.Fields(r.out)[len(strings.Fields(r.out))-1], ".")
		if a := bob.run("", "request", "accept", reqID); a.code != 0 {
			t.Fatalf("bob accepting %s: %+v", reqID, a)
		}
	}
	if o := experiment(t, srv, "lab:ping").GetOwner(); o != "bob" {
		t.Errorf("lab:ping owner %q, want bob", o)
	}
	if l := must(srv.Admin(t).Libraries.GetLibrary(bg, req(&trellisv1.GetLibraryRequest{Id: "lab:classics"})))(t).GetLibrary(); l.GetOwner() != "bob" {
		t.Errorf("lab:classics owner %q, want bob", l.GetOwner())
	}
	// alice no longer owns them.
	if r := alice.run("", "experiment", "owner", "lab:ping", "alice"); r.code == 0 {
		t.Errorf("alice offering what is bob's now: %+v", r)
	}
}

// TestPing: `trellis ping` shows who the server says the credentials name,
// and fails without them.
func TestPing(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	alice := as(t, srv, "alice")
	r := alice.run("", "ping", "are you there")
	if r.code != 0 || !strings.Contains(r.out, `answered alice: "are you there"`) {
		t.Fatalf("ping: %+v", r)
	}
	j := alice.run("", "--output", "json", "ping")
	var m trellisv1.EchoResponse
	if j.code != 0 || protojson.Unmarshal([]byte(j.out), &m) != nil || m.GetUid() != "alice" || m.GetMessage() != "ping" {
		t.Errorf("ping json: %+v", j)
	}
	if r := newEnv(t, srv).run("", "ping"); r.code == 0 || !strings.Contains(r.err, "log") {
		t.Errorf("ping without a login: %+v", r)
	}
}

// TestLibraryListings: `library experiments` lists a library's experiments,
// `library list --text` filters by id, `notify list --until` bounds the time.
func TestLibraryListings(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	for _, id := range []string{"alice:b", "alice:a"} {
		newExperiment(t, srv, id)
	}
	for _, id := range []string{"alice:shelf", "alice:other"} {
		must(srv.As(t, "alice").Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: id})))(t)
	}
	must(srv.As(t, "alice").Libraries.AddExperiments(bg, req(&trellisv1.AddExperimentsRequest{Id: "alice:shelf", Experiments: []string{"alice:b", "alice:a"}})))(t)
	alice := as(t, srv, "alice")
	r := alice.run("", "library", "experiments", "alice:shelf", "--page-size", "1", "--all")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "alice:a ") || !strings.HasPrefix(lines[2], "alice:b ") {
		t.Errorf("library experiments: %+v", r)
	}
	r = alice.run("", "library", "list", "--text", "shelf")
	if r.code != 0 || !strings.Contains(r.out, "alice:shelf") || strings.Contains(r.out, "alice:other") {
		t.Errorf("library list --text: %+v", r)
	}
	// Everything alice was told came before now: --until an hour ago
	// shows none of it, --until in an hour all of it.
	if r := alice.run("", "notify", "list", "--until", "1h"); r.code != 0 || !strings.Contains(r.out, "No notifications.") {
		t.Errorf("notify list --until 1h: %+v", r)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r := alice.run("", "notify", "list", "--until", future); r.code != 0 || strings.Contains(r.out, "No notifications.") {
		t.Errorf("notify list --until %s: %+v", future, r)
	}
}
