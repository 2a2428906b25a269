package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
)

const twoNodes = `nodes:
  - name: a
    constraints: {cores: ">=4", arch: x86_64}
  - name: b
links:
  - [a, b]
`

// addProvider adds a provider (site) unless it is there: a resource names
// a registered provider.
func (h *harness) addProvider(adminTok, name string) {
	h.t.Helper()
	_, err := trellisv1connect.NewProvidersClient(h.http, h.url).AddProvider(context.Background(), req(&trellisv1.AddProviderRequest{Name: name, Url: "https://" + name + ".example.org:7800"}, adminTok))
	if err != nil && connect.CodeOf(err) != connect.CodeAlreadyExists {
		h.t.Fatalf("add provider %s: %v", name, err)
	}
}

// registerNodes adds n node resources at site1 with the given attributes.
func (h *harness) registerNodes(adminTok, prefix string, n int, attrs map[string]string) {
	h.t.Helper()
	h.addProvider(adminTok, "site1")
	for i := range n {
		if _, err := h.resources.RegisterResource(context.Background(), req(&trellisv1.RegisterResourceRequest{
			Name: fmt.Sprintf("%s%03d", prefix, i), Kind: "node", Provider: "site1", Attributes: attrs,
		}, adminTok)); err != nil {
			h.t.Fatal(err)
		}
	}
}

// member makes uid a member of project with rights, consent included.
func (h *harness) member(ownerTok, project, uid, tok string, rights ...string) {
	h.t.Helper()
	ctx := context.Background()
	add, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: project, Uids: []string{uid}, Rights: rights}, ownerTok))
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, tok)); err != nil {
		h.t.Fatal(err)
	}
}

func TestExperimentsAndSharing(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann, bob, cat := h.newUser("ann"), h.newUser("bob"), h.newUser("cat")
	h.approvedProject(adminTok, ann, "lab")
	h.member(ann, "lab", "bob", bob)
	h.member(ann, "lab", "cat", cat)

	created, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{
		Id: "ann:ping", Description: "latency study",
		Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(twoNodes)}, {Type: "procedure", Name: "run", Content: []byte("ping -c 3 b")}},
	}, ann))
	if err != nil {
		t.Fatal(err)
	}
	x := created.Msg.Experiment
	// The layout, its two per-node views, the procedure.
	if len(x.Aspects) != 4 || x.Aspects[0].Summary != "2 nodes, 1 link" || x.Aspects[0].Revision != 1 || len(x.Aspects[0].Content) != 0 || x.Aspects[1].DerivedFrom != "main" {
		t.Fatalf("created %v", x)
	}
	// bob cannot see it until a circle he is in is granted read.
	_, err = h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: "ann:ping"}, bob))
	wantCode(t, err, connect.CodeNotFound)
	if _, err := h.experiments.ChangeAccess(ctx, req(&trellisv1.ExperimentsChangeAccessRequest{Id: "ann:ping", Circle: "lab:lab", Rights: []string{"read"}}, ann)); err != nil {
		t.Fatal(err)
	}
	got, err := h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: "ann:ping", IncludeContent: true}, bob))
	if err != nil || string(got.Msg.Experiment.Aspects[0].Content) != twoNodes {
		t.Fatalf("bob reads: %v %v", got, err)
	}
	// Read is not modify.
	_, err = h.experiments.AddAspects(ctx, req(&trellisv1.AddAspectsRequest{Id: "ann:ping", Aspects: []*trellisv1.AspectInput{{Type: "data", Name: "d", Content: []byte{1, 2}}}}, bob))
	wantCode(t, err, connect.CodePermissionDenied)
	list, err := h.experiments.ListExperiments(ctx, req(&trellisv1.ListExperimentsRequest{}, bob))
	if err != nil || len(list.Msg.Experiments) != 1 || list.Msg.Experiments[0].Description != "latency study" {
		t.Fatalf("bob's list (with descriptions): %v %v", list, err)
	}

	// Optimistic concurrency: a change based on a stale revision is refused.
	if _, err := h.experiments.ChangeAspects(ctx, req(&trellisv1.ChangeAspectsRequest{Id: "ann:ping", Changes: []*trellisv1.AspectChange{{Type: "procedure", Name: "run", Revision: 1, Content: []byte("ping -c 5 b")}}}, ann)); err != nil {
		t.Fatal(err)
	}
	_, err = h.experiments.ChangeAspects(ctx, req(&trellisv1.ChangeAspectsRequest{Id: "ann:ping", Changes: []*trellisv1.AspectChange{{Type: "procedure", Name: "run", Revision: 1, Content: []byte("ping -c 9 b")}}}, ann))
	wantCode(t, err, connect.CodeAborted)

	// Export and import round-trip under another id.
	exp, err := h.experiments.ExportExperiment(ctx, req(&trellisv1.ExportExperimentRequest{Id: "ann:ping"}, bob))
	if err != nil {
		t.Fatal(err)
	}
	imp, err := h.experiments.ImportExperiment(ctx, req(&trellisv1.ImportExperimentRequest{Document: exp.Msg.Document, Id: "bob:ping"}, bob))
	if err != nil || len(imp.Msg.Experiment.Aspects) != 4 || imp.Msg.Experiment.Description != "latency study" { // derived views come back with their layout
		t.Fatalf("import: %v %v", imp, err)
	}

	// Libraries list only what the reader may read.
	if _, err := h.libraries.CreateLibrary(ctx, req(&trellisv1.CreateLibraryRequest{Id: "bob:mine", Description: "what bob reads"}, bob)); err != nil {
		t.Fatal(err)
	}
	// An empty library lists nothing (not every experiment bob may read).
	if in, err := h.libraries.ListLibraryExperiments(ctx, req(&trellisv1.ListLibraryExperimentsRequest{Id: "bob:mine"}, bob)); err != nil || len(in.Msg.Experiments) != 0 {
		t.Fatalf("an empty library's experiments: %v %v", in, err)
	}
	if libs, err := h.libraries.ListLibraries(ctx, req(&trellisv1.ListLibrariesRequest{Owner: "bob"}, bob)); err != nil || len(libs.Msg.Libraries) != 1 || libs.Msg.Libraries[0].Description != "what bob reads" {
		t.Fatalf("bob's libraries (with descriptions): %v %v", libs, err)
	}
	if _, err := h.libraries.AddExperiments(ctx, req(&trellisv1.AddExperimentsRequest{Id: "bob:mine", Experiments: []string{"ann:ping", "bob:ping"}}, bob)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.libraries.ChangeAccess(ctx, req(&trellisv1.LibrariesChangeAccessRequest{Id: "bob:mine", Circle: "lab:lab", Rights: []string{"read"}}, bob)); err != nil {
		t.Fatal(err)
	}
	lib, err := h.libraries.GetLibrary(ctx, req(&trellisv1.GetLibraryRequest{Id: "bob:mine"}, cat))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lib.Msg.Library.Experiments, ",") != "ann:ping" {
		t.Fatalf("cat sees %v; bob:ping is not shared with cat", lib.Msg.Library.Experiments)
	}
	if in, err := h.libraries.ListLibraryExperiments(ctx, req(&trellisv1.ListLibraryExperimentsRequest{Id: "bob:mine"}, cat)); err != nil || len(in.Msg.Experiments) != 1 || in.Msg.Experiments[0].Description != "latency study" {
		t.Fatalf("cat's view of the library's experiments: %v %v", in, err)
	}
	// Adding an experiment one cannot read is "not found".
	_, err = h.libraries.AddExperiments(ctx, req(&trellisv1.AddExperimentsRequest{Id: "bob:mine", Experiments: []string{"ann:secret"}}, bob))
	wantCode(t, err, connect.CodeNotFound)

	// Bad input.
	for name, tc := range map[string]struct {
		aspects []*trellisv1.AspectInput
		field   string
	}{
		"unknown type":   {[]*trellisv1.AspectInput{{Type: "movie", Name: "m", Content: []byte("x")}}, "aspects[0].type"},
		"bad layout":     {[]*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte("nodes:\n  - name: a\n  - name: a\n")}}, ""},
		"too large data": {[]*trellisv1.AspectInput{{Type: "data", Name: "d", Content: make([]byte, 2<<20)}}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:bad", Aspects: tc.aspects}, ann))
			wantCode(t, err, connect.CodeInvalidArgument)
			if tc.field != "" {
				if _, ok := violations(err)[tc.field]; !ok {
					t.Fatalf("violations %v lack %s", violations(err), tc.field)
				}
			}
		})
	}
	_, err = h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: "ann:bad"}, ann))
	wantCode(t, err, connect.CodeNotFound) // nothing half-written
}

func TestRealizations(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann, bob := h.newUser("ann"), h.newUser("bob")
			h.approvedProject(adminTok, ann, "lab")
			h.member(ann, "lab", "bob", bob) // no realize_experiment
			h.registerNodes(adminTok, "big", 2, map[string]string{"cores": "16", "arch": "x86_64"})
			h.registerNodes(adminTok, "small", 1, map[string]string{"cores": "2", "arch": "arm64"})
			if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:ping", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(twoNodes)}}}, ann)); err != nil {
				t.Fatal(err)
			}
			// Without realize_experiment in the project: refused.
			if _, err := h.experiments.ChangeAccess(ctx, req(&trellisv1.ExperimentsChangeAccessRequest{Id: "ann:ping", Circle: "lab:lab", Rights: []string{"read", "realize"}}, ann)); err != nil {
				t.Fatal(err)
			}
			_, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab"}, bob))
			wantCode(t, err, connect.CodePermissionDenied)
			// A lease beyond the maximum is refused.
			_, err = h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab", Lease: durationpb.New(30 * 24 * time.Hour)}, ann))
			wantCode(t, err, connect.CodeInvalidArgument)

			r, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab", Lease: durationpb.New(time.Hour)}, ann))
			if err != nil {
				t.Fatal(err)
			}
			rz := r.Msg.Realization
			bound := map[string]string{}
			for _, b := range rz.Bindings {
				bound[b.Element] = b.Resource
			}
			if rz.State != "allocated" || !strings.HasPrefix(bound["a"], "big") || bound["b"] == "" || bound["a"] == bound["b"] {
				t.Fatalf("realization %v", rz)
			}
			// The pool is now short: a second realization says which node
			// could not be placed and how many candidates there were.
			_, err = h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab"}, ann))
			wantCode(t, err, connect.CodeFailedPrecondition)
			if !strings.Contains(err.Error(), `cannot be placed`) || !strings.Contains(err.Error(), "available resources") {
				t.Fatalf("shortfall message: %v", err)
			}
			// A bound resource cannot be removed nor bound elsewhere.
			_, err = h.resources.RemoveResource(ctx, req(&trellisv1.RemoveResourceRequest{Name: bound["a"]}, adminTok))
			wantCode(t, err, connect.CodeFailedPrecondition)
			res, err := h.resources.GetResource(ctx, req(&trellisv1.GetResourceRequest{Name: bound["a"]}, ann))
			if err != nil || res.Msg.Resource.Realization != rz.Id {
				t.Fatalf("resource: %v %v", res, err)
			}
			// Listing with filters.
			list, err := h.resources.ListResources(ctx, req(&trellisv1.ListResourcesRequest{Filters: []string{"cores>=8 arch=x86_64"}}, ann))
			if err != nil || len(list.Msg.Resources) != 2 {
				t.Fatalf("filtered list: %v %v", list, err)
			}
			_, err = h.resources.ListResources(ctx, req(&trellisv1.ListResourcesRequest{Filters: []string{"cores>>8"}}, ann))
			wantCode(t, err, connect.CodeInvalidArgument)

			// bob, with read on the experiment only, cannot see the
			// realization; a grant to lab:lab lets him.
			_, err = h.realizations.GetRealization(ctx, req(&trellisv1.GetRealizationRequest{Id: rz.Id}, bob))
			wantCode(t, err, connect.CodeNotFound)
			if _, err := h.realizations.ChangeAccess(ctx, req(&trellisv1.RealizationsChangeAccessRequest{Id: rz.Id, Circle: "lab:lab", Rights: []string{"read"}}, ann)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.realizations.GetRealization(ctx, req(&trellisv1.GetRealizationRequest{Id: rz.Id}, bob)); err != nil {
				t.Fatal(err)
			}
			_, err = h.realizations.Release(ctx, req(&trellisv1.ReleaseRequest{Id: rz.Id}, bob))
			wantCode(t, err, connect.CodePermissionDenied)

			// Renew; release; releasing twice is refused.
			ren, err := h.realizations.Renew(ctx, req(&trellisv1.RenewRequest{Id: rz.Id, Lease: durationpb.New(2 * time.Hour)}, ann))
			if err != nil || !ren.Msg.Realization.LeaseExpiresAt.AsTime().After(rz.LeaseExpiresAt.AsTime()) {
				t.Fatalf("renew: %v %v", ren, err)
			}
			rel, err := h.realizations.Release(ctx, req(&trellisv1.ReleaseRequest{Id: rz.Id}, ann))
			if err != nil || rel.Msg.Realization.State != "released" {
				t.Fatalf("release: %v %v", rel, err)
			}
			_, err = h.realizations.Release(ctx, req(&trellisv1.ReleaseRequest{Id: rz.Id}, adminTok))
			wantCode(t, err, connect.CodeFailedPrecondition)
			// The resources are free again.
			if _, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab"}, ann)); err != nil {
				t.Fatalf("realize after release: %v", err)
			}
			// No layout, no realization.
			if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:empty"}, ann)); err != nil {
				t.Fatal(err)
			}
			_, err = h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:empty", Project: "lab"}, ann))
			wantCode(t, err, connect.CodeFailedPrecondition)
			if !strings.Contains(err.Error(), "no layout") {
				t.Fatalf("no-layout message: %v", err)
			}
		})
	}
}

// TestConcurrentRealizations races many realizations for one pool through
// two replicas on one store: no resource is bound twice, and every loser is
// told why.
func TestConcurrentRealizations(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			st := openStore(t, kind)
			same := func(c *app.Config) { c.PublicURL = "https://trellis.test" }
			a, b := newServer(t, st, same), newServer(t, st, same)
			ctx := context.Background()
			adminTok := a.bootstrapAdmin()
			ann := a.newUser("ann")
			a.approvedProject(adminTok, ann, "lab")
			a.registerNodes(adminTok, "n", 10, map[string]string{"cores": "8"})
			if _, err := a.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:pair", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte("nodes:\n  - name: x\n  - name: y\n  - name: z\n")}}}, ann)); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			won, lost := 0, 0
			used := map[string]string{}
			var wg sync.WaitGroup
			for i := range 12 {
				h := a
				if i%2 == 1 {
					h = b
				}
				wg.Go(func() {
					r, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:pair", Project: "lab"}, ann))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "node") {
							t.Errorf("loser not told why: %v", err)
						}
						lost++
						return
					}
					won++
					for _, bd := range r.Msg.Realization.Bindings {
						if other, dup := used[bd.Resource]; dup {
							t.Errorf("resource %s bound by %s and %s", bd.Resource, other, r.Msg.Realization.Id)
						}
						used[bd.Resource] = r.Msg.Realization.Id
					}
				})
			}
			wg.Wait()
			if won != 3 || lost != 9 {
				t.Fatalf("won %d lost %d; 10 nodes fit three 3-node realizations", won, lost)
			}
		})
	}
}

func TestLeaseExpiry(t *testing.T) {
	st := openStore(t, sqlite)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newServer(t, st, func(c *app.Config) { c.Now = clock; c.ReapInterval = 20 * time.Millisecond })
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann := h.newUser("ann")
	h.approvedProject(adminTok, ann, "lab")
	h.registerNodes(adminTok, "n", 2, map[string]string{"cores": "8", "arch": "x86_64"})
	if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:ping", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(twoNodes)}}}, ann)); err != nil {
		t.Fatal(err)
	}
	r, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab", Lease: durationpb.New(time.Hour)}, ann))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := h.realizations.GetRealization(ctx, req(&trellisv1.GetRealizationRequest{Id: r.Msg.Realization.Id}, adminTok))
		if err == nil && got.Msg.Realization.State == "released" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired lease was not reaped: %v %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ns := h.notificationsOf(ann); len(ns) == 0 || !strings.Contains(ns[0].Text, "expired") {
		t.Fatalf("owner not told: %v", ns)
	}
}

func TestListEndedRealizations(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann := h.newUser("ann")
	h.approvedProject(adminTok, ann, "lab")
	h.registerNodes(adminTok, "n", 2, map[string]string{"cores": "8", "arch": "x86_64"})
	if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:ping", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(twoNodes)}}}, ann)); err != nil {
		t.Fatal(err)
	}
	r, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab"}, ann))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.realizations.Release(ctx, req(&trellisv1.ReleaseRequest{Id: r.Msg.Realization.Id}, ann)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ended bool
		want  int
	}{{false, 0}, {true, 1}} {
		list, err := h.realizations.ListRealizations(ctx, req(&trellisv1.ListRealizationsRequest{IncludeEnded: tc.ended}, ann))
		if err != nil || len(list.Msg.Realizations) != tc.want {
			t.Fatalf("include_ended=%v: %v %v", tc.ended, list, err)
		}
	}
	// The record stays readable by its owner.
	got, err := h.realizations.GetRealization(ctx, req(&trellisv1.GetRealizationRequest{Id: r.Msg.Realization.Id}, ann))
	if err != nil || got.Msg.Realization.State != "released" || len(got.Msg.Realization.Bindings) != 2 {
		t.Fatalf("ended record: %v %v", got, err)
	}
}

func TestChangeBindings(t *testing.T) {
	h := newHarness(t, postgres)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann := h.newUser("ann")
	h.approvedProject(adminTok, ann, "lab")
	h.registerNodes(adminTok, "n", 5, map[string]string{"cores": "8", "arch": "x86_64"})
	if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:ping", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(twoNodes)}}}, ann)); err != nil {
		t.Fatal(err)
	}
	r1, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab"}, ann))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:ping", Project: "lab"}, ann))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, r := range []*trellisv1.Realization{r1.Msg.Realization, r2.Msg.Realization} {
		for _, b := range r.Bindings {
			used[b.Resource] = true
		}
	}
	var free string
	for i := range 5 {
		if n := fmt.Sprintf("n%03d", i); !used[n] {
			free = n
		}
	}
	other := r2.Msg.Realization.Bindings[0].Resource
	if _, err := h.resources.SetResourceState(ctx, req(&trellisv1.SetResourceStateRequest{Name: free, State: "down"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	bind := func(res string) error {
		_, err := h.realizations.ChangeBindings(ctx, req(&trellisv1.ChangeBindingsRequest{Id: r1.Msg.Realization.Id, Bindings: []*trellisv1.Binding{{Element: "b", Resource: res}}}, ann))
		return err
	}
	err = bind(other)
	wantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), "bound to another realization") {
		t.Fatalf("bound elsewhere: %v", err)
	}
	err = bind(free)
	wantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), "down") {
		t.Fatalf("down: %v", err)
	}
	err = bind("no-such-node")
	wantCode(t, err, connect.CodeNotFound)
	// Only the layout's elements can be bound: one it lacks is refused,
	// naming the field, and nothing changes.
	_, err = h.realizations.ChangeBindings(ctx, req(&trellisv1.ChangeBindingsRequest{Id: r1.Msg.Realization.Id, Bindings: []*trellisv1.Binding{{Element: "b", Resource: free}, {Element: "ghost", Resource: free}}}, ann))
	wantCode(t, err, connect.CodeInvalidArgument)
	if v := violations(err); v["bindings[1].element"] != "element.unknown" {
		t.Fatalf("unknown element: %v", err)
	}
	if got, _ := h.realizations.GetRealization(ctx, req(&trellisv1.GetRealizationRequest{Id: r1.Msg.Realization.Id}, ann)); len(got.Msg.Realization.Bindings) != 2 {
		t.Fatalf("bindings after a refused change: %v", got.Msg.Realization.Bindings)
	}
	// Back up, the free node swaps in; the old one is free again.
	if _, err := h.resources.SetResourceState(ctx, req(&trellisv1.SetResourceStateRequest{Name: free, State: "available"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	if err := bind(free); err != nil {
		t.Fatal(err)
	}
	got, _ := h.realizations.GetRealization(ctx, req(&trellisv1.GetRealizationRequest{Id: r1.Msg.Realization.Id}, ann))
	for _, b := range got.Msg.Realization.Bindings {
		if b.Element == "b" && b.Resource != free {
			t.Fatalf("b bound to %s, want %s", b.Resource, free)
		}
	}
}

// TestComposedLayouts: an experiment's layout aspects are parts of one
// topology, checked against each other on every change and realized
// together; unnamed aspects are named by the server; each layout derives a
// read-only view per node that follows it.
func TestComposedLayouts(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann := h.newUser("ann")
			h.approvedProject(adminTok, ann, "lab")
			h.registerNodes(adminTok, "n", 3, map[string]string{"cores": "8", "arch": "x86_64"})
			extra := []byte("nodes: [{name: c}]\nlinks: [[b, c]]\n")
			created, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:net", Aspects: []*trellisv1.AspectInput{
				{Type: "layout", Name: "main", Content: []byte(twoNodes)},
				{Type: "layout", Content: extra}, // named by the server
			}}, ann))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range created.Msg.Experiment.Aspects {
				got = append(got, a.Type+"/"+a.Name+"<"+a.DerivedFrom+">: "+a.Summary)
			}
			want := []string{
				"layout/layout<>: 1 node, 1 link", "layout/layout/c<layout>: node c, 1 link",
				"layout/main<>: 2 nodes, 1 link", "layout/main/a<main>: node a, 1 link", "layout/main/b<main>: node b, 1 link",
			}
			if !slices.Equal(got, want) {
				t.Fatalf("aspects %q, want %q", got, want)
			}
			// Another unnamed one takes the next free name.
			added, err := h.experiments.AddAspects(ctx, req(&trellisv1.AddAspectsRequest{Id: "ann:net", Aspects: []*trellisv1.AspectInput{{Type: "data", Content: []byte("x")}, {Type: "data", Content: []byte("y")}}}, ann))
			if err != nil {
				t.Fatal(err)
			}
			var data []string
			for _, a := range added.Msg.Experiment.Aspects {
				if a.Type == "data" {
					data = append(data, a.Name)
				}
			}
			if !slices.Equal(data, []string{"data", "data-2"}) {
				t.Errorf("unnamed data aspects named %v", data)
			}

			// Checked against each other: a link to a node no layout
			// defines, a node defined twice, a change or a removal that
			// leaves another layout's link dangling.
			refused := func(name string, err error, field, rule, says string) {
				t.Helper()
				wantCode(t, err, connect.CodeInvalidArgument)
				if v := violations(err); v[field] != rule || !strings.Contains(err.Error(), says) {
					t.Errorf("%s: %v (violations %v), want %s %s saying %q", name, err, v, field, rule, says)
				}
			}
			_, err = h.experiments.AddAspects(ctx, req(&trellisv1.AddAspectsRequest{Id: "ann:net", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "extra", Content: []byte("nodes: [{name: d}]\nlinks: [[d, z]]\n")}}}, ann))
			refused("dangling link", err, "layout/extra.links[0]", "layout.link.missing_node", `no layout aspect defines node "z"`)
			_, err = h.experiments.AddAspects(ctx, req(&trellisv1.AddAspectsRequest{Id: "ann:net", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "extra", Content: []byte("nodes: [{name: a}]\n")}}}, ann))
			refused("node twice", err, "layout/extra.nodes[0].name", "layout.node.duplicate", "already defined by layout/main")
			var mainRev int64
			for _, a := range created.Msg.Experiment.Aspects {
				if a.Name == "main" {
					mainRev = a.Revision
				}
			}
			_, err = h.experiments.ChangeAspects(ctx, req(&trellisv1.ChangeAspectsRequest{Id: "ann:net", Changes: []*trellisv1.AspectChange{{Type: "layout", Name: "main", Revision: mainRev, Content: []byte("nodes: [{name: a}]\n")}}}, ann))
			refused("change drops a linked node", err, "layout/layout.links[0]", "layout.link.missing_node", `no layout aspect defines node "b"`)
			_, err = h.experiments.RemoveAspects(ctx, req(&trellisv1.RemoveAspectsRequest{Id: "ann:net", Aspects: []*trellisv1.AspectRef{{Type: "layout", Name: "main"}}}, ann))
			refused("removal", err, "layout/layout.links[0]", "layout.link.missing_node", `no layout aspect defines node "b"`)
			// Derived views cannot be changed or removed themselves.
			_, err = h.experiments.RemoveAspects(ctx, req(&trellisv1.RemoveAspectsRequest{Id: "ann:net", Aspects: []*trellisv1.AspectRef{{Type: "layout", Name: "main/a"}}}, ann))
			refused("derived", err, "aspects[0].name", "aspect.derived", "derived from layout/main")

			// Nothing refused was kept, and the views follow a change.
			rev2 := mainRev
			changed, err := h.experiments.ChangeAspects(ctx, req(&trellisv1.ChangeAspectsRequest{Id: "ann:net", Changes: []*trellisv1.AspectChange{{Type: "layout", Name: "main", Revision: rev2, Content: []byte("nodes: [{name: a}, {name: b}, {name: e}]\nlinks: [[a, b], [b, e]]\n")}}}, ann))
			if err != nil {
				t.Fatal(err)
			}
			var views []string
			for _, a := range changed.Msg.Experiment.Aspects {
				if a.DerivedFrom != "" {
					views = append(views, a.Name+": "+a.Summary)
				}
			}
			if want := []string{"layout/c: node c, 1 link", "main/a: node a, 1 link", "main/b: node b, 2 links", "main/e: node e, 1 link"}; !slices.Equal(views, want) {
				t.Errorf("views after the change %q, want %q", views, want)
			}

			// The whole is realized: a, b and e from main, c from layout.
			h.registerNodes(adminTok, "m", 1, map[string]string{"cores": "8", "arch": "x86_64"})
			r, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "ann:net", Project: "lab"}, ann))
			if err != nil {
				t.Fatal(err)
			}
			var elements []string
			for _, b := range r.Msg.Realization.Bindings {
				elements = append(elements, b.Element)
			}
			slices.Sort(elements)
			if !slices.Equal(elements, []string{"a", "b", "c", "e"}) {
				t.Errorf("realized %v", elements)
			}
		})
	}
}
