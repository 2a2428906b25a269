package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/store/pgtest"
)

// TestTestbedEndToEnd drives experiments, resources and realizations through
// the real CLI against the real server: an admin stocks the inventory, a
// researcher with an approved project describes an experiment, realizes it,
// inspects and releases the realization, and exports the experiment and
// imports it under another name.
// TestTestbedEndToEnd runs the flow on the embedded store and on
// PostgreSQL.
func TestTestbedEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testbedEndToEnd(t, []string{"--data-dir", t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) { testbedEndToEnd(t, []string{"--database", pgtest.NewDatabase(t)}) })
}

func testbedEndToEnd(t *testing.T, storeFlags []string) {
	base := &cli{t: t}
	base.ok("sesame for the testbed admin\n", append([]string{"admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin"}, storeFlags...)...)
	base.server = startServer(t, t.TempDir(), storeFlags...)
	admin := base.as("ops")
	admin.ok("sesame for the testbed admin\n", "login", "ops", "--password-stdin")

	admin.ok("", "admin", "provider", "add", "site1", "--url", "https://site1.example.org:7800")
	// The admin registers three nodes; one is too small for a node that
	// asks for four cores.
	for _, n := range []struct{ name, cores string }{{"n1", "8"}, {"n2", "8"}, {"n3", "2"}} {
		out := admin.ok("", "resource", "add", n.name, "--kind", "node", "--provider", "site1",
			"--attr", "cores="+n.cores, "--attr", "arch=x86_64")
		if !strings.Contains(out, n.name) {
			t.Fatalf("resource add %s said %q", n.name, out)
		}
	}

	// A researcher with an approved project.
	pat := base.as("pat")
	pat.ok("white rabbit passphrase\n", "user", "register", "--uid", "pat", "--email", "pat@uni.example.edu",
		"--name", "Pat", "--phone", "+1 310 555 0100", "--password-stdin")
	var ob struct{ Messages []struct{ Body string } }
	if err := json.Unmarshal([]byte(admin.ok("", "admin", "outbox", "--to", "pat@uni.example.edu", "--output", "json")), &ob); err != nil || len(ob.Messages) == 0 {
		t.Fatalf("outbox: %v", err)
	}
	m := mailToken.FindStringSubmatch(ob.Messages[0].Body)
	if m == nil {
		t.Fatalf("no token in mail: %s", ob.Messages[0].Body)
	}
	pat.ok("", "user", "confirm", m[1])
	pat.ok("white rabbit passphrase\n", "login", "pat", "--password-stdin")
	pat.ok("", "project", "request", "netsec", "--description", "network security research")
	admin.ok("", "project", "approve", "netsec")

	// An experiment whose layout has two nodes, one constrained.
	dir := t.TempDir()
	layout := filepath.Join(dir, "ping.yaml")
	if err := os.WriteFile(layout, []byte("nodes:\n  - name: a\n    constraints: {cores: \">=4\"}\n  - name: b\nlinks:\n  - [a, b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pat.ok("", "experiment", "create", "pat:ping", "--layout", layout, "--description", "latency study")
	if out := pat.ok("", "experiment", "show", "pat:ping"); !strings.Contains(out, "layout") || !strings.Contains(out, "main") {
		t.Fatalf("experiment show: %s", out)
	}

	// Realized under the project: the id comes first, alone.
	out := pat.ok("", "realize", "pat:ping", "--project", "netsec", "--lease", "2h")
	id, _, _ := strings.Cut(out, "\n")
	if id == "" || strings.ContainsAny(id, " \t") {
		t.Fatalf("realize printed %q: want the id on the first line", out)
	}

	// Two bindings; the constrained node is on a big node.
	var shown struct {
		Realization struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Bindings []struct{ Element, Resource string }
		}
	}
	if err := json.Unmarshal([]byte(pat.ok("", "realization", "show", id, "--output", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	bound := map[string]string{}
	for _, b := range shown.Realization.Bindings {
		bound[b.Element] = b.Resource
	}
	if shown.Realization.ID != id || len(bound) != 2 || (bound["a"] != "n1" && bound["a"] != "n2") || bound["b"] == "" || bound["a"] == bound["b"] {
		t.Fatalf("realization %s: %+v", id, shown.Realization)
	}
	if out := pat.ok("", "realization", "show", id); !strings.Contains(out, "ELEMENT") || !strings.Contains(out, bound["a"]) {
		t.Fatalf("realization show: %s", out)
	}

	// The inventory filtered by cores: the small node is left out.
	var listed struct{ Resources []struct{ Name string } }
	if err := json.Unmarshal([]byte(pat.ok("", "resource", "list", "cores>=4", "--output", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range listed.Resources {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"n1", "n2"}) {
		t.Fatalf("resource list cores>=4: %v", names)
	}

	// A bound resource cannot be removed; the admin sees the realization.
	if r := admin.run("", "resource", "rm", bound["a"]); r.code == 0 || !strings.HasPrefix(r.err, "error: ") {
		t.Fatalf("removing bound %s: exit %d %s", bound["a"], r.code, r.err)
	}
	if out := admin.ok("", "admin", "realizations"); !strings.Contains(out, id) {
		t.Fatalf("admin realizations: %s", out)
	}

	// Released once; a second release is refused.
	pat.ok("", "realization", "release", id)
	if r := pat.run("", "realization", "release", id); r.code == 0 || !strings.HasPrefix(r.err, "error: ") {
		t.Fatalf("second release: exit %d %s", r.code, r.err)
	}

	// Exported, and imported under another name.
	doc := filepath.Join(dir, "ping.json")
	pat.ok("", "experiment", "export", "pat:ping", "--file", doc)
	pat.ok("", "experiment", "import", doc, "--id", "pat:ping2")
	var imported struct {
		Experiment struct {
			ID          string `json:"id"`
			Description string
			Aspects     []struct{ Type, Name, DerivedFrom string }
		}
	}
	if err := json.Unmarshal([]byte(pat.ok("", "experiment", "show", "pat:ping2", "--output", "json")), &imported); err != nil {
		t.Fatal(err)
	}
	x := imported.Experiment
	// The layout, and its per-node views (derived, following it).
	if x.ID != "pat:ping2" || x.Description != "latency study" || len(x.Aspects) != 3 || x.Aspects[0].Type != "layout" || x.Aspects[0].Name != "main" || x.Aspects[1].DerivedFrom != "main" {
		t.Fatalf("imported: %+v", x)
	}

	// An aspect changed on the current revision; a change based on an old
	// one is refused with the server's word.
	if err := os.WriteFile(layout, []byte("nodes:\n  - name: a\n  - name: b\n  - name: c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := pat.ok("", "experiment", "aspect", "set", "pat:ping2", "layout", "main", layout); !strings.Contains(out, "revision 2") {
		t.Fatalf("aspect set: %s", out)
	}
	if r := pat.run("", "experiment", "aspect", "set", "pat:ping2", "layout", "main", layout, "--revision", "1"); r.code == 0 || !strings.Contains(r.err, "revision") {
		t.Fatalf("stale aspect set: exit %d %s", r.code, r.err)
	}

	// The freed resources realize the copy; an admin releases it with a
	// reason, which its owner is told.
	out = pat.ok("", "realize", "pat:ping2", "--project", "netsec")
	id2, _, _ := strings.Cut(out, "\n")
	if id2 == "" || id2 == id || strings.Count(out, "\n") != 5 {
		t.Fatalf("second realize printed %q", out)
	}
	admin.ok("", "admin", "release", id2, "--reason", "maintenance window")
	if out := pat.ok("", "notify", "list"); !strings.Contains(out, "maintenance window") {
		t.Fatalf("owner not told of the forced release: %s", out)
	}
}
