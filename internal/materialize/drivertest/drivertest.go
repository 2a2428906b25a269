// Package drivertest is the conformance suite of materialization drivers:
// every driver runs it, so that the provider module can rely on the same
// behaviour whichever driver a site uses, as storetest does for stores.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
)

// Harness gives the suite fresh drivers.
type Harness struct {
	// New returns a driver with no realizations that reports to obs. The
	// harness removes whatever the driver made when t ends.
	New func(t *testing.T, obs materialize.Observer) materialize.Driver
	// Leftovers lists what the driver made that still exists, in its own
	// terms: empty once every realization is dematerialized.
	Leftovers func(t *testing.T, d materialize.Driver) []string
	// RateOnly says the driver can limit rate but not delay, jitter or
	// loss (a kernel without netem, for the netns driver).
	RateOnly bool
}

// Recorder collects events, safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []materialize.Event
}

// Observe is the Observer to give a driver.
func (r *Recorder) Observe(e materialize.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Take returns the events so far and forgets them.
func (r *Recorder) Take() []materialize.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// LineLayout is a - r - b.
const LineLayout = "nodes: [{name: a}, {name: r}, {name: b}]\nlinks: [[a, r], [r, b]]\n"

// Plan derives a plan from a layout document with every node bound.
func Plan(t testing.TB, realization, layout string) materialize.Plan {
	t.Helper()
	l, err := aspect.ParseLayout([]byte(layout))
	if err != nil {
		t.Fatalf("ParseLayout: %v", err)
	}
	var bs []domain.Binding
	for i, n := range l.Nodes {
		bs = append(bs, domain.Binding{Element: n.Name, Resource: fmt.Sprintf("node%03d", i)})
	}
	p, err := materialize.FromLayout(realization, l, bs)
	if err != nil {
		t.Fatalf("FromLayout: %v", err)
	}
	return p
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"MaterializeLine", testMaterializeLine},
		{"Idempotent", testIdempotent},
		{"OtherPlanRefused", testOtherPlanRefused},
		{"InvalidPlanMakesNothing", testInvalidPlan},
		{"LANAndConstraints", testLAN},
		{"Change", testChange},
		{"ChangeUnknown", testChangeUnknown},
		{"Dematerialize", testDematerialize},
		{"Concurrent", testConcurrent},
		{"RecoverClean", testRecoverClean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func addr(st materialize.Status, link, node string) netip.Prefix {
	l, _ := st.Link(link)
	for _, a := range l.Attachments {
		if a.Node == node {
			return a.Address
		}
	}
	return netip.Prefix{}
}

func mustReady(t *testing.T, st materialize.Status) {
	t.Helper()
	if !st.Ready() {
		t.Fatalf("not ready: %+v", st)
	}
}

func testMaterializeLine(t *testing.T, h Harness) {
	var rec Recorder
	d := h.New(t, rec.Observe)
	p := Plan(t, "r-line", LineLayout)
	st, err := d.Materialize(ctx(t), p)
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	mustReady(t, st)
	if n, _ := st.Node("r"); !n.Router || n.Location == "" {
		t.Errorf("r = %+v, want a router with a location", n)
	}
	if n, _ := st.Node("a"); n.Router {
		t.Errorf("a routes")
	}
	for _, c := range []struct{ link, node, want string }{
		{"a~r", "a", "10.0.0.1/24"}, {"a~r", "r", "10.0.0.2/24"},
		{"b~r", "r", "10.0.1.1/24"}, {"b~r", "b", "10.0.1.2/24"},
	} {
		if got := addr(st, c.link, c.node); got.String() != c.want {
			t.Errorf("%s/%s = %s, want %s", c.link, c.node, got, c.want)
		}
	}
	again, err := d.Status(ctx(t), "r-line")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(st) {
		t.Errorf("Status = %+v\nMaterialize said %+v", again, st)
	}
	// Every element went creating -> ready, and nothing else happened.
	seen := map[string][]materialize.State{}
	for _, e := range rec.Take() {
		if e.Realization != "r-line" {
			t.Errorf("event for %s", e.Realization)
		}
		key := string(e.Kind) + " " + e.Name
		seen[key] = append(seen[key], e.State)
	}
	for _, key := range []string{"node a", "node r", "node b", "link a~r", "link b~r"} {
		if !slices.Equal(seen[key], []materialize.State{materialize.StateCreating, materialize.StateReady}) {
			t.Errorf("%s went through %v, want creating, ready", key, seen[key])
		}
	}
}

func testIdempotent(t *testing.T, h Harness) {
	var rec Recorder
	d := h.New(t, rec.Observe)
	p := Plan(t, "r-idem", LineLayout)
	first, err := d.Materialize(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	rec.Take()
	second, err := d.Materialize(ctx(t), p)
	if err != nil {
		t.Fatalf("second Materialize: %v", err)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Errorf("second Materialize = %+v\nfirst %+v", second, first)
	}
	if ev := rec.Take(); len(ev) != 0 {
		t.Errorf("second Materialize did something: %+v", ev)
	}
}

func testOtherPlanRefused(t *testing.T, h Harness) {
	d := h.New(t, nil)
	if _, err := d.Materialize(ctx(t), Plan(t, "r-other", LineLayout)); err != nil {
		t.Fatal(err)
	}
	_, err := d.Materialize(ctx(t), Plan(t, "r-other", "nodes: [{name: a}]"))
	if !domain.HasCode(err, domain.CodeFailedPrecondition) {
		t.Errorf("Materialize with another plan: %v, want failed precondition", err)
	}
}

func testInvalidPlan(t *testing.T, h Harness) {
	d := h.New(t, nil)
	p := Plan(t, "r-bad", LineLayout)
	p.Links[1].Endpoints[1].Node = "ghost"
	p.Links[0].Constraints.Loss = 3
	_, err := d.Materialize(ctx(t), p)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalidArgument || len(de.Violations) != 2 {
		t.Fatalf("Materialize(invalid) = %v, want invalid argument with 2 violations", err)
	}
	if _, err := d.Status(ctx(t), "r-bad"); !domain.HasCode(err, domain.CodeNotFound) {
		t.Errorf("Status after refusal: %v, want not found", err)
	}
	if left := h.Leftovers(t, d); len(left) != 0 {
		t.Errorf("a refused plan left %v", left)
	}
}

func testLAN(t *testing.T, h Harness) {
	d := h.New(t, nil)
	p := materialize.Plan{
		Realization: "r-lan",
		Nodes:       []materialize.Node{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "g", Router: true}, {Name: "x"}},
		Links: []materialize.Link{
			{Name: "lan0", Endpoints: []materialize.Endpoint{{Node: "a"}, {Node: "b"}, {Node: "c"}, {Node: "g"}},
				Constraints: materialize.Constraints{Delay: 2 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.001, Rate: 100_000_000}},
			{Name: "g~x", Endpoints: []materialize.Endpoint{
				{Node: "g", Address: netip.MustParsePrefix("192.168.9.1/30")}, {Node: "x", Address: netip.MustParsePrefix("192.168.9.2/30")}},
				Constraints: materialize.Constraints{Rate: 1_000_000}},
		},
	}
	if h.RateOnly {
		if _, err := d.Materialize(ctx(t), p); !domain.HasCode(err, domain.CodeFailedPrecondition) {
			t.Errorf("Materialize with delay on a rate-only driver: %v, want failed precondition", err)
		}
		p.Links[0].Constraints = materialize.Constraints{Rate: 100_000_000}
	}
	st, err := d.Materialize(ctx(t), p)
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	mustReady(t, st)
	if got := addr(st, "lan0", "c").String(); got != "10.0.0.3/24" {
		t.Errorf("lan0/c = %s", got)
	}
	if got := addr(st, "g~x", "x").String(); got != "192.168.9.2/30" {
		t.Errorf("g~x/x = %s", got)
	}
	if l, _ := st.Link("lan0"); l.Constraints != p.Links[0].Constraints || l.Subnet.String() != "10.0.0.0/24" || len(l.Attachments) != 4 {
		t.Errorf("lan0 = %+v", l)
	}
}

func testChange(t *testing.T, h Harness) {
	var rec Recorder
	d := h.New(t, rec.Observe)
	first, err := d.Materialize(ctx(t), Plan(t, "r-chg", LineLayout))
	if err != nil {
		t.Fatal(err)
	}
	rec.Take()
	// Add c behind b (b becomes a router).
	grown := Plan(t, "r-chg", "nodes: [{name: a}, {name: r}, {name: b}, {name: c}]\nlinks: [[a, r], [r, b], [b, c]]\n")
	st, err := d.Change(ctx(t), grown)
	if err != nil {
		t.Fatalf("Change (add c): %v", err)
	}
	mustReady(t, st)
	if addr(st, "a~r", "a") != addr(first, "a~r", "a") || addr(st, "b~r", "b") != addr(first, "b~r", "b") {
		t.Errorf("Change renumbered kept links: %+v", st)
	}
	if n, ok := st.Node("c"); !ok || n.State != materialize.StateReady {
		t.Errorf("c = %+v", n)
	}
	if n, _ := st.Node("b"); !n.Router {
		t.Errorf("b does not route after gaining a second link")
	}
	var created []string
	for _, e := range rec.Take() {
		if e.State == materialize.StateCreating {
			created = append(created, string(e.Kind)+" "+e.Name)
		}
	}
	if !slices.Equal(created, []string{"node c", "link b~c"}) {
		t.Errorf("Change created %v, want only node c and link b~c", created)
	}
	// Remove a.
	shrunk := Plan(t, "r-chg", "nodes: [{name: r}, {name: b}, {name: c}]\nlinks: [[r, b], [b, c]]\n")
	shrunk.Nodes[1].Router = true
	st, err = d.Change(ctx(t), shrunk)
	if err != nil {
		t.Fatalf("Change (remove a): %v", err)
	}
	mustReady(t, st)
	if _, ok := st.Node("a"); ok {
		t.Error("a still reported")
	}
	if _, ok := st.Link("a~r"); ok {
		t.Error("a~r still reported")
	}
	var removed []string
	for _, e := range rec.Take() {
		if e.State == materialize.StateRemoved {
			removed = append(removed, string(e.Kind)+" "+e.Name)
		}
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"link a~r", "node a"}) {
		t.Errorf("Change removed %v, want link a~r and node a", removed)
	}
}

func testChangeUnknown(t *testing.T, h Harness) {
	d := h.New(t, nil)
	if _, err := d.Change(ctx(t), Plan(t, "r-none", LineLayout)); !domain.HasCode(err, domain.CodeNotFound) {
		t.Errorf("Change of nothing: %v, want not found", err)
	}
}

func testDematerialize(t *testing.T, h Harness) {
	d := h.New(t, nil)
	if _, err := d.Materialize(ctx(t), Plan(t, "r-gone", LineLayout)); err != nil {
		t.Fatal(err)
	}
	if err := d.Dematerialize(ctx(t), "r-gone"); err != nil {
		t.Fatalf("Dematerialize: %v", err)
	}
	if _, err := d.Status(ctx(t), "r-gone"); !domain.HasCode(err, domain.CodeNotFound) {
		t.Errorf("Status after Dematerialize: %v, want not found", err)
	}
	if err := d.Dematerialize(ctx(t), "r-gone"); err != nil {
		t.Errorf("second Dematerialize: %v", err)
	}
	if left := h.Leftovers(t, d); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	d := h.New(t, nil)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			id := fmt.Sprintf("r-conc%d", i)
			if _, err := d.Materialize(ctx(t), Plan(t, id, LineLayout)); err != nil {
				errs[i] = err
				return
			}
			errs[i] = d.Dematerialize(ctx(t), id)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if left := h.Leftovers(t, d); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func testRecoverClean(t *testing.T, h Harness) {
	d := h.New(t, nil)
	if _, err := d.Materialize(ctx(t), Plan(t, "r-rec", LineLayout)); err != nil {
		t.Fatal(err)
	}
	sts, err := d.Recover(ctx(t))
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(sts) != 1 || sts[0].Realization != "r-rec" || !sts[0].Ready() {
		t.Errorf("Recover = %+v, want r-rec ready", sts)
	}
}
