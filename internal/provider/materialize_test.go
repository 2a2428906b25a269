package provider

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/materialize/sim"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
)

// readmeLayout is the README's example layout: two nodes and a link.
const readmeLayout = `nodes:
  - name: a
    constraints: {cores: ">=4", arch: x86_64}
  - name: b
links:
  - [a, b]
`

// seedPing gives the site two nodes for the README layout and the centre
// alice, owner of project lab.
func (ts *testSite) seedPing() {
	ts.t.Helper()
	ts.centre.AddResource(ts.t, "node1", "site1", map[string]string{"cores": "8", "arch": "x86_64"})
	ts.centre.AddResource(ts.t, "node2", "site1", nil)
	ts.centre.NewPowerfulUser(ts.t, "alice", "lab")
}

// realizeAs makes experiment uid:name with layout and realizes it under
// project; it returns the realization's id.
func (ts *testSite) realizeAs(uid, project, name, layout string) string {
	ts.t.Helper()
	ctx := context.Background()
	c := ts.centre.As(ts.t, uid)
	if _, err := c.Experiments.CreateExperiment(ctx, connect.NewRequest(&trellisv1.CreateExperimentRequest{
		Id: uid + ":" + name, Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(layout)}}})); err != nil {
		ts.t.Fatal(err)
	}
	rz, err := c.Realizations.Realize(ctx, connect.NewRequest(&trellisv1.RealizeRequest{Experiment: uid + ":" + name, Project: project}))
	if err != nil {
		ts.t.Fatal(err)
	}
	return rz.Msg.GetRealization().GetId()
}

// watchUntil follows the realization (as uid) until done says so, and
// returns it then.
func (ts *testSite) watchUntil(uid, id string, done func(*trellisv1.Realization) bool) *trellisv1.Realization {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := ts.centre.As(ts.t, uid).Realizations.Watch(ctx, connect.NewRequest(&trellisv1.RealizationsWatchRequest{Id: id}))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer s.Close()
	var last *trellisv1.Realization
	for s.Receive() {
		if last = s.Msg().GetRealization(); done(last) {
			return last
		}
	}
	ts.t.Fatalf("the watch of %s ended (%v) before the state was reached; last: %v", id, s.Err(), last)
	return nil
}

func matState(s string) func(*trellisv1.Realization) bool {
	return func(r *trellisv1.Realization) bool { return r.GetMaterialization().GetState() == s }
}

func (ts *testSite) resourceState(name string) (state, realization string) {
	ts.t.Helper()
	r, err := ts.centre.Admin(ts.t).Resources.GetResource(context.Background(), connect.NewRequest(&trellisv1.GetResourceRequest{Name: name}))
	if err != nil {
		ts.t.Fatal(err)
	}
	return r.Msg.GetResource().GetState(), r.Msg.GetResource().GetRealization()
}

// TestMaterializationStateMachine runs a realization through its states
// with a real centre on each store and a site with the sim driver:
// bound -> materializing -> ready -> dematerializing -> released, resources
// freed only when the site confirms; a node that fails to start fails the
// materialization with its reason; a site silent past the limit makes the
// resources suspect until it answers.
func TestMaterializationStateMachine(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(*testing.T) string { return "" },
		"postgres": func(t *testing.T) string { pgtest.Require(t); return pgtest.NewDatabase(t) },
	}
	for name, database := range stores {
		t.Run(name, func(t *testing.T) {
			ts := newTestSiteOn(t, database(t), "site1", func(c *app.Config) { c.Service.SiteSilenceLimit = 10 * time.Second })
			drv := sim.New(sim.Options{})
			ts.withDriver(drv, "sim")
			for _, n := range []string{"node1", "node2", "node3", "node4"} {
				ts.centre.AddResource(t, n, "site1", map[string]string{"cores": "8", "arch": "x86_64"})
			}
			ts.centre.NewPowerfulUser(t, "alice", "lab")
			ts.up()

			// Realized: bound until the site takes the work.
			rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
			got, err := ts.centre.As(t, "alice").Realizations.GetRealization(context.Background(), connect.NewRequest(&trellisv1.GetRealizationRequest{Id: rid}))
			if err != nil {
				t.Fatal(err)
			}
			if m := got.Msg.GetRealization().GetMaterialization(); m.GetState() != "bound" || len(m.GetElements()) != 3 {
				t.Fatalf("after Realize: %v, want bound with 2 nodes and a link pending", m)
			}
			if d := ts.deliveries(false); len(d) != 1 || d[0].GetKind() != "materialize" || !strings.Contains(d[0].GetPayload(), `"links":[["a","b"]]`) {
				t.Fatalf("deliveries after Realize: %v", d)
			}
			if n := ts.dispatch(); n != 1 {
				t.Fatalf("dispatched %d, want the materialize delivery", n)
			}
			rz := ts.watchUntil("alice", rid, matState("ready"))
			for _, e := range rz.GetMaterialization().GetElements() {
				if e.GetState() != "ready" || e.GetProvider() != "site1" || e.GetAddress() == "" {
					t.Errorf("element %v, want ready at site1 with an address", e)
				}
			}
			if e := rz.GetMaterialization().GetElements()[2]; e.GetKind() != "link" || e.GetName() != "a~b" || !strings.Contains(e.GetAddress(), "a=10.") {
				t.Errorf("the link: %v, want a~b with a's address", e)
			}

			// Release: dematerializing, resources still held until the site
			// confirms.
			bound := rz.GetBindings()[0].GetResource()
			if _, err := ts.centre.As(t, "alice").Realizations.Release(context.Background(), connect.NewRequest(&trellisv1.ReleaseRequest{Id: rid})); err != nil {
				t.Fatal(err)
			}
			if _, holder := ts.resourceState(bound); holder != rid {
				t.Fatalf("resource %s is held by %q right after release, want %s until the site confirms", bound, holder, rid)
			}
			if n := ts.dispatch(); n != 1 {
				t.Fatalf("dispatched %d, want the dematerialize delivery", n)
			}
			rz = ts.watchUntil("alice", rid, matState("released"))
			if rz.GetState() != "released" {
				t.Errorf("realization state %q after the site confirmed, want released", rz.GetState())
			}
			if st, holder := ts.resourceState(bound); holder != "" || st != "available" {
				t.Errorf("resource %s after release: %s, held by %q; want available and free", bound, st, holder)
			}
			if s, err := drv.Status(context.Background(), rid); err == nil && len(s.Nodes) > 0 {
				t.Errorf("the site still has %v", s)
			}

			// A node that fails to start: failed, with the node's reason.
			drv.FailNode("b", "no power to the rack")
			rid2 := ts.realizeAs("alice", "lab", "ping2", readmeLayout)
			ts.dispatch()
			rz = ts.watchUntil("alice", rid2, matState("failed"))
			if r := rz.GetMaterialization().GetReason(); !strings.Contains(r, "node b") || !strings.Contains(r, "no power to the rack") {
				t.Errorf("reason %q, want node b's", r)
			}
			drv.Heal()

			// The site goes silent while it is to remove it: suspect, the
			// resources not reused; once it answers, released and freed.
			ts.down()
			if _, err := ts.centre.As(t, "alice").Realizations.Release(context.Background(), connect.NewRequest(&trellisv1.ReleaseRequest{Id: rid2})); err != nil {
				t.Fatal(err)
			}
			if n := ts.dispatch(); n != 0 {
				t.Fatalf("dispatched %d to a site that is down", n)
			}
			ts.clock.advance(11 * time.Second)
			if n, err := ts.centre.App.Service.MarkSilentSites(context.Background()); err != nil || n != 1 {
				t.Fatalf("MarkSilentSites = %d, %v; want 1", n, err)
			}
			admin := ts.centre.Admin(t)
			all, err := admin.Realizations.ListAllRealizations(context.Background(), connect.NewRequest(&trellisv1.ListAllRealizationsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			var seen bool
			for _, r := range all.Msg.GetRealizations() {
				if r.GetId() == rid2 {
					seen = r.GetMaterialization().GetSuspect() && r.GetMaterialization().GetState() == "dematerializing"
				}
			}
			if !seen {
				t.Errorf("admins do not see %s suspect and dematerializing: %v", rid2, all.Msg.GetRealizations())
			}
			held := map[string]bool{}
			for _, r := range all.Msg.GetRealizations() {
				if r.GetId() == rid2 {
					for _, b := range r.GetBindings() {
						held[b.GetResource()] = true
						if st, holder := ts.resourceState(b.GetResource()); st != "suspect" || holder != rid2 {
							t.Errorf("resource %s of the silent site: %s held by %q; want suspect, still held", b.GetResource(), st, holder)
						}
					}
				}
			}
			// Nothing suspect is bound again: a new realization gets the
			// two other nodes.
			rz3, err := ts.centre.As(t, "alice").Realizations.Realize(context.Background(), connect.NewRequest(&trellisv1.RealizeRequest{Experiment: "alice:ping", Project: "lab"}))
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range rz3.Msg.GetRealization().GetBindings() {
				if held[b.GetResource()] {
					t.Errorf("suspect resource %s was bound again", b.GetResource())
				}
			}
			ts.up()
			ts.clock.advance(5 * time.Second)
			if n := ts.dispatch(); n != 2 {
				t.Fatalf("dispatched %d once the site was back, want 2 (the waiting dematerialize, then the new materialize)", n)
			}
			rz = ts.watchUntil("alice", rid2, matState("released"))
			if rz.GetMaterialization().GetSuspect() {
				t.Error("still suspect after the site answered")
			}
			for res := range held {
				if st, holder := ts.resourceState(res); st != "available" || holder != "" {
					t.Errorf("resource %s after the site confirmed: %s held by %q", res, st, holder)
				}
			}
		})
	}
}

// TestReportStateRefusesAnotherSite: a site may report only for
// realizations bound to its own resources; the refusal is audited.
func TestReportStateRefusesAnotherSite(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.seedPing()
	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)

	// A second site, registered with the same centre.
	_, otherKey, _ := ed25519.GenerateKey(nil)
	ctx := context.Background()
	add, err := ts.providers(ts.admin).AddProvider(ctx, connect.NewRequest(&trellisv1.AddProviderRequest{Name: "site2", Url: "http://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.providers("").RegisterSite(ctx, connect.NewRequest(&trellisv1.RegisterSiteRequest{
		Token: add.Msg.GetRegistrationToken(), PublicKey: encodeKey(otherKey.Public().(ed25519.PublicKey))})); err != nil {
		t.Fatal(err)
	}
	rz := trellisv1connect.NewRealizationsClient(http.DefaultClient, ts.centre.URL)
	report := func(jwt string, el ...*trellisv1.ElementState) error {
		req := connect.NewRequest(&trellisv1.ReportStateRequest{Realization: rid, Operation: "materialize", Generation: 1, Elements: el, Done: true})
		req.Header().Set("Authorization", "Bearer "+jwt)
		_, err := rz.ReportState(ctx, req)
		return err
	}
	otherJWT := func() string {
		jwt, err := token.SignAssertion(otherKey, "provider:site2", ts.cfg.CentreAudience, ts.clock.now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return jwt
	}
	if err := report(otherJWT(), &trellisv1.ElementState{Kind: "node", Name: "a", State: "ready"}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("site2 reporting for site1's realization: %v, want permission denied", err)
	}
	if err := report(""); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("unsigned report: %v, want unauthenticated", err)
	}
	jwt := ts.siteJWT()
	if err := report(jwt, &trellisv1.ElementState{Kind: "node", Name: "a", State: "ready"}); err != nil {
		t.Errorf("site1's own report: %v", err)
	}
	if err := report(jwt, &trellisv1.ElementState{Kind: "node", Name: "a", State: "ready"}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a replayed report: %v, want unauthenticated", err)
	}
	audit, err := ts.centre.Admin(t).Admin.ListAuditEvents(ctx, connect.NewRequest(&trellisv1.ListAuditEventsRequest{Object: "realization:" + rid}))
	if err != nil {
		t.Fatal(err)
	}
	var refusals []string
	for _, e := range audit.Msg.GetEvents() {
		if e.GetOperation() == "trellis.v1.Realizations/ReportState" && e.GetOutcome() != "ok" {
			refusals = append(refusals, e.GetActor()+": "+e.GetDetail())
		}
	}
	if len(refusals) < 2 || !strings.Contains(strings.Join(refusals, "\n"), "realization of another site") {
		t.Errorf("audited refusals %q, want the other site's and the replay", refusals)
	}
}

// TestMaterializeWithoutDriver: a site configured without a driver refuses
// materialization clearly; the centre fails the delivery and the
// materialization with the site's reason instead of waiting.
func TestMaterializeWithoutDriver(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.withDriver(nil, DriverNone)
	ts.seedPing()
	ts.up()
	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
	if n := ts.dispatch(); n != 0 {
		t.Fatalf("dispatched %d, want the delivery refused", n)
	}
	rz := ts.watchUntil("alice", rid, matState("failed"))
	if r := rz.GetMaterialization().GetReason(); !strings.Contains(r, "no materialization driver") || !strings.Contains(r, "site1") {
		t.Errorf("reason %q, want the site's refusal", r)
	}
	if d := ts.deliveries(true); len(d) != 1 || d[0].GetState() != "failed" {
		t.Errorf("deliveries %v, want the materialize failed", d)
	}
}

// TestMaterializerResumesAfterRestart: a materialize delivery the site
// accepted (recorded) before it stopped is done when it starts again, and
// the centre hears of it.
func TestMaterializerResumesAfterRestart(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.seedPing()
	// The first life: it accepts the delivery and stops before working.
	first := newMaterializer(sim.New(sim.Options{}), DriverSim, ts.state, func(context.Context, *trellisv1.ReportStateRequest) error {
		t.Error("the stopped site reported")
		return nil
	}, ts.audit, slog.New(slog.DiscardHandler))
	first.register(ts.inbox)
	ts.up()
	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
	if n := ts.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want the materialize accepted", n)
	}
	if ids := ts.state.jobIDs(); len(ids) != 1 || ids[0] != rid {
		t.Fatalf("recorded jobs %v, want %s", ids, rid)
	}
	// The second life, on the same state file.
	st, err := openState(filepath.Join(ts.dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	ts.state = st
	ts.withDriver(sim.New(sim.Options{}), DriverSim)
	ts.watchUntil("alice", rid, matState("ready"))
	ts.mat.waitIdle() // the report is sent before the job is forgotten
	if ids := ts.state.jobIDs(); len(ids) != 0 {
		t.Errorf("jobs left after the report: %v", ids)
	}
}

func connectReq(id string) *connect.Request[trellisv1.ReleaseRequest] {
	return connect.NewRequest(&trellisv1.ReleaseRequest{Id: id})
}

// TestChangeExpiryAndForceRelease: a change of bindings is a change
// delivery the site applies (changing -> ready); lease expiry and an
// admin's force release dematerialize first, holding the resources until
// the site confirms.
func TestChangeExpiryAndForceRelease(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.withDriver(sim.New(sim.Options{}), DriverSim)
	for _, n := range []string{"node1", "node2", "node3", "node4", "node5"} {
		ts.centre.AddResource(t, n, "site1", map[string]string{"cores": "8", "arch": "x86_64"})
	}
	ts.centre.NewPowerfulUser(t, "alice", "lab")
	ts.up()
	ctx := context.Background()
	alice := ts.centre.As(t, "alice")
	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
	ts.dispatch()
	rz := ts.watchUntil("alice", rid, matState("ready"))
	var free string
	used := map[string]bool{}
	for _, b := range rz.GetBindings() {
		used[b.GetResource()] = true
	}
	for _, n := range []string{"node3", "node4", "node5"} {
		if !used[n] {
			free = n
			break
		}
	}
	if _, err := alice.Realizations.ChangeBindings(ctx, connect.NewRequest(&trellisv1.ChangeBindingsRequest{Id: rid,
		Bindings: []*trellisv1.Binding{{Element: "b", Resource: free}}})); err != nil {
		t.Fatal(err)
	}
	got, err := alice.Realizations.GetRealization(ctx, connect.NewRequest(&trellisv1.GetRealizationRequest{Id: rid}))
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Msg.GetRealization().GetMaterialization().GetState(); s != "changing" {
		t.Errorf("after ChangeBindings: %s, want changing", s)
	}
	if n := ts.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want the change", n)
	}
	ts.watchUntil("alice", rid, matState("ready"))

	// A second realization for the force release.
	rid2 := ts.realizeAs("alice", "lab", "ping2", readmeLayout)
	ts.dispatch()
	ts.watchUntil("alice", rid2, matState("ready"))

	// The site is down: expiry and force release only queue the work.
	ts.down()
	if _, err := ts.centre.Admin(t).Realizations.ForceRelease(ctx, connect.NewRequest(&trellisv1.ForceReleaseRequest{Id: rid2, Reason: "maintenance"})); err != nil {
		t.Fatal(err)
	}
	ts.clock.advance(25 * time.Hour)
	if n, err := ts.centre.App.Service.ReleaseExpired(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseExpired = %d, %v; want rid's lease to end", n, err)
	}
	if n, err := ts.centre.App.Service.ReleaseExpired(ctx); err != nil || n != 0 {
		t.Errorf("ReleaseExpired again = %d, %v; want nothing (it is releasing already)", n, err)
	}
	for _, id := range []string{rid, rid2} {
		r, err := ts.centre.Admin(t).Realizations.GetRealization(ctx, connect.NewRequest(&trellisv1.GetRealizationRequest{Id: id}))
		if err != nil {
			t.Fatal(err)
		}
		if r.Msg.GetRealization().GetState() != "releasing" || r.Msg.GetRealization().GetMaterialization().GetState() != "dematerializing" {
			t.Errorf("%s: %s/%s, want releasing/dematerializing", id, r.Msg.GetRealization().GetState(), r.Msg.GetRealization().GetMaterialization().GetState())
		}
		for _, b := range r.Msg.GetRealization().GetBindings() {
			if _, holder := ts.resourceState(b.GetResource()); holder != id {
				t.Errorf("resource %s held by %q before the site confirmed, want %s", b.GetResource(), holder, id)
			}
		}
	}
	kinds := map[string]int{}
	for _, d := range ts.deliveries(false) {
		kinds[d.GetKind()]++
	}
	if kinds["dematerialize"] != 2 {
		t.Errorf("pending deliveries by kind %v, want two dematerialize", kinds)
	}
}

// TestReportsRetriedWhileTheCentreIsDown: the site keeps its report until
// the centre takes it.
func TestReportsRetriedWhileTheCentreIsDown(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.withDriver(sim.New(sim.Options{}), DriverSim)
	refusals := 3
	real := ts.mat.report
	ts.mat.report = func(ctx context.Context, r *trellisv1.ReportStateRequest) error {
		if r.Done && refusals > 0 {
			refusals--
			return connect.NewError(connect.CodeUnavailable, errors.New("the centre is down"))
		}
		return real(ctx, r)
	}
	ts.seedPing()
	ts.up()
	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
	ts.dispatch()
	ts.watchUntil("alice", rid, matState("ready"))
	if refusals != 0 {
		t.Errorf("%d refusals left: the report was not retried", refusals)
	}
}

// TestBackgroundDispatch: with the server's own background work (no test
// hook), a realization is materialized: the dispatcher hears of the
// delivery through the change feed and posts it.
func TestBackgroundDispatch(t *testing.T) {
	ts := newTestSite(t, "site1", func(c *app.Config) { c.DeliveryInterval = 0 })
	ts.withDriver(sim.New(sim.Options{}), DriverSim)
	ts.seedPing()
	ts.up()
	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
	ts.watchUntil("alice", rid, matState("ready"))
	if _, err := ts.centre.As(t, "alice").Realizations.Release(context.Background(), connectReq(rid)); err != nil {
		t.Fatal(err)
	}
	ts.watchUntil("alice", rid, matState("released"))
}

// waitIdle waits until no worker runs.
func (m *materializer) waitIdle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.running) > 0 {
		m.idle.Wait()
	}
}
