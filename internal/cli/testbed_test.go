package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
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

// testbed is a server where alice owns the approved project lab and the
// admin added the provider site1 and registered nodes n1..n<nodes> there
// (8 cores, x86_64).
func testbed(t *testing.T, nodes int) *apptest.Server {
	t.Helper()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.AddProvider(t, "site1")
	for i := 1; i <= nodes; i++ {
		srv.AddResource(t, "n"+itoa(int64(i)), "site1", map[string]string{"cores": "8", "arch": "x86_64"})
	}
	return srv
}

// newExperiment makes the experiment id, with the ping layout.
func newExperiment(t *testing.T, srv *apptest.Server, id string) {
	t.Helper()
	must(srv.As(t, "alice").Experiments.CreateExperiment(bg, req(&trellisv1.CreateExperimentRequest{
		Id: id, Description: "latency study", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(pingLayout)}},
	})))(t)
}

// experiment reads an experiment as the admin, with its aspects' content.
func experiment(t *testing.T, srv *apptest.Server, id string) *trellisv1.Experiment {
	t.Helper()
	return must(srv.Admin(t).Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: id, IncludeContent: true})))(t).GetExperiment()
}

// aspect finds an aspect of x, or nil.
func aspect(x *trellisv1.Experiment, typ, name string) *trellisv1.Aspect {
	for _, a := range x.GetAspects() {
		if a.GetType() == typ && a.GetName() == name {
			return a
		}
	}
	return nil
}

// realize realizes alice's experiment under lab and returns the
// realization.
func realize(t *testing.T, srv *apptest.Server, x string) *trellisv1.Realization {
	t.Helper()
	return must(srv.As(t, "alice").Realizations.Realize(bg, req(&trellisv1.RealizeRequest{Experiment: x, Project: "lab"})))(t).GetRealization()
}

// realization reads a realization as the admin.
func realization(t *testing.T, srv *apptest.Server, id string) *trellisv1.Realization {
	t.Helper()
	return must(srv.Admin(t).Realizations.GetRealization(bg, req(&trellisv1.GetRealizationRequest{Id: id})))(t).GetRealization()
}

func bindingsOf(rz *trellisv1.Realization) map[string]string {
	out := map[string]string{}
	for _, b := range rz.GetBindings() {
		out[b.GetElement()] = b.GetResource()
	}
	return out
}

func TestExperimentCreate(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	alice := as(t, srv, "alice")
	layout := writeTemp(t, "ping.yaml", pingLayout)
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantLayout bool
		wantOut    string
	}{
		{
			name:       "layout file",
			args:       []string{"experiment", "create", "alice:file", "--layout", layout, "--description", "latency study"},
			wantLayout: true,
			wantOut:    "Created experiment alice:file, with aspect layout/main (2 nodes, 1 link).\n",
		},
		{
			name:       "layout on stdin",
			args:       []string{"experiment", "create", "alice:stdin", "--layout", "-", "--description", "latency study"},
			stdin:      pingLayout,
			wantLayout: true,
			wantOut:    "Created experiment alice:stdin, with aspect layout/main (2 nodes, 1 link).\n",
		},
		{
			name:    "no layout",
			args:    []string{"experiment", "create", "alice:none", "--description", "latency study"},
			wantOut: "Created experiment alice:none.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := alice.run(tt.stdin, tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Fatalf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			x := experiment(t, srv, tt.args[2])
			if x.GetOwner() != "alice" || x.GetCreator() != "alice" || x.GetDescription() != "latency study" {
				t.Errorf("on the server: %v", x)
			}
			if a := aspect(x, "layout", "main"); tt.wantLayout != (a != nil) || (a != nil && string(a.GetContent()) != pingLayout) {
				t.Errorf("layout on the server: %v", a)
			}
		})
	}

	// A layout that cannot be read is reported before anything is sent.
	r := alice.run("", "experiment", "create", "alice:ping", "--layout", filepath.Join(t.TempDir(), "nosuch.yaml"))
	if r.code != 1 || !strings.Contains(r.err, "nosuch.yaml: no such file or directory") {
		t.Errorf("missing layout: %+v", r)
	}
	if _, err := alice.api().Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: "alice:ping"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("alice:ping after the refusal: %v", err)
	}
}

func TestAspectCommands(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	alice := as(t, srv, "alice")
	const script = "ping -c 5 b\n"
	content := writeTemp(t, "run.sh", script)
	// A second layout, for changes of the first.
	const triangle = "nodes:\n  - name: a\n  - name: b\n  - name: c\nlinks:\n  - [a, b]\n  - [b, c]\n"
	layout2 := writeTemp(t, "triangle.yaml", triangle)
	// Each case has an experiment of its own, with the ping layout at
	// revision 1 and the procedure run.
	tests := []struct {
		name     string
		args     []string
		setup    func(t *testing.T, x string)
		wantCode int
		wantOut  string
		wantErr  string
		check    func(t *testing.T, x *trellisv1.Experiment)
	}{
		{
			name:    "set reads the revision then sends it",
			args:    []string{"experiment", "aspect", "set", "X", "layout", "main", layout2},
			wantOut: "Changed aspect layout main of X: revision 2, 3 nodes, 2 links.\n",
			check: func(t *testing.T, x *trellisv1.Experiment) {
				if a := aspect(x, "layout", "main"); a.GetRevision() != 2 || string(a.GetContent()) != triangle {
					t.Errorf("layout on the server: %v", a)
				}
			},
		},
		{
			name: "stale revision shows the server's refusal",
			args: []string{"experiment", "aspect", "set", "X", "layout", "main", layout2, "--revision", "1"},
			setup: func(t *testing.T, x string) {
				must(alice.api().Experiments.ChangeAspects(bg, req(&trellisv1.ChangeAspectsRequest{Id: x, Changes: []*trellisv1.AspectChange{
					{Type: "layout", Name: "main", Revision: 1, Content: []byte(pingLayout)}}})))(t)
			},
			wantCode: 1,
			wantErr:  "error: aspect layout/main is at revision 2, not 1: reload and apply the change again\n",
			check: func(t *testing.T, x *trellisv1.Experiment) {
				if a := aspect(x, "layout", "main"); a.GetRevision() != 2 || string(a.GetContent()) != pingLayout {
					t.Errorf("layout on the server: %v", a)
				}
			},
		},
		{
			name:     "set of a missing aspect",
			args:     []string{"experiment", "aspect", "set", "X", "data", "traces", content},
			wantCode: 1,
			wantErr:  "error: experiment X has no aspect data traces: add it with 'trellis experiment aspect add'\n",
		},
		{
			name:    "add",
			args:    []string{"experiment", "aspect", "add", "X", "procedure", "setup", content},
			wantOut: "Added aspect procedure setup of X: revision 1, 12 bytes.\n",
			check: func(t *testing.T, x *trellisv1.Experiment) {
				if a := aspect(x, "procedure", "setup"); a.GetRevision() != 1 || string(a.GetContent()) != script {
					t.Errorf("procedure setup on the server: %v", a)
				}
			},
		},
		{
			name:     "add an existing aspect",
			args:     []string{"experiment", "aspect", "add", "X", "procedure", "run", content},
			wantCode: 1,
			wantErr:  "error: aspect procedure/run already exists\n",
		},
		{
			name:    "rm",
			args:    []string{"experiment", "aspect", "rm", "X", "procedure", "run"},
			wantOut: "Removed aspect procedure run of X.\n",
			check: func(t *testing.T, x *trellisv1.Experiment) {
				if a := aspect(x, "procedure", "run"); a != nil {
					t.Errorf("procedure run still on the server: %v", a)
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := "alice:x" + itoa(int64(i))
			newExperiment(t, srv, x)
			must(alice.api().Experiments.AddAspects(bg, req(&trellisv1.AddAspectsRequest{Id: x, Aspects: []*trellisv1.AspectInput{
				{Type: "procedure", Name: "run", Content: []byte("true\n")}}})))(t)
			if tt.setup != nil {
				tt.setup(t, x)
			}
			args := slices.Clone(tt.args)
			args[3] = x
			r := alice.run("", args...)
			wantOut, wantErr := strings.ReplaceAll(tt.wantOut, "X", x), strings.ReplaceAll(tt.wantErr, "X", x)
			if r.code != tt.wantCode || r.out != wantOut || r.err != wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, wantOut, wantErr)
			}
			if tt.check != nil {
				tt.check(t, experiment(t, srv, x))
			}
		})
	}

	// Two edits in a row, each based on the revision it read.
	newExperiment(t, srv, "alice:twice")
	must(alice.api().Experiments.AddAspects(bg, req(&trellisv1.AddAspectsRequest{Id: "alice:twice", Aspects: []*trellisv1.AspectInput{
		{Type: "procedure", Name: "run", Content: []byte("true\n")}}})))(t)
	for range 2 {
		if r := alice.run("", "experiment", "aspect", "set", "alice:twice", "procedure", "run", content); r.code != 0 {
			t.Fatalf("set: %+v", r)
		}
	}
	if a := aspect(experiment(t, srv, "alice:twice"), "procedure", "run"); a.GetRevision() != 3 {
		t.Errorf("after two sets, revision %d, want 3", a.GetRevision())
	}
}

// access sends the rights as a list, and "" sends none, which revokes; it
// prints the grants the server then holds.
func TestAccessCommands(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 2)
	newCircle(t, srv, "alice", "alice:friends")
	newExperiment(t, srv, "alice:ping")
	must(srv.As(t, "alice").Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "alice:classics"})))(t)
	rz := realize(t, srv, "alice:ping").GetId()
	alice := as(t, srv, "alice")
	grants := func(t *testing.T, kind, id string) []*trellisv1.Grant {
		switch kind {
		case "experiment":
			return experiment(t, srv, id).GetGrants()
		case "library":
			return must(alice.api().Libraries.GetLibrary(bg, req(&trellisv1.GetLibraryRequest{Id: id})))(t).GetLibrary().GetGrants()
		}
		return realization(t, srv, id).GetGrants()
	}

	// In order: each case starts from the grants the one before left.
	tests := []struct {
		name    string
		args    []string
		wantOut string
	}{
		{"experiment grant", []string{"experiment", "access", "alice:ping", "lab:lab", "read,realize"},
			"Rights of circle lab:lab on experiment alice:ping: read,realize.\n\nCIRCLE   RIGHTS\nlab:lab  read,realize\n"},
		{"experiment another", []string{"experiment", "access", "alice:ping", "alice:friends", "read"},
			"Rights of circle alice:friends on experiment alice:ping: read.\n\nCIRCLE         RIGHTS\nalice:friends  read\nlab:lab        read,realize\n"},
		{"experiment blanks", []string{"experiment", "access", "alice:ping", "lab:lab", " read , modify ,"},
			"Rights of circle lab:lab on experiment alice:ping: read,modify.\n\nCIRCLE         RIGHTS\nalice:friends  read\nlab:lab        read,modify\n"},
		{"experiment revoke", []string{"experiment", "access", "alice:ping", "lab:lab", ""},
			"Circle lab:lab has no access to experiment alice:ping.\n\nCIRCLE         RIGHTS\nalice:friends  read\n"},
		{"experiment revoke the last", []string{"experiment", "access", "alice:ping", "alice:friends", ""},
			"Circle alice:friends has no access to experiment alice:ping.\n\nShared with no circle.\n"},
		{"library grant", []string{"library", "access", "alice:classics", "lab:lab", "read,add_experiment"},
			"Rights of circle lab:lab on library alice:classics: read,add_experiment.\n\nCIRCLE   RIGHTS\nlab:lab  read,add_experiment\n"},
		{"library revoke", []string{"library", "access", "alice:classics", "lab:lab", ""},
			"Circle lab:lab has no access to library alice:classics.\n\nShared with no circle.\n"},
		{"realization grant", []string{"realization", "access", rz, "alice:friends", "read"},
			"Rights of circle alice:friends on realization " + rz + ": read.\n\nCIRCLE         RIGHTS\nalice:friends  read\n"},
		{"realization revoke", []string{"realization", "access", rz, "alice:friends", ""},
			"Circle alice:friends has no access to realization " + rz + ".\n\nShared with no circle.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.run("", tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			// The table is what the server holds.
			var rows []string
			for _, g := range grants(t, tt.args[0], tt.args[2]) {
				rows = append(rows, g.GetCircle()+" "+strings.Join(g.GetRights(), ","))
			}
			var printed []string
			if _, table, ok := strings.Cut(r.out, "CIRCLE"); ok {
				for _, l := range strings.Split(strings.TrimSpace(table), "\n")[1:] {
					printed = append(printed, strings.Join(strings.Fields(l), " "))
				}
			}
			slices.Sort(rows)
			if !slices.Equal(rows, printed) {
				t.Errorf("the server holds %q, the client printed %q", rows, printed)
			}
		})
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	newExperiment(t, srv, "alice:ping")
	alice := as(t, srv, "alice")
	must(alice.api().Experiments.AddAspects(bg, req(&trellisv1.AddAspectsRequest{Id: "alice:ping", Aspects: []*trellisv1.AspectInput{
		{Type: "procedure", Name: "run", Content: []byte("ping -c 5 b\n")}}})))(t)
	original := experiment(t, srv, "alice:ping")
	file := filepath.Join(t.TempDir(), "ping.json")

	r := alice.run("", "experiment", "export", "alice:ping", "--file", file)
	if r.code != 0 || !strings.HasPrefix(r.out, "Exported experiment alice:ping to "+file+" (") {
		t.Fatalf("export --file: %+v", r)
	}
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// To standard output, in either format, the document itself: the
	// server's.
	doc := must(alice.api().Experiments.ExportExperiment(bg, req(&trellisv1.ExportExperimentRequest{Id: "alice:ping"})))(t).GetDocument()
	if strings.TrimSuffix(string(saved), "\n") != strings.TrimSuffix(string(doc), "\n") {
		t.Errorf("saved %s\nthe server exports %s", saved, doc)
	}
	for _, args := range [][]string{
		{"experiment", "export", "alice:ping"},
		{"--output", "json", "experiment", "export", "alice:ping"},
	} {
		if r := alice.run("", args...); r.code != 0 || r.out != string(saved) {
			t.Errorf("%q: code %d, out %q; want the file's %q", args, r.code, r.out, saved)
		}
	}
	if !strings.Contains(string(saved), `"id": "alice:ping"`) || !strings.HasSuffix(string(saved), "}\n") {
		t.Errorf("document %s", saved)
	}

	// sameAspects checks that x holds what alice:ping held.
	sameAspects := func(t *testing.T, id string) {
		x := experiment(t, srv, id)
		if x.GetDescription() != original.GetDescription() || len(x.GetAspects()) != len(original.GetAspects()) {
			t.Fatalf("%s on the server: %v", id, x)
		}
		for _, a := range original.GetAspects() {
			if got := aspect(x, a.GetType(), a.GetName()); got == nil || string(got.GetContent()) != string(a.GetContent()) {
				t.Errorf("%s's aspect %s/%s: %v", id, a.GetType(), a.GetName(), got)
			}
		}
	}
	tests := []struct {
		name    string
		args    []string
		stdin   string
		setup   func(t *testing.T)
		wantID  string
		wantOut string
	}{
		{"under another id", []string{"experiment", "import", file, "--id", "alice:copy"}, "", nil, "alice:copy",
			"Imported experiment alice:copy, with aspects layout/main (2 nodes, 1 link), procedure/run (12 bytes).\n"},
		{"from stdin, under a project", []string{"experiment", "import", "-", "--id", "lab:copy"}, string(saved), nil, "lab:copy",
			"Imported experiment lab:copy, with aspects layout/main (2 nodes, 1 link), procedure/run (12 bytes).\n"},
		{"under the document's id", []string{"experiment", "import", file}, "", func(t *testing.T) {
			must(alice.api().Experiments.RemoveExperiment(bg, req(&trellisv1.RemoveExperimentRequest{Id: "alice:ping"})))(t)
		}, "alice:ping", "Imported experiment alice:ping, with aspects layout/main (2 nodes, 1 link), procedure/run (12 bytes).\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			r := alice.run(tt.stdin, tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Fatalf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantOut)
			}
			sameAspects(t, tt.wantID)
		})
	}

	// A document without an id needs --id; one that is not JSON is refused
	// before anything is sent, unless --id says where it goes (the server
	// then judges it).
	noID := writeTemp(t, "noid.json", `{"format":"trellis.experiment/v1","aspects":[]}`)
	if r := alice.run("", "experiment", "import", noID); r.code != 1 || !strings.Contains(r.err, "names no experiment id: give --id OWNER:NAME") {
		t.Errorf("no id: %+v", r)
	}
	junk := writeTemp(t, "junk.txt", "not json")
	if r := alice.run("", "experiment", "import", junk); r.code != 1 || !strings.Contains(r.err, "junk.txt is not an exported experiment") {
		t.Errorf("junk: %+v", r)
	}
	if r := alice.run("", "experiment", "import", junk, "--id", "alice:junk"); r.code != 1 ||
		r.err != "error: the request is not valid\n  document: not an exported experiment: invalid character 'o' in literal null (expecting 'u') (document.format)\n" {
		t.Errorf("junk with --id: %+v", r)
	}
	xs := must(alice.api().Experiments.ListExperiments(bg, req(&trellisv1.ListExperimentsRequest{})))(t).GetExperiments()
	var ids []string
	for _, x := range xs {
		ids = append(ids, x.GetId())
	}
	if want := []string{"alice:copy", "alice:ping", "lab:copy"}; !slices.Equal(ids, want) {
		t.Errorf("experiments on the server %q, want %q", ids, want)
	}
}

func TestResourceAddParsesAttributes(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	ops := as(t, srv, apptest.AdminUID)
	tests := []struct {
		name     string
		args     []string
		want     *trellisv1.Resource // on the server; nil: none
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{
			name:    "node with attributes",
			args:    []string{"resource", "add", "n7", "--kind", "node", "--provider", "site1", "--attr", "cores=8", "--attr", "arch=x86_64", "--attr", "note=a=b"},
			want:    &trellisv1.Resource{Name: "n7", Kind: "node", Provider: "site1", State: "available", Attributes: map[string]string{"cores": "8", "arch": "x86_64", "note": "a=b"}},
			wantOut: "Registered node n7 at site1: arch=x86_64 cores=8 note=a=b.\n",
		},
		{
			name:    "kind defaults to node",
			args:    []string{"resource", "add", "n8", "--provider", "site1"},
			want:    &trellisv1.Resource{Name: "n8", Kind: "node", Provider: "site1", State: "available"},
			wantOut: "Registered node n8 at site1: -.\n",
		},
		{
			name:     "unknown kind is the server's to refuse",
			args:     []string{"resource", "add", "v1", "--kind", "vm", "--provider", "site1"},
			wantCode: 1,
			wantErr:  "error: the request is not valid\n  kind: unknown kind \"vm\"; one of node, image, network, external (kind.unknown)\n",
		},
		{
			name:     "a provider that is not registered is the server's to refuse",
			args:     []string{"resource", "add", "n10", "--provider", "site9"},
			wantCode: 1,
			wantErr:  "error: the request is not valid\n  provider: \"site9\" is not a registered provider: an admin adds it first (trellis admin provider add site9 --url URL) (provider.unregistered)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ops.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			resp, err := ops.api().Resources.GetResource(bg, req(&trellisv1.GetResourceRequest{Name: tt.args[2]}))
			if tt.want == nil {
				if connect.CodeOf(err) != connect.CodeNotFound {
					t.Errorf("%s on the server: %v", tt.args[2], err)
				}
				return
			}
			got := must(resp, err)(t).GetResource()
			got.CreatedAt = nil
			if !proto.Equal(got, tt.want) {
				t.Errorf("on the server %v, want %v", got, tt.want)
			}
		})
	}

	// Malformed attributes are usage errors, found before any request.
	for _, attr := range []string{"cores", "=8"} {
		r := offline(t).run("", "resource", "add", "n9", "--provider", "site1", "--attr", attr)
		if r.code != 1 || !strings.Contains(r.err, "want KEY=VALUE") || !strings.Contains(r.err, "--help' for usage") {
			t.Errorf("--attr %q: %+v", attr, r)
		}
	}
	if r := offline(t).run("", "resource", "add", "n9", "--provider", "s", "--attr", "cores=8", "--attr", "cores=16"); r.code != 1 || !strings.Contains(r.err, "cores given twice") {
		t.Errorf("duplicate attr: %+v", r)
	}
}

func TestResourceListPassesFilters(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 3)
	// Resources each filter leaves out.
	srv.AddResource(t, "small", "site1", map[string]string{"cores": "4", "arch": "x86_64"})
	srv.AddResource(t, "arm", "site1", map[string]string{"cores": "8", "arch": "arm64"})
	srv.AddResource(t, "far", "site2", map[string]string{"cores": "8", "arch": "x86_64"})
	srv.AddResource(t, "fixing", "site1", map[string]string{"cores": "8", "arch": "x86_64"})
	must(srv.Admin(t).Resources.SetResourceState(bg, req(&trellisv1.SetResourceStateRequest{Name: "fixing", State: "maintenance"})))(t)
	newExperiment(t, srv, "alice:ping")
	rz := realize(t, srv, "alice:ping")
	bound := bindingsOf(rz)
	e := as(t, srv, "alice")

	r := e.run("", "resource", "list", "cores>=8", "arch=x86_64", "--kind", "node", "--provider", "site1", "--state", "available", "--all", "--page-size", "1")
	if r.code != 0 || r.err != "" {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	realizationOf := func(n string) string {
		for _, res := range bound {
			if res == n {
				return rz.GetId()
			}
		}
		return "-"
	}
	rows := [][]string{{"NAME", "KIND", "PROVIDER", "STATE", "REALIZATION", "ATTRIBUTES"}}
	for _, n := range []string{"n1", "n2", "n3"} {
		rows = append(rows, []string{n, "node", "site1", "available", realizationOf(n), "arch=x86_64 cores=8"})
	}
	if want := columns(rows); r.out != want {
		t.Errorf("out:\n%s\nwant:\n%s", r.out, want)
	}

	// Without --all: one page and a hint; a bad filter is the server's.
	r = e.run("", "resource", "list", "--page-size", "2")
	if r.code != 0 || !strings.Contains(r.err, "--page-token ") || strings.Count(r.out, "\n") != 3 {
		t.Errorf("one page: %+v", r)
	}
	r = e.run("", "resource", "list", "cores")
	if r.code != 1 || r.err != "error: the request is not valid\n  filters[0]: \"cores\" is not a constraint: write attr=value, attr!=value or attr>=N (also <=, >, <) (constraint.format)\n" {
		t.Errorf("bad filter: %+v", r)
	}
}

// columns lays rows out as the client's tables should: columns two spaces
// apart, the last one unpadded. (Written apart from the client's table, so
// that a change there shows here.)
func columns(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c + "\n")
			} else {
				b.WriteString(c + strings.Repeat(" ", widths[i]-len(c)+2))
			}
		}
	}
	return b.String()
}

func TestResourceCommands(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 4)
	newExperiment(t, srv, "alice:ping")
	rz := realize(t, srv, "alice:ping") // binds n1 and n2
	if b := bindingsOf(rz); b["a"] != "n1" || b["b"] != "n2" {
		t.Fatalf("bindings %v", b)
	}
	ops := as(t, srv, apptest.AdminUID)
	resource := func(t *testing.T, name string) (*trellisv1.Resource, error) {
		resp, err := ops.api().Resources.GetResource(bg, req(&trellisv1.GetResourceRequest{Name: name}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetResource(), nil
	}
	tests := []struct {
		args     []string
		wantCode int
		want     string // in stdout, or in stderr on failure
		check    func(t *testing.T)
	}{
		{[]string{"resource", "show", "n1"}, 0, "name:            n1\nkind:            node\nprovider:        site1\nstate:           available\nrealization:     " + rz.GetId() + "\ncreated:         ", nil},
		{[]string{"resource", "show", "n3"}, 0, "realization:     -\n", nil},
		{[]string{"resource", "show", "n1"}, 0, "attribute arch:  x86_64\nattribute cores: 8\n", nil},
		{[]string{"resource", "show", "nosuch"}, 1, "error: resource \"nosuch\" not found\n", nil},
		{[]string{"resource", "state", "n3", "maintenance"}, 0, "Resource n3 is maintenance.\n", func(t *testing.T) {
			if r, err := resource(t, "n3"); err != nil || r.GetState() != "maintenance" {
				t.Errorf("n3 on the server: %v, %v", r, err)
			}
		}},
		{[]string{"resource", "state", "n3", "asleep"}, 1, "state: unknown state \"asleep\"; one of available, maintenance, down, suspect (state.unknown)", nil},
		{[]string{"resource", "rm", "n4"}, 0, "Removed resource n4.\n", func(t *testing.T) {
			if _, err := resource(t, "n4"); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("n4 on the server: %v", err)
			}
		}},
		{[]string{"resource", "rm", "n1"}, 1, "error: resource n1 is bound to realization " + rz.GetId() + ": release it first\n", func(t *testing.T) {
			if _, err := resource(t, "n1"); err != nil {
				t.Errorf("n1 on the server: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := ops.run("", tt.args...)
			got := r.out
			if tt.wantCode != 0 {
				got = r.err
			}
			if r.code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Errorf("code %d, out %q, err %q; want %d with %q", r.code, r.out, r.err, tt.wantCode, tt.want)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

func TestRealizePrintsIDFirst(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 2)
	newExperiment(t, srv, "alice:ping")
	must(srv.As(t, "alice").Experiments.CreateExperiment(bg, req(&trellisv1.CreateExperimentRequest{Id: "alice:empty"})))(t)
	alice := as(t, srv, "alice")
	tests := []struct {
		name      string
		args      []string
		wantLease time.Duration
	}{
		{"lease", []string{"--lease", "2h"}, 2 * time.Hour},
		{"lease in days", []string{"--lease", "2d"}, 48 * time.Hour},
		{"server's default", nil, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.run("", append([]string{"realize", "alice:ping", "--project", "lab"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("code %d, err %q", r.code, r.err)
			}
			id, _, _ := strings.Cut(r.out, "\n")
			rz := realization(t, srv, id)
			defer must(alice.api().Realizations.Release(bg, req(&trellisv1.ReleaseRequest{Id: id})))
			b := bindingsOf(rz)
			if want := id + "\nELEMENT  RESOURCE\na        " + b["a"] + "\nb        " + b["b"] + "\n"; r.out != want {
				t.Errorf("out %q, want %q", r.out, want)
			}
			if want := "Realized alice:ping under project lab (allocated), lease until " + formatTS(rz.GetLeaseExpiresAt()) + ".\n"; r.err != want {
				t.Errorf("stderr %q, want %q", r.err, want)
			}
			if rz.GetExperiment() != "alice:ping" || rz.GetProject() != "lab" || rz.GetState() != "allocated" {
				t.Errorf("on the server: %v", rz)
			}
			if d := rz.GetLeaseExpiresAt().AsTime().Sub(rz.GetCreatedAt().AsTime()); d != tt.wantLease {
				t.Errorf("lease %v, want %v", d, tt.wantLease)
			}
		})
	}

	if r := offline(t).run("", "realize", "alice:ping"); r.code != 1 || !strings.Contains(r.err, `"project" not set`) {
		t.Errorf("without --project: %+v", r)
	}
	for _, lease := range []string{"soon", "0s", "-1h", "xd"} {
		if r := offline(t).run("", "realize", "alice:ping", "--project", "lab", "--lease", lease); r.code != 1 || !strings.Contains(r.err, "--help' for usage") {
			t.Errorf("--lease %s: %+v", lease, r)
		}
	}
	if r := alice.run("", "realize", "alice:empty", "--project", "lab"); r.code != 1 || r.out != "" ||
		r.err != "error: experiment alice:empty has no layout aspect to realize: add one (trellis experiment aspect add alice:empty layout main FILE)\n" {
		t.Errorf("no layout: %+v", r)
	}
}

func TestRealizationCommands(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 6)
	newExperiment(t, srv, "alice:ping")
	other := realize(t, srv, "alice:ping") // binds n1 and n2
	rz := realize(t, srv, "alice:ping")    // binds n3 and n4
	id := rz.GetId()
	if b := bindingsOf(rz); b["a"] != "n3" || b["b"] != "n4" {
		t.Fatalf("bindings %v", b)
	}
	gone := realize(t, srv, "alice:ping")
	must(srv.As(t, "alice").Realizations.Release(bg, req(&trellisv1.ReleaseRequest{Id: gone.GetId()})))(t)
	gone = realization(t, srv, gone.GetId())
	alice := as(t, srv, "alice")

	// In order: each case starts from what the one before left.
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
		check    func(t *testing.T)
	}{
		{
			name:    "bind",
			args:    []string{"realization", "bind", id, "b", "n5"},
			wantOut: "Bound b of realization " + id + " to n5.\n\nELEMENT  RESOURCE\na        n3\nb        n5\n",
			check: func(t *testing.T) {
				if b := bindingsOf(realization(t, srv, id)); b["a"] != "n3" || b["b"] != "n5" {
					t.Errorf("bindings on the server %v", b)
				}
			},
		},
		{
			name:     "bind a resource another realization holds",
			args:     []string{"realization", "bind", id, "b", "n1"},
			wantCode: 1,
			wantErr:  "error: resource n1 is bound to another realization\n",
		},
		{
			name:     "bind a resource another element holds",
			args:     []string{"realization", "bind", id, "b", "n3"},
			wantCode: 1,
			wantErr:  "error: resource n3 is already bound to element a of realization " + id + "\n",
		},
		{
			name: "renew",
			args: []string{"realization", "renew", id, "--lease", "3h"},
			check: func(t *testing.T) {
				got := realization(t, srv, id).GetLeaseExpiresAt().AsTime()
				if d := time.Until(got); d < 3*time.Hour-time.Minute || d > 3*time.Hour {
					t.Errorf("lease on the server until %v", got)
				}
			},
		},
		{
			name: "list",
			args: []string{"realization", "list", "--ended"},
		},
		{
			name:    "release",
			args:    []string{"realization", "release", id},
			wantOut: "Released realization " + id + " (released).\n",
			check: func(t *testing.T) {
				if rz := realization(t, srv, id); rz.GetState() != "released" || rz.GetReleasedAt() == nil {
					t.Errorf("on the server: %v", rz)
				}
			},
		},
		{
			name:     "release twice",
			args:     []string{"realization", "release", id},
			wantCode: 1,
			wantErr:  "error: realization " + id + " was released already\n",
		},
		{
			name:     "show unknown",
			args:     []string{"realization", "show", "r-nosuch"},
			wantCode: 1,
			wantErr:  "error: realization \"r-nosuch\" not found\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.run("", tt.args...)
			wantOut := tt.wantOut
			switch tt.name {
			case "renew":
				wantOut = "Renewed realization " + id + ": lease until " + formatTS(realization(t, srv, id).GetLeaseExpiresAt()) + ".\n"
			case "list":
				rows := [][]string{{"ID", "EXPERIMENT", "PROJECT", "OWNER", "STATE", "LEASE UNTIL", "RESOURCES"}}
				for _, x := range []*trellisv1.Realization{realization(t, srv, other.GetId()), realization(t, srv, id), gone} {
					b := bindingsOf(x)
					rows = append(rows, []string{x.GetId(), "alice:ping", "lab", "alice", x.GetState(), formatTS(x.GetLeaseExpiresAt()), b["a"] + "," + b["b"]})
				}
				slices.SortFunc(rows[1:], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
				wantOut = columns(rows)
			}
			if r.code != tt.wantCode || r.out != wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, wantOut, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

func TestAdminRealizations(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 6)
	newExperiment(t, srv, "alice:ping")
	var rzs []*trellisv1.Realization
	for range 3 {
		rzs = append(rzs, realize(t, srv, "alice:ping"))
	}
	must(srv.As(t, "alice").Realizations.Release(bg, req(&trellisv1.ReleaseRequest{Id: rzs[2].GetId()})))(t)
	ops := as(t, srv, apptest.AdminUID)

	listing := func(ended bool) string {
		rows := [][]string{{"ID", "EXPERIMENT", "PROJECT", "OWNER", "STATE", "LEASE UNTIL", "RESOURCES"}}
		for _, x := range rzs {
			x = realization(t, srv, x.GetId())
			if x.GetState() == "released" && !ended {
				continue
			}
			b := bindingsOf(x)
			rows = append(rows, []string{x.GetId(), "alice:ping", "lab", "alice", x.GetState(), formatTS(x.GetLeaseExpiresAt()), b["a"] + "," + b["b"]})
		}
		slices.SortFunc(rows[1:], func(a, b []string) int { return strings.Compare(a[0], b[0]) })
		return columns(rows)
	}
	// Pages of one: --all follows them.
	if r := ops.run("", "admin", "realizations", "--ended", "--all", "--page-size", "1"); r.code != 0 || r.out != listing(true) || r.err != "" {
		t.Errorf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, listing(true))
	}
	if r := ops.run("", "admin", "realizations"); r.code != 0 || r.out != listing(false) {
		t.Errorf("without the ended: %+v", r)
	}

	id := rzs[0].GetId()
	r := ops.run("", "admin", "release", id, "--reason", "maintenance window")
	if r.code != 0 || r.out != "Released realization "+id+" (released).\n" {
		t.Errorf("release: %+v", r)
	}
	if rz := realization(t, srv, id); rz.GetState() != "released" {
		t.Errorf("on the server: %v", rz)
	}
	if n := notificationsOf(t, srv, "alice"); n[0].GetText() != "ops released your realization "+id+": maintenance window" {
		t.Errorf("alice is told %q", n[0].GetText())
	}
	if r := ops.run("", "admin", "release", id); r.code != 1 || r.err != "error: realization "+id+" was released already\n" {
		t.Errorf("release twice: %+v", r)
	}

	// Not an admin: the server's refusal is shown.
	if r := as(t, srv, "alice").run("", "admin", "realizations"); r.code != 1 ||
		r.err != "error: trellis.v1.Realizations/ListAllRealizations is for testbed administrators only\n" {
		t.Errorf("as alice: %+v", r)
	}
}

func TestExperimentAndLibraryText(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 0)
	srv.NewPowerfulUser(t, "bob", "bobs")
	newExperiment(t, srv, "alice:ping")
	newExperiment(t, srv, "alice:gone")
	alice := as(t, srv, "alice")
	api := alice.api()
	must(api.Experiments.AddAspects(bg, req(&trellisv1.AddAspectsRequest{Id: "alice:ping", Aspects: []*trellisv1.AspectInput{
		{Type: "procedure", Name: "run", Content: []byte("ping -c 5 b\n")}}})))(t)
	must(api.Experiments.ChangeAccess(bg, req(&trellisv1.ExperimentsChangeAccessRequest{Id: "alice:ping", Circle: "lab:lab", Rights: []string{"read", "realize"}})))(t)
	for _, x := range []string{"alice:x0", "alice:x1", "alice:x2"} {
		newExperiment(t, srv, x)
	}
	// bob's experiment, which alice may read.
	must(srv.As(t, "bob").Experiments.CreateExperiment(bg, req(&trellisv1.CreateExperimentRequest{Id: "bob:trace"})))(t)
	must(srv.As(t, "bob").Experiments.ChangeAccess(bg, req(&trellisv1.ExperimentsChangeAccessRequest{Id: "bob:trace", Circle: "alice:alice", Rights: []string{"read"}})))(t)
	must(api.Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "alice:shelf"})))(t)
	must(api.Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "lab:shared"})))(t)
	x := experiment(t, srv, "alice:ping")
	layout, run := aspect(x, "layout", "main"), aspect(x, "procedure", "run")
	library := func(t *testing.T, id string) *trellisv1.Library {
		return must(api.Libraries.GetLibrary(bg, req(&trellisv1.GetLibraryRequest{Id: id})))(t).GetLibrary()
	}

	// In order: some cases change what later ones see.
	tests := []struct {
		args  []string
		want  []string
		check func(t *testing.T)
	}{
		{[]string{"experiment", "show", "alice:ping"}, []string{
			"id:          alice:ping\n", "owner:       alice\n", "description: latency study\n",
			"\nTYPE       NAME  REVISION  SIZE  SUMMARY          UPDATED\n",
			"\nlayout     main  1         " + itoa(layout.GetSize()) + "    2 nodes, 1 link  " + formatTS(layout.GetUpdatedAt()) + "\n",
			"\nprocedure  run   1         " + itoa(run.GetSize()) + "    " + run.GetSummary() + "         " + formatTS(run.GetUpdatedAt()) + "\n",
			"\nCIRCLE   RIGHTS\nlab:lab  read,realize\n",
		}, nil},
		{[]string{"experiment", "list", "--owner", "alice", "--text", "x", "--all", "--page-size", "2"},
			[]string{"ID        OWNER  CREATOR  CREATED", "\nalice:x0  alice  alice    ", "\nalice:x1  ", "\nalice:x2  "}, nil},
		{[]string{"experiment", "rm", "alice:gone"}, []string{"Removed experiment alice:gone.\n"}, func(t *testing.T) {
			if _, err := api.Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: "alice:gone"})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("alice:gone: %v", err)
			}
		}},
		{[]string{"experiment", "profile", "alice:ping"}, []string{"description  latency study  read_write\n"}, nil},
		{[]string{"experiment", "profile", "alice:ping", "set", "description=latency study"}, []string{"description: unchanged\n"}, nil},
		{[]string{"experiment", "profile", "alice:ping", "set", "description=jitter study"}, []string{"description: changed\n"}, func(t *testing.T) {
			if d := experiment(t, srv, "alice:ping").GetDescription(); d != "jitter study" {
				t.Errorf("description on the server %q", d)
			}
		}},
		{[]string{"experiment", "describe-profile"}, []string{"\ndescription  What the experiment studies  "}, nil},
		{[]string{"library", "create", "alice:classics", "--description", "the classics"}, []string{"Created library alice:classics.\n"}, func(t *testing.T) {
			if l := library(t, "alice:classics"); l.GetOwner() != "alice" || l.GetDescription() != "the classics" {
				t.Errorf("on the server: %v", l)
			}
		}},
		{[]string{"library", "add", "alice:classics", "alice:ping", "bob:trace"}, []string{"Library alice:classics holds alice:ping, bob:trace.\n"}, func(t *testing.T) {
			if xs := library(t, "alice:classics").GetExperiments(); !slices.Equal(xs, []string{"alice:ping", "bob:trace"}) {
				t.Errorf("on the server: %q", xs)
			}
		}},
		{[]string{"library", "show", "alice:classics"}, []string{"id:          alice:classics\n", "description: the classics\n", "experiments: alice:ping, bob:trace\n", "\nShared with no circle.\n"}, nil},
		{[]string{"library", "list", "--owner", "alice"}, []string{"ID              OWNER  CREATOR  CREATED", "\nalice:classics  alice  alice    ", "\nalice:shelf     alice  alice    "}, nil},
		{[]string{"library", "list"}, []string{"\nlab:shared      alice  alice    "}, nil},
		{[]string{"library", "remove", "alice:classics", "alice:ping", "bob:trace"}, []string{"Library alice:classics holds no experiment you may read.\n"}, func(t *testing.T) {
			if xs := library(t, "alice:classics").GetExperiments(); len(xs) != 0 {
				t.Errorf("on the server: %q", xs)
			}
		}},
		{[]string{"library", "profile", "alice:classics", "set", "description=the new classics"}, []string{"description: changed\n"}, func(t *testing.T) {
			if d := library(t, "alice:classics").GetDescription(); d != "the new classics" {
				t.Errorf("description on the server %q", d)
			}
		}},
		{[]string{"library", "rm", "alice:classics"}, []string{"Removed library alice:classics.\n"}, func(t *testing.T) {
			if _, err := api.Libraries.GetLibrary(bg, req(&trellisv1.GetLibraryRequest{Id: "alice:classics"})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("alice:classics: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := alice.run("", tt.args...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("code %d, err %q", r.code, r.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}

	// A realization, shown.
	srv.AddResource(t, "n1", "site1", map[string]string{"cores": "8"})
	srv.AddResource(t, "n2", "site1", map[string]string{"cores": "8"})
	rz := realize(t, srv, "alice:ping")
	must(api.Realizations.ChangeAccess(bg, req(&trellisv1.RealizationsChangeAccessRequest{Id: rz.GetId(), Circle: "lab:lab", Rights: []string{"read"}})))(t)
	r := alice.run("", "realization", "show", rz.GetId())
	for _, w := range []string{"id:          " + rz.GetId() + "\n", "experiment:  alice:ping\n", "state:       allocated\n", "released:    -\n",
		"\nELEMENT  RESOURCE\na        n1\nb        n2\n", "\nCIRCLE   RIGHTS\nlab:lab  read\n"} {
		if r.code != 0 || !strings.Contains(r.out, w) {
			t.Errorf("realization show lacks %q: %+v", w, r)
		}
	}
}

// Server refusals are printed as the server says them, field violations
// included, with exit status 1.
func TestTestbedErrorsPrinted(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 2)
	newExperiment(t, srv, "alice:ping")
	must(srv.As(t, "alice").Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "alice:classics"})))(t)
	rz := realize(t, srv, "alice:ping")
	must(srv.As(t, "alice").Realizations.Release(bg, req(&trellisv1.ReleaseRequest{Id: rz.GetId()})))(t)
	srv.AddResource(t, "n3", "site1", nil)
	srv.AddResource(t, "n4", "site1", nil)
	live := realize(t, srv, "alice:ping")
	alice := as(t, srv, "alice")
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"experiment", "show", "nosuch:x"}, "error: experiment \"nosuch:x\" not found\n"},
		{[]string{"experiment", "create", "ping"}, "error: the request is not valid\n  id: an experiment is named owner:name, where owner is a uid or a project (experiment.format)\n"},
		{[]string{"experiment", "export", "nosuch:x"}, "error: experiment \"nosuch:x\" not found\n"},
		{[]string{"library", "show", "nosuch:lib"}, "error: library \"nosuch:lib\" not found\n"},
		{[]string{"library", "add", "alice:classics", "nosuch:x"}, "error: experiment \"nosuch:x\" not found\n"},
		{[]string{"resource", "rm", bindingsOf(live)["a"]}, "error: resource " + bindingsOf(live)["a"] + " is bound to realization " + live.GetId() + ": release it first\n"},
		{[]string{"realization", "release", rz.GetId()}, "error: realization " + rz.GetId() + " was released already\n"},
	}
	ops := as(t, srv, apptest.AdminUID)
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := alice
			if tt.args[0] == "resource" {
				e = ops
			}
			r := e.run("", tt.args...)
			if r.code != 1 || r.out != "" || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %q", r.code, r.out, r.err, tt.wantErr)
			}
		})
	}
}

// With --output json a command prints the server's response: the same
// message the API returns for the same call.
func TestTestbedJSONOutput(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 4)
	newExperiment(t, srv, "alice:ping")
	e := as(t, srv, "alice")
	api := e.api()
	must(api.Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "alice:classics"})))(t)
	must(api.Libraries.AddExperiments(bg, req(&trellisv1.AddExperimentsRequest{Id: "alice:classics", Experiments: []string{"alice:ping"}})))(t)
	rz := realize(t, srv, "alice:ping")
	doc := writeTemp(t, "imported.json", `{"format":"trellis.experiment/v1","id":"alice:imported","aspects":[]}`)
	layout := writeTemp(t, "ping.yaml", pingLayout)

	tests := []struct {
		args []string
		msg  proto.Message
		want func(t *testing.T, got proto.Message) proto.Message
	}{
		{[]string{"experiment", "show", "alice:ping"}, &trellisv1.GetExperimentResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: "alice:ping"})))(t)
		}},
		{[]string{"experiment", "list", "--all"}, &trellisv1.ListExperimentsResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Experiments.ListExperiments(bg, req(&trellisv1.ListExperimentsRequest{})))(t)
		}},
		{[]string{"experiment", "profile", "alice:ping"}, &trellisv1.GetExperimentProfileResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Experiments.GetExperimentProfile(bg, req(&trellisv1.GetExperimentProfileRequest{Id: "alice:ping"})))(t)
		}},
		{[]string{"library", "show", "alice:classics"}, &trellisv1.GetLibraryResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Libraries.GetLibrary(bg, req(&trellisv1.GetLibraryRequest{Id: "alice:classics"})))(t)
		}},
		{[]string{"library", "list"}, &trellisv1.ListLibrariesResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Libraries.ListLibraries(bg, req(&trellisv1.ListLibrariesRequest{})))(t)
		}},
		{[]string{"resource", "list", "cores>=8", "--all"}, &trellisv1.ListResourcesResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Resources.ListResources(bg, req(&trellisv1.ListResourcesRequest{Filters: []string{"cores>=8"}})))(t)
		}},
		{[]string{"resource", "show", "n1"}, &trellisv1.GetResourceResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Resources.GetResource(bg, req(&trellisv1.GetResourceRequest{Name: "n1"})))(t)
		}},
		{[]string{"realization", "show", rz.GetId()}, &trellisv1.GetRealizationResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Realizations.GetRealization(bg, req(&trellisv1.GetRealizationRequest{Id: rz.GetId()})))(t)
		}},
		{[]string{"realization", "list"}, &trellisv1.ListRealizationsResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Realizations.ListRealizations(bg, req(&trellisv1.ListRealizationsRequest{})))(t)
		}},
		// Calls that change something: their response is the new state.
		{[]string{"experiment", "create", "alice:new", "--layout", layout}, &trellisv1.CreateExperimentResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return &trellisv1.CreateExperimentResponse{Experiment: must(api.Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: "alice:new"})))(t).GetExperiment()}
		}},
		{[]string{"experiment", "import", doc}, &trellisv1.ImportExperimentResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return &trellisv1.ImportExperimentResponse{Experiment: must(api.Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: "alice:imported"})))(t).GetExperiment()}
		}},
		{[]string{"experiment", "access", "alice:ping", "lab:lab", "read"}, &trellisv1.ExperimentsChangeAccessResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return &trellisv1.ExperimentsChangeAccessResponse{Grants: experiment(t, srv, "alice:ping").GetGrants()}
		}},
		{[]string{"experiment", "aspect", "set", "alice:ping", "layout", "main", layout}, &trellisv1.ChangeAspectsResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return &trellisv1.ChangeAspectsResponse{Experiment: must(api.Experiments.GetExperiment(bg, req(&trellisv1.GetExperimentRequest{Id: "alice:ping"})))(t).GetExperiment()}
		}},
		{[]string{"realize", "alice:ping", "--project", "lab"}, &trellisv1.RealizeResponse{}, func(t *testing.T, got proto.Message) proto.Message {
			id := got.(*trellisv1.RealizeResponse).GetRealization().GetId()
			return &trellisv1.RealizeResponse{Realization: must(api.Realizations.GetRealization(bg, req(&trellisv1.GetRealizationRequest{Id: id})))(t).GetRealization()}
		}},
		{[]string{"realization", "release", rz.GetId()}, &trellisv1.ReleaseResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return &trellisv1.ReleaseResponse{Realization: must(api.Realizations.GetRealization(bg, req(&trellisv1.GetRealizationRequest{Id: rz.GetId()})))(t).GetRealization()}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
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
			if want := tt.want(t, tt.msg); !proto.Equal(tt.msg, want) {
				t.Errorf("printed %v\nthe server says %v", tt.msg, want)
			}
		})
	}

	// The admin's listing is its own call's response.
	r := as(t, srv, apptest.AdminUID).run("", "--output", "json", "admin", "realizations", "--all")
	var all trellisv1.ListAllRealizationsResponse
	want := must(srv.Admin(t).Realizations.ListAllRealizations(bg, req(&trellisv1.ListAllRealizationsRequest{})))(t)
	if err := protojson.Unmarshal([]byte(r.out), &all); r.code != 0 || err != nil || !proto.Equal(&all, want) {
		t.Errorf("admin realizations: %v %+v", err, r)
	}
}

func TestTestbedUsageErrors(t *testing.T) {
	t.Parallel()
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
			r := offline(t).run("", args...)
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
		"realization bind", "realization access", "realization watch", "admin provider deliveries",
		"admin realizations", "admin release",
	} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c.CommandPath() != "trellis "+path {
			t.Errorf("%s: found %q, %v", path, c.CommandPath(), err)
		}
	}
}

// The calls authenticate with the saved login: without one, the client
// says so; with one, the server answers as its user.
func TestTestbedCallsNeedLogin(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 2)
	newExperiment(t, srv, "alice:ping")
	must(srv.As(t, "alice").Libraries.CreateLibrary(bg, req(&trellisv1.CreateLibraryRequest{Id: "alice:classics"})))(t)
	rz := realize(t, srv, "alice:ping")
	must(srv.As(t, "alice").Realizations.Release(bg, req(&trellisv1.ReleaseRequest{Id: rz.GetId()})))(t)
	calls := [][]string{
		{"experiment", "show", "alice:ping"},
		{"library", "show", "alice:classics"},
		{"resource", "show", "n1"},
		{"realization", "show", rz.GetId()},
		{"realize", "alice:ping", "--project", "lab"},
	}
	for _, args := range calls {
		r := newEnv(t, srv).run("", args...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to ") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.err)
		}
	}
	alice := as(t, srv, "alice")
	for _, args := range calls {
		if r := alice.run("", args...); r.code != 0 {
			t.Errorf("%q: %+v", args, r)
		}
	}
	// The realization was made for alice, under her login.
	if rzs := must(alice.api().Realizations.ListRealizations(bg, req(&trellisv1.ListRealizationsRequest{})))(t).GetRealizations(); len(rzs) != 1 || rzs[0].GetOwner() != "alice" {
		t.Errorf("alice's live realizations: %v", rzs)
	}
}
