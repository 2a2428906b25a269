package cli

import (
	"strings"
	"testing"

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
