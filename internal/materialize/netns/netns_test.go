//go:build linux

package netns

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
	"github.com/trellis-testbed/trellis/internal/materialize/drivertest"
)

// TestExampleLayout materializes the README's example layout and pings
// across its link.
func TestExampleLayout(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	d := newDriver(t, nil)
	doc, err := os.ReadFile("../../aspect/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := drivertest.Plan(t, "r-example", string(doc))
	st, err := d.Materialize(bg(t), p)
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	reach(t, d, "r-example", "a", addrOf(t, st, "a~b", "b"))
	reach(t, d, "r-example", "b", addrOf(t, st, "a~b", "a"))
	if err := d.Dematerialize(bg(t), "r-example"); err != nil {
		t.Fatalf("Dematerialize: %v", err)
	}
	if left := leftovers(t, d); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestLine materializes a - r - b with r routing, pings end to end, grows
// the line by a node, and removes it all.
func TestLine(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	d := newDriver(t, nil)
	const id = "r-line"
	st, err := d.Materialize(bg(t), drivertest.Plan(t, id, drivertest.LineLayout))
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	reach(t, d, id, "a", addrOf(t, st, "b~r", "b"))
	reach(t, d, id, "b", addrOf(t, st, "a~r", "a"))

	// Only the router forwards.
	for node, want := range map[string]string{"a": "0", "r": "1", "b": "0"} {
		out, err := d.Exec(bg(t), id, node, []string{"cat", "/proc/sys/net/ipv4/ip_forward"})
		if err != nil {
			t.Fatalf("Exec in %s: %v (%s)", node, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("ip_forward in %s = %s, want %s", node, got, want)
		}
	}
	if _, err := d.Exec(bg(t), id, "ghost", []string{"true"}); !domain.HasCode(err, domain.CodeNotFound) {
		t.Errorf("Exec in an unknown node: %v", err)
	}

	// Grow: c behind b; b becomes a router and a reaches c over two hops.
	grown := drivertest.Plan(t, id, "nodes: [{name: a}, {name: r}, {name: b}, {name: c}]\nlinks: [[a, r], [r, b], [b, c]]\n")
	st, err = d.Change(bg(t), grown)
	if err != nil {
		t.Fatalf("Change: %v", err)
	}
	reach(t, d, id, "a", addrOf(t, st, "b~c", "c"))
	reach(t, d, id, "c", addrOf(t, st, "a~r", "a"))

	if err := d.Dematerialize(bg(t), id); err != nil {
		t.Fatalf("Dematerialize: %v", err)
	}
	if left := leftovers(t, d); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestNoRouterNoPath: when r does not route, a has no way to b.
func TestNoRouterNoPath(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	d := newDriver(t, nil)
	p := drivertest.Plan(t, "r-norouter", drivertest.LineLayout)
	p.Nodes[1].Router = false
	st, err := d.Materialize(bg(t), p)
	if err != nil {
		t.Fatal(err)
	}
	reach(t, d, "r-norouter", "a", addrOf(t, st, "a~r", "r"))
	unreachable(t, d, "r-norouter", "a", addrOf(t, st, "b~r", "b"))
}

// TestLAN checks a four-member LAN (a bridge in the fabric namespace)
// with a router out to a fifth node.
func TestLAN(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	d := newDriver(t, nil)
	const id = "r-lan"
	p := materialize.Plan{
		Realization: id,
		Nodes:       []materialize.Node{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "g", Router: true}, {Name: "x"}},
		Links: []materialize.Link{
			{Name: "lan0", Endpoints: []materialize.Endpoint{{Node: "a"}, {Node: "b"}, {Node: "c"}, {Node: "g"}}},
			{Name: "g~x", Endpoints: []materialize.Endpoint{{Node: "g"}, {Node: "x"}}},
		},
	}
	st, err := d.Materialize(bg(t), p)
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	reach(t, d, id, "a", addrOf(t, st, "lan0", "c"))
	reach(t, d, id, "b", addrOf(t, st, "g~x", "x"))
	reach(t, d, id, "x", addrOf(t, st, "lan0", "a"))

	// The bridge and its four ports are in the fabric namespace, and
	// nowhere else.
	o := d.newOp(bg(t), p)
	defer o.close()
	h, _, err := o.handle(d.FabricNamespace(id))
	if err != nil {
		t.Fatal(err)
	}
	br, err := h.LinkByName(bridgeName("lan0"))
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	ports := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports++
		}
	}
	if ports != 4 {
		t.Errorf("bridge has %d ports, want 4", ports)
	}
}

// TestMaterializeTwiceTouchesNothing: a second Materialize leaves every
// interface (same index) and qdisc as it was.
func TestMaterializeTwiceTouchesNothing(t *testing.T) {
	requireRoot(t)
	d := newDriver(t, nil)
	p := drivertest.Plan(t, "r-twice", drivertest.LineLayout)
	p.Links[0].Constraints.Rate = 5_000_000
	if _, err := d.Materialize(bg(t), p); err != nil {
		t.Fatal(err)
	}
	kernel := func() []string {
		var out []string
		o := d.newOp(bg(t), p)
		defer o.close()
		for _, n := range p.Nodes {
			h, _, err := o.handle(d.Namespace("r-twice", n.Name))
			if err != nil {
				t.Fatal(err)
			}
			links, _ := h.LinkList()
			for _, l := range links {
				qs, _ := h.QdiscList(l)
				for _, q := range qs {
					out = append(out, n.Name+" qdisc "+q.Type()+" on "+l.Attrs().Name)
				}
				out = append(out, n.Name+" "+l.Attrs().Name+" index "+strconv.Itoa(l.Attrs().Index))
			}
			rs, _ := h.RouteList(nil, netlink.FAMILY_V4)
			for _, r := range rs {
				out = append(out, n.Name+" route "+r.String())
			}
		}
		slices.Sort(out)
		return out
	}
	before := kernel()
	if !slices.ContainsFunc(before, func(s string) bool { return strings.Contains(s, "qdisc tbf") }) {
		t.Fatalf("no tbf qdisc: %v", before)
	}
	if _, err := d.Materialize(bg(t), p); err != nil {
		t.Fatal(err)
	}
	if after := kernel(); !slices.Equal(before, after) {
		t.Errorf("second Materialize changed the kernel:\nbefore %v\nafter  %v", before, after)
	}
}

// TestStatusAndRepair: a node removed behind the driver's back is reported
// failed, with what is missing; Materialize of the same plan repairs it.
func TestStatusAndRepair(t *testing.T) {
	requireRoot(t)
	d := newDriver(t, nil)
	const id = "r-repair"
	p := drivertest.Plan(t, id, drivertest.LineLayout)
	if _, err := d.Materialize(bg(t), p); err != nil {
		t.Fatal(err)
	}
	if err := deleteNS(d.Namespace(id, "b")); err != nil {
		t.Fatal(err)
	}
	st, err := d.Status(bg(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Node("b"); n.State != materialize.StateFailed || !strings.Contains(n.Reason, "missing") {
		t.Errorf("b = %+v, want failed, missing", n)
	}
	if l, _ := st.Link("b~r"); l.State != materialize.StateFailed {
		t.Errorf("b~r = %+v, want failed", l)
	}
	if n, _ := st.Node("a"); n.State != materialize.StateReady {
		t.Errorf("a = %+v", n)
	}
	st, err = d.Materialize(bg(t), p)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	reach(t, d, id, "a", addrOf(t, st, "b~r", "b"))
	if st, _ := d.Status(bg(t), id); !st.Ready() {
		t.Errorf("after repair: %+v", st)
	}
}

// TestFailureRollsBack: a failure half-way through Materialize removes
// everything; through Change, returns to the previous plan.
func TestFailureRollsBack(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	var rec drivertest.Recorder
	d := newDriver(t, rec.Observe)
	const id = "r-fail"
	d.failpoint = func(k materialize.Kind, name string) error {
		if name == "b~r" || name == "c" {
			return errors.New("injected failure")
		}
		return nil
	}
	st, err := d.Materialize(bg(t), drivertest.Plan(t, id, drivertest.LineLayout))
	var ee *materialize.ElementError
	if !errors.As(err, &ee) || ee.Name != "b~r" {
		t.Fatalf("Materialize = %v, want a failure of link b~r", err)
	}
	if l, _ := st.Link("b~r"); l.State != materialize.StateFailed || l.Reason != "injected failure" {
		t.Errorf("b~r = %+v", l)
	}
	if left := leftovers(t, d); len(left) != 0 {
		t.Errorf("rollback left %v", left)
	}
	if _, err := d.Status(bg(t), id); !domain.HasCode(err, domain.CodeNotFound) {
		t.Errorf("Status after rollback: %v", err)
	}
	var failed, removed bool
	for _, e := range rec.Take() {
		failed = failed || e.Name == "b~r" && e.State == materialize.StateFailed
		removed = removed || e.Name == "a" && e.State == materialize.StateRemoved
	}
	if !failed || !removed {
		t.Error("events lack b~r failed or a removed")
	}

	ok := drivertest.Plan(t, id, "nodes: [{name: a}, {name: b}]\nlinks: [[a, b]]\n")
	if _, err := d.Materialize(bg(t), ok); err != nil {
		t.Fatal(err)
	}
	_, err = d.Change(bg(t), drivertest.Plan(t, id, "nodes: [{name: a}, {name: b}, {name: c}]\nlinks: [[a, b], [b, c]]\n"))
	if !errors.As(err, &ee) || ee.Name != "c" {
		t.Fatalf("Change = %v, want a failure of node c", err)
	}
	st, err = d.Status(bg(t), id)
	if err != nil || !st.Ready() || len(st.Nodes) != 2 {
		t.Errorf("after a failed change: %+v, %v", st, err)
	}
	if nsExists(d.Namespace(id, "c")) {
		t.Error("c's namespace survived the rollback")
	}
	reach(t, d, id, "a", addrOf(t, st, "a~b", "b"))
}

// TestRecoverSweeps: namespaces of the driver's prefix that no journal
// record accounts for are removed, stale mount points too; others stay.
func TestRecoverSweeps(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	d := newDriver(t, nil)
	orphan := d.names.nodeNS("r-forgotten", "a")
	if err := createNS(orphan); err != nil {
		t.Fatal(err)
	}
	stale := d.names.nodeNS("r-forgotten", "b")
	if err := os.WriteFile(nsPath(stale), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	notOurs := d.Prefix() + "-kept"
	if err := createNS(notOurs); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Materialize(bg(t), drivertest.Plan(t, "r-kept", drivertest.LineLayout)); err != nil {
		t.Fatal(err)
	}
	sts, err := d.Recover(bg(t))
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(sts) != 1 || !sts[0].Ready() {
		t.Errorf("Recover = %+v", sts)
	}
	for _, ns := range []string{orphan, stale} {
		if _, err := os.Lstat(nsPath(ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the sweep", ns)
		}
	}
	if !nsExists(notOurs) || !nsExists(d.Namespace("r-kept", "r")) {
		t.Error("the sweep removed what is not an orphan")
	}
}

func TestStateDirLocked(t *testing.T) {
	requireRoot(t)
	d := newDriver(t, nil)
	if _, err := New(Options{StateDir: d.opts.StateDir, Prefix: d.Prefix()}); err == nil {
		t.Error("a second driver opened a locked state directory")
	}
}
