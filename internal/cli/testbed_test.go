package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

const pingLayout = "nodes:\n  - name: a\n    constraints: {cores: \">=4\"}\n  - name: b\nlinks:\n  - [a, b]\n"

// writeTemp writes content to a new file and returns its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// leaseUntil is how the client prints the lease of a fake realization made
// with lease: in the reader's zone, so the tests do not depend on it.
func leaseUntil(lease time.Duration) string {
	return formatTime(fakeTime.AsTime().Add(lease))
}

// untilColumn pads s to the width of the LEASE UNTIL column, as wide as a
// printed time, plus the table's gap.
func untilColumn(s string) string {
	return fmt.Sprintf("%-*s", len(leaseUntil(0))+2, s)
}

// asAdmin is a test environment with the fake's admin, ops, logged in.
func asAdmin(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.login("ops", time.Hour)
	return e
}

func TestExperimentCreate(t *testing.T) {
	layout := writeTemp(t, "ping.yaml", pingLayout)
	tests := []struct {
		name        string
		args        []string
		stdin       string
		wantAspects []*trellisv1.AspectInput
		wantOut     string
	}{
		{
			name:        "layout file",
			args:        []string{"experiment", "create", "alice:ping", "--layout", layout, "--description", "latency study"},
			wantAspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(pingLayout)}},
			wantOut:     "Created experiment alice:ping, with aspect layout/main (2 nodes).\n",
		},
		{
			name:        "layout on stdin",
			args:        []string{"experiment", "create", "alice:ping", "--layout", "-", "--description", "latency study"},
			stdin:       pingLayout,
			wantAspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(pingLayout)}},
			wantOut:     "Created experiment alice:ping, with aspect layout/main (2 nodes).\n",
		},
		{
			name:    "no layout",
			args:    []string{"experiment", "create", "alice:ping", "--description", "latency study"},
			wantOut: "Created experiment alice:ping.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run(tt.stdin, tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Fatalf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			got := lastRequest[*trellisv1.CreateExperimentRequest](t, e, trellisv1connect.ExperimentsCreateExperimentProcedure)
			want := &trellisv1.CreateExperimentRequest{Id: "alice:ping", Description: "latency study", Aspects: tt.wantAspects}
			if !proto.Equal(got, want) {
				t.Errorf("request %v, want %v", got, want)
			}
		})
	}

	// A layout that cannot be read is reported before anything is sent.
	e := loggedIn(t)
	r := e.run("", "experiment", "create", "alice:ping", "--layout", filepath.Join(t.TempDir(), "nosuch.yaml"))
	if r.code != 1 || !strings.Contains(r.err, "nosuch.yaml: no such file or directory") {
		t.Errorf("missing layout: %+v", r)
	}
	if n := e.srv.social.count(trellisv1connect.ExperimentsCreateExperimentProcedure); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestAspectCommands(t *testing.T) {
	content := writeTemp(t, "run.sh", "ping -c 5 b\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
		// Calls expected, in order of procedures, with their counts.
		wantGets, wantChanges int
		check                 func(t *testing.T, e *env)
	}{
		{
			name:        "set reads the revision then sends it",
			args:        []string{"experiment", "aspect", "set", "alice:ping", "layout", "main", content},
			wantOut:     "Changed aspect layout main of alice:ping: revision 4, 2 nodes, 1 link.\n",
			wantGets:    1,
			wantChanges: 1,
			check: func(t *testing.T, e *env) {
				got := lastRequest[*trellisv1.ChangeAspectsRequest](t, e, trellisv1connect.ExperimentsChangeAspectsProcedure)
				want := &trellisv1.ChangeAspectsRequest{Id: "alice:ping", Changes: []*trellisv1.AspectChange{
					{Type: "layout", Name: "main", Revision: 3, Content: []byte("ping -c 5 b\n")}}}
				if !proto.Equal(got, want) {
					t.Errorf("change %v, want %v", got, want)
				}
				get := lastRequest[*trellisv1.GetExperimentRequest](t, e, trellisv1connect.ExperimentsGetExperimentProcedure)
				if get.GetId() != "alice:ping" || get.GetIncludeContent() {
					t.Errorf("get %v: the revision needs no content", get)
				}
			},
		},
		{
			name:        "stale revision shows the server's refusal",
			args:        []string{"experiment", "aspect", "set", "alice:ping", "layout", "main", content, "--revision", "2"},
			wantCode:    1,
			wantErr:     "error: aspect layout main changed since revision 2 (it is at 3): read it again\n",
			wantChanges: 1,
		},
		{
			name:     "set of a missing aspect",
			args:     []string{"experiment", "aspect", "set", "alice:ping", "data", "traces", content},
			wantCode: 1,
			wantErr:  "error: experiment alice:ping has no aspect data traces: add it with 'trellis experiment aspect add'\n",
			wantGets: 1,
		},
		{
			name:    "add",
			args:    []string{"experiment", "aspect", "add", "alice:ping", "procedure", "setup", content},
			wantOut: "Added aspect procedure setup of alice:ping: revision 1, 12 bytes.\n",
			check: func(t *testing.T, e *env) {
				got := lastRequest[*trellisv1.AddAspectsRequest](t, e, trellisv1connect.ExperimentsAddAspectsProcedure)
				want := &trellisv1.AddAspectsRequest{Id: "alice:ping", Aspects: []*trellisv1.AspectInput{
					{Type: "procedure", Name: "setup", Content: []byte("ping -c 5 b\n")}}}
				if !proto.Equal(got, want) {
					t.Errorf("add %v, want %v", got, want)
				}
			},
		},
		{
			name:     "add an existing aspect",
			args:     []string{"experiment", "aspect", "add", "alice:ping", "procedure", "run", content},
			wantCode: 1,
			wantErr:  "error: aspect procedure run already exists\n",
		},
		{
			name:    "rm",
			args:    []string{"experiment", "aspect", "rm", "alice:ping", "procedure", "run"},
			wantOut: "Removed aspect procedure run of alice:ping.\n",
			check: func(t *testing.T, e *env) {
				got := lastRequest[*trellisv1.RemoveAspectsRequest](t, e, trellisv1connect.ExperimentsRemoveAspectsProcedure)
				want := &trellisv1.RemoveAspectsRequest{Id: "alice:ping", Aspects: []*trellisv1.AspectRef{{Type: "procedure", Name: "run"}}}
				if !proto.Equal(got, want) {
					t.Errorf("rm %v, want %v", got, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if n := e.srv.social.count(trellisv1connect.ExperimentsGetExperimentProcedure); n != tt.wantGets {
				t.Errorf("%d GetExperiment calls, want %d", n, tt.wantGets)
			}
			if n := e.srv.social.count(trellisv1connect.ExperimentsChangeAspectsProcedure); n != tt.wantChanges {
				t.Errorf("%d ChangeAspects calls, want %d", n, tt.wantChanges)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}

	// Two edits in a row, each based on the revision it read.
	e := loggedIn(t)
	for range 2 {
		if r := e.run("", "experiment", "aspect", "set", "alice:ping", "procedure", "run", content); r.code != 0 {
			t.Fatalf("set: %+v", r)
		}
	}
	if got := lastRequest[*trellisv1.ChangeAspectsRequest](t, e, trellisv1connect.ExperimentsChangeAspectsProcedure); got.GetChanges()[0].GetRevision() != 2 {
		t.Errorf("second set based on revision %d, want 2", got.GetChanges()[0].GetRevision())
	}
}

// access sends the rights as a list, and "" sends none, which revokes.
func TestAccessCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		proc       string
		wantRights []string
		wantOut    string
	}{
		{"experiment grant", []string{"experiment", "access", "alice:ping", "bob:friends", "read,realize"},
			trellisv1connect.ExperimentsChangeAccessProcedure, []string{"read", "realize"},
			"Rights of circle bob:friends on experiment alice:ping: read,realize.\n\nCIRCLE       RIGHTS\nlab:lab      read\nbob:friends  read,realize\n"},
		{"experiment revoke", []string{"experiment", "access", "alice:ping", "lab:lab", ""},
			trellisv1connect.ExperimentsChangeAccessProcedure, nil,
			"Circle lab:lab has no access to experiment alice:ping.\n\nShared with no circle.\n"},
		{"experiment blanks", []string{"experiment", "access", "alice:ping", "lab:lab", " read , modify ,"},
			trellisv1connect.ExperimentsChangeAccessProcedure, []string{"read", "modify"},
			"Rights of circle lab:lab on experiment alice:ping: read,modify.\n\nCIRCLE   RIGHTS\nlab:lab  read,modify\n"},
		{"library grant", []string{"library", "access", "alice:classics", "lab:lab", "read,add_experiment"},
			trellisv1connect.LibrariesChangeAccessProcedure, []string{"read", "add_experiment"},
			"Rights of circle lab:lab on library alice:classics: read,add_experiment.\n\nCIRCLE   RIGHTS\nlab:lab  read,add_experiment\n"},
		{"library revoke", []string{"library", "access", "alice:classics", "lab:lab", ""},
			trellisv1connect.LibrariesChangeAccessProcedure, nil,
			"Circle lab:lab has no access to library alice:classics.\n\nShared with no circle.\n"},
		{"realization grant", []string{"realization", "access", "rz-1", "bob:friends", "read"},
			trellisv1connect.RealizationsChangeAccessProcedure, []string{"read"},
			"Rights of circle bob:friends on realization rz-1: read.\n\nCIRCLE       RIGHTS\nlab:lab      read\nbob:friends  read\n"},
		{"realization revoke", []string{"realization", "access", "rz-1", "bob:friends", ""},
			trellisv1connect.RealizationsChangeAccessProcedure, nil,
			"Circle bob:friends has no access to realization rz-1.\n\nCIRCLE   RIGHTS\nlab:lab  read\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			var rights []string
			switch m := e.srv.social.last(tt.proc).(type) {
			case *trellisv1.ExperimentsChangeAccessRequest:
				rights = m.GetRights()
				if m.GetId() != tt.args[2] || m.GetCircle() != tt.args[3] {
					t.Errorf("request %v", m)
				}
			case *trellisv1.LibrariesChangeAccessRequest:
				rights = m.GetRights()
				if m.GetId() != tt.args[2] || m.GetCircle() != tt.args[3] {
					t.Errorf("request %v", m)
				}
			case *trellisv1.RealizationsChangeAccessRequest:
				rights = m.GetRights()
				if m.GetId() != tt.args[2] || m.GetCircle() != tt.args[3] {
					t.Errorf("request %v", m)
				}
			default:
				t.Fatalf("no request: %T", m)
			}
			if len(rights) != len(tt.wantRights) || !slices.Equal(rights, tt.wantRights) {
				t.Errorf("rights sent %q, want %q", rights, tt.wantRights)
			}
		})
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	e := loggedIn(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "ping.json")

	r := e.run("", "experiment", "export", "alice:ping", "--file", file)
	if r.code != 0 || !strings.HasPrefix(r.out, "Exported experiment alice:ping to "+file+" (") {
		t.Fatalf("export --file: %+v", r)
	}
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// To standard output, in either format, the document itself.
	for _, args := range [][]string{
		{"experiment", "export", "alice:ping"},
		{"--output", "json", "experiment", "export", "alice:ping"},
	} {
		if r := e.run("", args...); r.code != 0 || r.out != string(saved) {
			t.Errorf("%q: code %d, out %q; want the file's %q", args, r.code, r.out, saved)
		}
	}
	if !strings.Contains(string(saved), `"id": "alice:ping"`) || !strings.HasSuffix(string(saved), "}\n") {
		t.Errorf("document %s", saved)
	}

	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantID  string
		wantOut string
	}{
		{"under another id", []string{"experiment", "import", file, "--id", "bob:ping"}, "", "bob:ping",
			"Imported experiment bob:ping, with aspect layout/main (2 nodes).\n"},
		{"under the document's id", []string{"experiment", "import", file}, "", "alice:ping",
			"Imported experiment alice:ping, with aspect layout/main (2 nodes).\n"},
		{"from stdin", []string{"experiment", "import", "-", "--id", "bob:copy"}, string(saved), "bob:copy",
			"Imported experiment bob:copy, with aspect layout/main (2 nodes).\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.stdin, tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Fatalf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			got := lastRequest[*trellisv1.ImportExperimentRequest](t, e, trellisv1connect.ExperimentsImportExperimentProcedure)
			if got.GetId() != tt.wantID || string(got.GetDocument()) != string(saved) {
				t.Errorf("import request id %q, document %q", got.GetId(), got.GetDocument())
			}
		})
	}

	// A document without an id needs --id; one that is not JSON is refused
	// before anything is sent, unless --id says where it goes (the server
	// then judges it).
	sent := e.srv.social.count(trellisv1connect.ExperimentsImportExperimentProcedure)
	noID := writeTemp(t, "noid.json", `{"format":"trellis.experiment/v1","aspects":[]}`)
	if r := e.run("", "experiment", "import", noID); r.code != 1 || !strings.Contains(r.err, "names no experiment id: give --id OWNER:NAME") {
		t.Errorf("no id: %+v", r)
	}
	junk := writeTemp(t, "junk.txt", "not json")
	if r := e.run("", "experiment", "import", junk); r.code != 1 || !strings.Contains(r.err, "junk.txt is not an exported experiment") {
		t.Errorf("junk: %+v", r)
	}
	if n := e.srv.social.count(trellisv1connect.ExperimentsImportExperimentProcedure); n != sent {
		t.Errorf("%d imports sent for refused documents", n-sent)
	}
	if r := e.run("", "experiment", "import", junk, "--id", "bob:junk"); r.code != 1 || r.err != "error: the request is not valid\n  document: not an exported experiment (document.format)\n" {
		t.Errorf("junk with --id: %+v", r)
	}
}

func TestResourceAddParsesAttributes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     *trellisv1.RegisterResourceRequest
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{
			name:    "node with attributes",
			args:    []string{"resource", "add", "n7", "--kind", "node", "--provider", "site1", "--attr", "cores=8", "--attr", "arch=x86_64", "--attr", "note=a=b"},
			want:    &trellisv1.RegisterResourceRequest{Name: "n7", Kind: "node", Provider: "site1", Attributes: map[string]string{"cores": "8", "arch": "x86_64", "note": "a=b"}},
			wantOut: "Registered node n7 at site1: arch=x86_64 cores=8 note=a=b.\n",
		},
		{
			name:    "kind defaults to node",
			args:    []string{"resource", "add", "n8", "--provider", "site1"},
			want:    &trellisv1.RegisterResourceRequest{Name: "n8", Kind: "node", Provider: "site1"},
			wantOut: "Registered node n8 at site1: -.\n",
		},
		{
			name:     "unknown kind is the server's to refuse",
			args:     []string{"resource", "add", "v1", "--kind", "vm", "--provider", "site1"},
			want:     &trellisv1.RegisterResourceRequest{Name: "v1", Kind: "vm", Provider: "site1"},
			wantCode: 1,
			wantErr:  "error: the request is not valid\n  kind: one of node, image, network, external (kind.unknown)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := asAdmin(t)
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			got := lastRequest[*trellisv1.RegisterResourceRequest](t, e, trellisv1connect.ResourcesRegisterResourceProcedure)
			if !proto.Equal(got, tt.want) {
				t.Errorf("request %v, want %v", got, tt.want)
			}
		})
	}

	// Malformed attributes are usage errors, found before any request.
	for _, attr := range []string{"cores", "=8"} {
		e := asAdmin(t)
		r := e.run("", "resource", "add", "n9", "--provider", "site1", "--attr", attr)
		if r.code != 1 || !strings.Contains(r.err, "want KEY=VALUE") || !strings.Contains(r.err, "--help' for usage") {
			t.Errorf("--attr %q: %+v", attr, r)
		}
		if n := e.srv.social.count(trellisv1connect.ResourcesRegisterResourceProcedure); n != 0 {
			t.Errorf("--attr %q: %d requests sent", attr, n)
		}
	}
	e := asAdmin(t)
	if r := e.run("", "resource", "add", "n9", "--provider", "s", "--attr", "cores=8", "--attr", "cores=16"); r.code != 1 || !strings.Contains(r.err, "cores given twice") {
		t.Errorf("duplicate attr: %+v", r)
	}
}

func TestResourceListPassesFilters(t *testing.T) {
	e := loggedIn(t)
	r := e.run("", "resource", "list", "cores>=8", "arch=x86_64", "--kind", "node", "--provider", "site1", "--state", "available", "--all")
	if r.code != 0 || r.err != "" {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	want := "NAME  KIND  PROVIDER  STATE      REALIZATION  ATTRIBUTES\n" +
		"n1    node  site1     available  rz-1         arch=x86_64 cores=8\n" +
		"n2    node  site1     available  -            arch=x86_64 cores=8\n" +
		"n3    node  site1     available  -            arch=x86_64 cores=8\n"
	if r.out != want {
		t.Errorf("out:\n%s\nwant:\n%s", r.out, want)
	}
	if n := e.srv.social.count(trellisv1connect.ResourcesListResourcesProcedure); n != 2 {
		t.Errorf("--all fetched %d pages, want 2", n)
	}
	got := lastRequest[*trellisv1.ListResourcesRequest](t, e, trellisv1connect.ResourcesListResourcesProcedure)
	if !slices.Equal(got.GetFilters(), []string{"cores>=8", "arch=x86_64"}) || got.GetKind() != "node" ||
		got.GetProvider() != "site1" || got.GetState() != "available" || got.GetPageToken() != "p2" {
		t.Errorf("list request %v", got)
	}

	// Without --all: one page and a hint; a bad filter is the server's.
	r = e.run("", "resource", "list")
	if r.code != 0 || !strings.Contains(r.err, "--page-token p2") || strings.Contains(r.out, "n3") {
		t.Errorf("one page: %+v", r)
	}
	if got := lastRequest[*trellisv1.ListResourcesRequest](t, e, trellisv1connect.ResourcesListResourcesProcedure); len(got.GetFilters()) != 0 {
		t.Errorf("filters sent without any given: %q", got.GetFilters())
	}
	r = e.run("", "resource", "list", "cores")
	if r.code != 1 || r.err != "error: the request is not valid\n  filters[0]: \"cores\" is not a constraint (constraint.format)\n" {
		t.Errorf("bad filter: %+v", r)
	}
}

func TestResourceCommands(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		want     string // in stdout, or in stderr on failure
	}{
		{[]string{"resource", "show", "n1"}, 0, "name:            n1\nkind:            node\nprovider:        site1\nstate:           available\nrealization:     rz-1\ncreated:         "},
		{[]string{"resource", "show", "n2"}, 0, "realization:     -\n"},
		{[]string{"resource", "show", "n1"}, 0, "attribute arch:  x86_64\nattribute cores: 8\n"},
		{[]string{"resource", "show", "nosuch"}, 1, "error: resource nosuch not found\n"},
		{[]string{"resource", "state", "n2", "maintenance"}, 0, "Resource n2 is maintenance.\n"},
		{[]string{"resource", "state", "n2", "asleep"}, 1, "state: one of available, maintenance, down (state.unknown)"},
		{[]string{"resource", "rm", "n2"}, 0, "Removed resource n2.\n"},
		{[]string{"resource", "rm", "n1"}, 1, "error: resource n1 is bound to realization rz-1\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := asAdmin(t)
			r := e.run("", tt.args...)
			got := r.out
			if tt.wantCode != 0 {
				got = r.err
			}
			if r.code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Errorf("code %d, out %q, err %q; want %d with %q", r.code, r.out, r.err, tt.wantCode, tt.want)
			}
		})
	}
}

func TestRealizePrintsIDFirst(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantLease time.Duration // 0: none sent
		wantUntil string
	}{
		{"lease", []string{"--lease", "2h"}, 2 * time.Hour, leaseUntil(2 * time.Hour)},
		{"lease in days", []string{"--lease", "2d"}, 48 * time.Hour, leaseUntil(48 * time.Hour)},
		{"server's default", nil, 0, leaseUntil(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", append([]string{"realize", "alice:ping", "--project", "lab"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("code %d, err %q", r.code, r.err)
			}
			lines := strings.Split(r.out, "\n")
			if lines[0] != "rz-1" {
				t.Errorf("first line %q, want the id alone", lines[0])
			}
			if want := "rz-1\nELEMENT  RESOURCE\na        n1\nb        n2\n"; r.out != want {
				t.Errorf("out %q, want %q", r.out, want)
			}
			if !strings.HasPrefix(r.err, "Realized alice:ping under project lab (allocated), lease until ") || !strings.HasSuffix(r.err, " lease until "+tt.wantUntil+".\n") {
				t.Errorf("stderr %q", r.err)
			}
			got := lastRequest[*trellisv1.RealizeRequest](t, e, trellisv1connect.RealizationsRealizeProcedure)
			if got.GetExperiment() != "alice:ping" || got.GetProject() != "lab" {
				t.Errorf("request %v", got)
			}
			if (got.GetLease() != nil) != (tt.wantLease != 0) || got.GetLease().AsDuration() != tt.wantLease {
				t.Errorf("lease sent %v, want %v", got.GetLease(), tt.wantLease)
			}
		})
	}

	e := loggedIn(t)
	if r := e.run("", "realize", "alice:ping"); r.code != 1 || !strings.Contains(r.err, `"project" not set`) {
		t.Errorf("without --project: %+v", r)
	}
	for _, lease := range []string{"soon", "0s", "-1h", "xd"} {
		if r := e.run("", "realize", "alice:ping", "--project", "lab", "--lease", lease); r.code != 1 || !strings.Contains(r.err, "--help' for usage") {
			t.Errorf("--lease %s: %+v", lease, r)
		}
	}
	if n := e.srv.social.count(trellisv1connect.RealizationsRealizeProcedure); n != 0 {
		t.Errorf("%d realizations requested by bad command lines", n)
	}
	if r := e.run("", "realize", "alice:empty", "--project", "lab"); r.code != 1 || r.out != "" || r.err != "error: experiment alice:empty has no layout to realize\n" {
		t.Errorf("no layout: %+v", r)
	}
}

func TestRealizationCommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
		check    func(t *testing.T, e *env)
	}{
		{
			name:    "bind",
			args:    []string{"realization", "bind", "rz-1", "b", "n3"},
			wantOut: "Bound b of realization rz-1 to n3.\n\nELEMENT  RESOURCE\na        n1\nb        n3\n",
			check: func(t *testing.T, e *env) {
				got := lastRequest[*trellisv1.ChangeBindingsRequest](t, e, trellisv1connect.RealizationsChangeBindingsProcedure)
				want := &trellisv1.ChangeBindingsRequest{Id: "rz-1", Bindings: []*trellisv1.Binding{{Element: "b", Resource: "n3"}}}
				if !proto.Equal(got, want) {
					t.Errorf("bind %v, want %v", got, want)
				}
			},
		},
		{
			name:     "bind a bound resource",
			args:     []string{"realization", "bind", "rz-1", "b", "n1"},
			wantCode: 1,
			wantErr:  "error: resource n1 is bound to another element\n",
		},
		{
			name:    "renew",
			args:    []string{"realization", "renew", "rz-1", "--lease", "3h"},
			wantOut: "Renewed realization rz-1: lease until " + leaseUntil(3*time.Hour) + ".\n",
			check: func(t *testing.T, e *env) {
				got := lastRequest[*trellisv1.RenewRequest](t, e, trellisv1connect.RealizationsRenewProcedure)
				if got.GetId() != "rz-1" || got.GetLease().AsDuration() != 3*time.Hour {
					t.Errorf("renew %v", got)
				}
			},
		},
		{
			name:    "release",
			args:    []string{"realization", "release", "rz-1"},
			wantOut: "Released realization rz-1 (released).\n",
		},
		{
			name:     "release twice",
			args:     []string{"realization", "release", "rz-gone"},
			wantCode: 1,
			wantErr:  "error: realization rz-gone is released already\n",
		},
		{
			name:     "show unknown",
			args:     []string{"realization", "show", "rz-9"},
			wantCode: 1,
			wantErr:  "error: realization rz-9 not found\n",
		},
		{
			name: "list",
			args: []string{"realization", "list", "--ended"},
			wantOut: "ID       EXPERIMENT  PROJECT  OWNER  STATE      " + untilColumn("LEASE UNTIL") + "RESOURCES\n" +
				"rz-1     alice:ping  lab      alice  allocated  " + untilColumn(leaseUntil(time.Hour)) + "n1,n2\n" +
				"rz-gone  alice:ping  lab      alice  released   " + untilColumn(leaseUntil(time.Hour)) + "n1,n2\n",
			check: func(t *testing.T, e *env) {
				if got := lastRequest[*trellisv1.ListRealizationsRequest](t, e, trellisv1connect.RealizationsListRealizationsProcedure); !got.GetIncludeEnded() {
					t.Errorf("list %v", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestAdminRealizations(t *testing.T) {
	e := asAdmin(t)
	r := e.run("", "admin", "realizations", "--ended", "--all")
	until := untilColumn(leaseUntil(time.Hour))
	want := "ID    EXPERIMENT  PROJECT  OWNER  STATE      " + untilColumn("LEASE UNTIL") + "RESOURCES\n" +
		"rz-0  alice:ping  lab      alice  allocated  " + until + "n1,n2\n" +
		"rz-1  alice:ping  lab      alice  allocated  " + until + "n1,n2\n" +
		"rz-2  alice:ping  lab      alice  allocated  " + until + "n1,n2\n"
	if r.code != 0 || r.out != want || r.err != "" {
		t.Errorf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, want)
	}
	if n := e.srv.social.count(trellisv1connect.RealizationsListAllRealizationsProcedure); n != 2 {
		t.Errorf("--all fetched %d pages, want 2", n)
	}
	list := lastRequest[*trellisv1.ListAllRealizationsRequest](t, e, trellisv1connect.RealizationsListAllRealizationsProcedure)
	if !list.GetIncludeEnded() || list.GetPageToken() != "p2" {
		t.Errorf("list request %v", list)
	}

	r = e.run("", "admin", "release", "rz-1", "--reason", "maintenance window")
	if r.code != 0 || r.out != "Released realization rz-1 (released).\n" {
		t.Errorf("release: %+v", r)
	}
	rel := lastRequest[*trellisv1.ForceReleaseRequest](t, e, trellisv1connect.RealizationsForceReleaseProcedure)
	if rel.GetId() != "rz-1" || rel.GetReason() != "maintenance window" {
		t.Errorf("release request %v", rel)
	}
	if r := e.run("", "admin", "release", "rz-gone"); r.code != 1 || r.err != "error: realization rz-gone is released already\n" {
		t.Errorf("release twice: %+v", r)
	}

	// Not an admin: the server's refusal is shown.
	e = loggedIn(t)
	if r := e.run("", "admin", "realizations"); r.code != 1 || r.err != "error: only admins list every realization\n" {
		t.Errorf("as alice: %+v", r)
	}
}

func TestExperimentAndLibraryText(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"experiment", "show", "alice:ping"}, []string{
			"id:          alice:ping\n", "owner:       alice\n", "description: latency study\n",
			"\nTYPE       NAME  REVISION  SIZE  SUMMARY          UPDATED\n",
			"layout     main  3         96    2 nodes, 1 link  ",
			"procedure  run   1         11    -                ",
			"\nCIRCLE   RIGHTS\nlab:lab  read,realize\n",
		}},
		{[]string{"experiment", "list", "--owner", "alice", "--text", "lat", "--all"}, []string{"ID        OWNER  CREATOR  CREATED", "alice:x0  alice  alice    ", "alice:x2"}},
		{[]string{"experiment", "rm", "alice:ping"}, []string{"Removed experiment alice:ping.\n"}},
		{[]string{"experiment", "profile", "alice:ping"}, []string{"URL        https://lab.example.org"}},
		{[]string{"experiment", "profile", "alice:ping", "set", "funding=NSF"}, []string{"funding: unchanged\n"}},
		{[]string{"experiment", "describe-profile"}, []string{"funding  Funding source"}},
		{[]string{"library", "create", "alice:classics", "--description", "the classics"}, []string{"Created library alice:classics.\n"}},
		{[]string{"library", "show", "alice:classics"}, []string{"id:          alice:classics\n", "experiments: alice:ping, bob:trace\n", "CIRCLE   RIGHTS\nlab:lab  read\n"}},
		{[]string{"library", "list", "--owner", "alice"}, []string{"ID              OWNER  CREATOR  CREATED", "alice:classics  alice  alice    ", "lab:shared      lab    lab      "}},
		{[]string{"library", "add", "alice:classics", "bob:trace", "carol:dns"}, []string{"Library alice:classics holds alice:ping, bob:trace, carol:dns.\n"}},
		{[]string{"library", "remove", "alice:classics", "alice:ping"}, []string{"Library alice:classics holds no experiment you may read.\n"}},
		{[]string{"library", "rm", "alice:classics"}, []string{"Removed library alice:classics.\n"}},
		{[]string{"library", "profile", "alice:classics", "set", "URL=https://x"}, []string{"URL: changed\n"}},
		{[]string{"realization", "show", "rz-1"}, []string{"id:          rz-1\n", "experiment:  alice:ping\n", "state:       allocated\n", "released:    -\n",
			"\nELEMENT  RESOURCE\na        n1\nb        n2\n", "\nCIRCLE   RIGHTS\nlab:lab  read\n"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("code %d, err %q", r.code, r.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
		})
	}

	e := loggedIn(t)
	e.run("", "experiment", "list", "--owner", "alice", "--text", "lat", "--all")
	lx := lastRequest[*trellisv1.ListExperimentsRequest](t, e, trellisv1connect.ExperimentsListExperimentsProcedure)
	if lx.GetOwner() != "alice" || lx.GetText() != "lat" || lx.GetPageToken() != "p2" {
		t.Errorf("list request %v", lx)
	}
	e.run("", "library", "add", "alice:classics", "bob:trace", "carol:dns")
	la := lastRequest[*trellisv1.AddExperimentsRequest](t, e, trellisv1connect.LibrariesAddExperimentsProcedure)
	if la.GetId() != "alice:classics" || !slices.Equal(la.GetExperiments(), []string{"bob:trace", "carol:dns"}) {
		t.Errorf("add request %v", la)
	}
	e.run("", "library", "create", "alice:classics", "--description", "the classics")
	lc := lastRequest[*trellisv1.CreateLibraryRequest](t, e, trellisv1connect.LibrariesCreateLibraryProcedure)
	if lc.GetId() != "alice:classics" || lc.GetDescription() != "the classics" {
		t.Errorf("create request %v", lc)
	}
}

// Server refusals are printed as the server says them, field violations
// included, with exit status 1.
func TestTestbedErrorsPrinted(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"experiment", "show", "nosuch:x"}, "error: experiment nosuch:x not found\n"},
		{[]string{"experiment", "create", "ping"}, "error: the request is not valid\n  id: experiment ids are OWNER:NAME (id.format)\n"},
		{[]string{"experiment", "export", "nosuch:x"}, "error: experiment nosuch:x not found\n"},
		{[]string{"library", "show", "nosuch:lib"}, "error: library nosuch:lib not found\n"},
		{[]string{"library", "add", "alice:classics", "nosuch:x"}, "error: experiment nosuch:x not found\n"},
		{[]string{"resource", "rm", "n1"}, "error: resource n1 is bound to realization rz-1\n"},
		{[]string{"realization", "release", "rz-gone"}, "error: realization rz-gone is released already\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != 1 || r.out != "" || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantErr)
			}
		})
	}
}

func TestTestbedJSONOutput(t *testing.T) {
	file := writeTemp(t, "ping.json", `{"format":"trellis.experiment/v1","id":"alice:ping","aspects":[]}`)
	layout := writeTemp(t, "ping.yaml", pingLayout)
	tests := []struct {
		args []string
		msg  proto.Message
		ok   func(proto.Message) bool
	}{
		{[]string{"experiment", "create", "alice:ping", "--layout", layout}, &trellisv1.CreateExperimentResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.CreateExperimentResponse).GetExperiment().GetAspects()[0].GetType() == "layout"
			}},
		{[]string{"experiment", "show", "alice:ping"}, &trellisv1.GetExperimentResponse{},
			func(m proto.Message) bool {
				return len(m.(*trellisv1.GetExperimentResponse).GetExperiment().GetAspects()) == 2
			}},
		{[]string{"experiment", "list", "--all"}, &trellisv1.ListExperimentsResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListExperimentsResponse).GetExperiments()) == 3 }},
		{[]string{"experiment", "import", file}, &trellisv1.ImportExperimentResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.ImportExperimentResponse).GetExperiment().GetId() == "alice:ping"
			}},
		{[]string{"experiment", "access", "alice:ping", "lab:lab", ""}, &trellisv1.ExperimentsChangeAccessResponse{},
			func(m proto.Message) bool {
				return len(m.(*trellisv1.ExperimentsChangeAccessResponse).GetGrants()) == 0
			}},
		{[]string{"experiment", "profile", "alice:ping"}, &trellisv1.GetExperimentProfileResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.GetExperimentProfileResponse).GetId() == "alice:ping" }},
		{[]string{"experiment", "aspect", "set", "alice:ping", "layout", "main", layout}, &trellisv1.ChangeAspectsResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.ChangeAspectsResponse).GetExperiment().GetAspects()[0].GetRevision() == 4
			}},
		{[]string{"library", "show", "alice:classics"}, &trellisv1.GetLibraryResponse{},
			func(m proto.Message) bool {
				return len(m.(*trellisv1.GetLibraryResponse).GetLibrary().GetExperiments()) == 2
			}},
		{[]string{"library", "list"}, &trellisv1.ListLibrariesResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListLibrariesResponse).GetLibraries()) == 2 }},
		{[]string{"resource", "list", "cores>=8", "--all"}, &trellisv1.ListResourcesResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListResourcesResponse).GetResources()) == 3 }},
		{[]string{"resource", "show", "n1"}, &trellisv1.GetResourceResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.GetResourceResponse).GetResource().GetRealization() == "rz-1"
			}},
		{[]string{"realize", "alice:ping", "--project", "lab"}, &trellisv1.RealizeResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.RealizeResponse).GetRealization().GetId() == "rz-1" }},
		{[]string{"realization", "show", "rz-1"}, &trellisv1.GetRealizationResponse{},
			func(m proto.Message) bool {
				return len(m.(*trellisv1.GetRealizationResponse).GetRealization().GetBindings()) == 2
			}},
		{[]string{"realization", "list"}, &trellisv1.ListRealizationsResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListRealizationsResponse).GetRealizations()) == 1 }},
		{[]string{"realization", "release", "rz-1"}, &trellisv1.ReleaseResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.ReleaseResponse).GetRealization().GetState() == "released"
			}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", append([]string{"--output", "json"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			if r.err != "" {
				t.Errorf("stderr %q: JSON output says nothing else", r.err)
			}
			if err := protojson.Unmarshal([]byte(r.out), tt.msg); err != nil {
				t.Fatalf("output is not the response in JSON: %v\n%s", err, r.out)
			}
			if !tt.ok(tt.msg) {
				t.Errorf("unexpected content: %s", r.out)
			}
		})
	}

	// The admin's listing is its own call's response.
	e := asAdmin(t)
	r := e.run("", "--output", "json", "admin", "realizations", "--all")
	var all trellisv1.ListAllRealizationsResponse
	if err := protojson.Unmarshal([]byte(r.out), &all); r.code != 0 || err != nil || len(all.GetRealizations()) != 3 {
		t.Errorf("admin realizations: %v %+v", err, r)
	}
}

func TestTestbedUsageErrors(t *testing.T) {
	tests := [][]string{
		{"experiment", "lsit"},
		{"experiment", "create"},
		{"experiment", "show"},
		{"experiment", "rm", "a:b", "c:d"},
		{"experiment", "export"},
		{"experiment", "import"},
		{"experiment", "aspect", "add", "alice:ping", "layout", "main"},
		{"experiment", "aspect", "set", "alice:ping", "layout"},
		{"experiment", "aspect", "rm", "alice:ping", "layout"},
		{"experiment", "aspect", "nosuch"},
		{"experiment", "aspect", "set", "alice:ping", "layout", "main", "f", "--revision", "x"},
		{"experiment", "access", "alice:ping", "lab:lab"},
		{"experiment", "profile", "alice:ping", "set"},
		{"library", "create"},
		{"library", "add", "alice:classics"},
		{"library", "remove", "alice:classics"},
		{"library", "access", "alice:classics", "lab:lab"},
		{"library", "list", "extra"},
		{"resource", "add"},
		{"resource", "show"},
		{"resource", "state", "n1"},
		{"resource", "rm"},
		{"realize"},
		{"realize", "alice:ping", "--project", "lab", "--lease", "forever"},
		{"realization", "show"},
		{"realization", "renew", "rz-1", "--lease", "1y"},
		{"realization", "bind", "rz-1", "a"},
		{"realization", "access", "rz-1", "lab:lab"},
		{"realization", "list", "extra"},
		{"admin", "realizations", "extra"},
		{"admin", "release"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", args...)
			if r.code != 1 || !strings.HasPrefix(r.err, "error: ") || !strings.Contains(r.err, "--help' for usage") {
				t.Errorf("code %d, stderr %q", r.code, r.err)
			}
		})
	}
}

// Every command the issue names exists.
func TestTestbedCommandTree(t *testing.T) {
	root := NewRoot(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	for _, path := range []string{
		"experiment create", "experiment show", "experiment rm", "experiment export", "experiment import",
		"experiment list", "experiment aspect add", "experiment aspect set", "experiment aspect rm",
		"experiment access", "experiment profile", "experiment describe-profile",
		"library create", "library show", "library rm", "library add", "library remove", "library access",
		"library list", "library profile", "library describe-profile",
		"resource add", "resource list", "resource show", "resource rm", "resource state",
		"realize",
		"realization show", "realization renew", "realization release", "realization list",
		"realization bind", "realization access",
		"admin realizations", "admin release",
	} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c.CommandPath() != "trellis "+path {
			t.Errorf("%s: found %q, %v", path, c.CommandPath(), err)
		}
	}
}

// Every new service call authenticates with the saved login.
func TestTestbedCallsNeedLogin(t *testing.T) {
	for _, args := range [][]string{
		{"experiment", "show", "alice:ping"},
		{"library", "list"},
		{"resource", "list"},
		{"realize", "alice:ping", "--project", "lab"},
		{"realization", "list"},
	} {
		e := newEnv(t)
		r := e.run("", args...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to ") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.err)
		}
	}
	e := loggedIn(t)
	for args, proc := range map[string]string{
		"experiment show alice:ping":     trellisv1connect.ExperimentsGetExperimentProcedure,
		"library show alice:classics":    trellisv1connect.LibrariesGetLibraryProcedure,
		"resource show n1":               trellisv1connect.ResourcesGetResourceProcedure,
		"realization show rz-1":          trellisv1connect.RealizationsGetRealizationProcedure,
		"realize alice:ping --project p": trellisv1connect.RealizationsRealizeProcedure,
	} {
		if r := e.run("", strings.Fields(args)...); r.code != 0 {
			t.Fatalf("%s: %+v", args, r)
		}
		if got := e.srv.header(proc); got != "Bearer acc-saved" {
			t.Errorf("%s: Authorization = %q", args, got)
		}
	}
}
