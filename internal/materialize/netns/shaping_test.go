//go:build linux

package netns

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

func pairPlan(id string, c materialize.Constraints) materialize.Plan {
	return materialize.Plan{
		Realization: id,
		Nodes:       []materialize.Node{{Name: "a"}, {Name: "b"}},
		Links:       []materialize.Link{{Name: "a~b", Endpoints: []materialize.Endpoint{{Node: "a"}, {Node: "b"}}, Constraints: c}},
	}
}

// qdiscTypes lists the qdiscs on node's end of link a~b.
func qdiscTypes(t *testing.T, d *Driver, p materialize.Plan, node string) []string {
	t.Helper()
	o := d.newOp(bg(t), p)
	defer o.close()
	h, _, err := o.handle(d.Namespace(p.Realization, node))
	if err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName(ifName("a~b"))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range qs {
		out = append(out, q.Type()+" "+netlink.HandleStr(q.Attrs().Handle))
	}
	slices.Sort(out)
	return out
}

// TestDelay measures a 50 ms delay: it applies to what each end sends, so
// a ping's round trip crosses it twice and takes 100 ms (within 10%).
func TestDelay(t *testing.T) {
	requireRoot(t)
	ok, err := CanDelay()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		if os.Getenv("TRELLIS_REQUIRE_NETEM") == "true" {
			t.Fatal("this kernel has no netem qdisc and TRELLIS_REQUIRE_NETEM=true")
		}
		t.Skip("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM unset, no module): delay cannot be applied or measured here; TRELLIS_REQUIRE_NETEM=true makes this a failure")
	}
	noLeaks(t)
	d := newDriver(t, nil)
	const delay = 50 * time.Millisecond
	p := pairPlan("r-delay", materialize.Constraints{Delay: delay})
	st, err := d.Materialize(bg(t), p)
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	for _, node := range []string{"a", "b"} {
		if got := qdiscTypes(t, d, p, node); !slices.Equal(got, []string{"netem 1:0"}) {
			t.Errorf("%s's qdiscs: %v", node, got)
		}
	}
	rtt := medianRTT(t, d, "r-delay", "a", addrOf(t, st, "a~b", "b"), 10)
	if want := 2 * delay; rtt < want || rtt > want+want/10 {
		t.Errorf("median round trip %v, want %v to %v (50 ms each way)", rtt, want, want+want/10)
	}
	// Without the constraint the qdisc goes, and so does the delay.
	if _, err := d.Change(bg(t), pairPlan("r-delay", materialize.Constraints{})); err != nil {
		t.Fatal(err)
	}
	if got := qdiscTypes(t, d, p, "a"); slices.Contains(got, "netem 1:0") {
		t.Errorf("netem stayed: %v", got)
	}
	if rtt := medianRTT(t, d, "r-delay", "a", addrOf(t, st, "a~b", "b"), 5); rtt > 10*time.Millisecond {
		t.Errorf("unshaped round trip %v", rtt)
	}
}

func medianRTT(t *testing.T, d *Driver, id, from string, to netip.Addr, n int) time.Duration {
	t.Helper()
	p := newPinger(t, d.Namespace(id, from))
	p.ping(to, 0, 2*time.Second) // neighbour discovery, not measured
	var rtts []time.Duration
	for seq := 1; seq <= n; seq++ {
		rtt, err := p.ping(to, seq, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, rtt)
	}
	slices.Sort(rtts)
	t.Logf("round trips %v", rtts)
	return rtts[len(rtts)/2]
}

// TestRate measures a 10 Mbit/s limit (tbf) with UDP sent at twice that:
// what arrives is 10 Mbit/s of frames, within 10%.
func TestRate(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	d := newDriver(t, nil)
	const rate = 10_000_000 // bit/s
	p := pairPlan("r-rate", materialize.Constraints{Rate: rate})
	st, err := d.Materialize(bg(t), p)
	if err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	if got := qdiscTypes(t, d, p, "a"); !slices.Equal(got, []string{"tbf 1:0"}) {
		t.Errorf("a's qdiscs: %v", got)
	}
	dst := netip.AddrPortFrom(addrOf(t, st, "a~b", "b"), 9999)
	var rx, tx *net.UDPConn
	if err := InNamespace(d.Namespace("r-rate", "b"), func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := InNamespace(d.Namespace("r-rate", "a"), func() (err error) {
		tx, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	const payload = 1400
	const frame = payload + 8 + 20 + 14 // UDP, IPv4 and Ethernet headers: tbf counts frames
	var stop atomic.Bool
	go func() {
		// Twice the rate, paced in 1 ms rounds, for at most 3 s.
		buf := make([]byte, payload)
		perMs := 2 * rate / 8 / frame / 1000
		for start := time.Now(); !stop.Load() && time.Since(start) < 3*time.Second; {
			for range perMs + 1 {
				tx.Write(buf)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer stop.Store(true)

	// Count what arrives over one second, after the bucket's first burst.
	buf := make([]byte, 2048)
	rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := rx.Read(buf); err != nil {
		t.Fatalf("nothing arrives: %v", err)
	}
	warm := time.Now().Add(300 * time.Millisecond)
	end := warm.Add(time.Second)
	var bytes int
	for {
		rx.SetReadDeadline(end)
		n, err := rx.Read(buf)
		if err != nil {
			break
		}
		if time.Now().After(warm) {
			bytes += n
		}
	}
	stop.Store(true)
	got := float64(bytes) / payload * frame * 8 // bit/s of frames over the second
	t.Logf("received %.2f Mbit/s of frames through a %d Mbit/s limit", got/1e6, rate/1_000_000)
	// The limit must hold: never more than the rate (10% for the
	// measurement). How close to it a sender gets depends on the CPU it
	// is given (CI runs packages in parallel under the race detector), so
	// below the rate the test asks only that traffic flows; the benchmark
	// and a quiet run measure the rate itself (10.01 Mbit/s).
	if got > rate*1.1 {
		t.Errorf("throughput %.2f Mbit/s through a %d Mbit/s limit", got/1e6, rate/1_000_000)
	}
	if got < rate*0.1 {
		t.Errorf("throughput %.2f Mbit/s: the shaped link barely passes traffic", got/1e6)
	}

	// A change of the constraint changes the qdisc in place; none removes it.
	slower := pairPlan("r-rate", materialize.Constraints{Rate: rate / 2})
	if _, err := d.Change(bg(t), slower); err != nil {
		t.Fatal(err)
	}
	if r := tbfRate(t, d, slower, "b"); r != rate/2/8 {
		t.Errorf("b's tbf rate after the change: %d bytes/s, want %d", r, rate/2/8)
	}
	if _, err := d.Change(bg(t), pairPlan("r-rate", materialize.Constraints{})); err != nil {
		t.Fatal(err)
	}
	if got := qdiscTypes(t, d, p, "a"); slices.Contains(got, "tbf 1:0") {
		t.Errorf("tbf stayed: %v", got)
	}
}

func tbfRate(t *testing.T, d *Driver, p materialize.Plan, node string) uint64 {
	t.Helper()
	o := d.newOp(bg(t), p)
	defer o.close()
	h, _, err := o.handle(d.Namespace(p.Realization, node))
	if err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName(ifName("a~b"))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if tbf, ok := q.(*netlink.Tbf); ok {
			return tbf.Rate
		}
	}
	return 0
}
