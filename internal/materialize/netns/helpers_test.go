//go:build linux

package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// requireRoot skips a test that needs root, saying why, except under
// CI=true, where the tests must run and a missing privilege is a failure.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root: the netns driver creates network namespaces (CAP_SYS_ADMIN) and links and qdiscs (CAP_NET_ADMIN)"
	if os.Getenv("CI") == "true" {
		t.Fatal(why + "; with CI=true these tests must run, not skip")
	}
	t.Skip(why + "; run the tests as root to include them (CI=true turns this skip into a failure)")
}

// testPrefix is a prefix no other test (nor a real driver) uses, so that
// tests never see or sweep each other's namespaces.
func testPrefix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "tt" + hex.EncodeToString(b)
}

// newDriver returns a driver with its own state directory and prefix. When
// the test ends, everything with its prefix is removed, whatever happened.
func newDriver(t testing.TB, obs materialize.Observer) *Driver {
	t.Helper()
	requireRoot(t)
	return openDriver(t, t.TempDir(), testPrefix(), obs)
}

func openDriver(t testing.TB, dir, prefix string, obs materialize.Observer) *Driver {
	t.Helper()
	d, err := New(Options{StateDir: dir, Prefix: prefix, Observer: obs})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		d.Close()
		cleanPrefix(t, prefix)
	})
	return d
}

// cleanPrefix removes every namespace whose name starts with prefix.
func cleanPrefix(t testing.TB, prefix string) {
	left, err := listNS(prefix + "-")
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, ns := range left {
		if err := deleteNS(ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// leftovers lists the driver's namespaces and journal records.
func leftovers(t testing.TB, d *Driver) []string {
	t.Helper()
	out, err := listNS(d.Prefix() + "-")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := d.j.all()
	if err != nil {
		t.Fatal(err)
	}
	for tag := range recs {
		out = append(out, "journal "+tag)
	}
	return out
}

// snapshot is what the host's root namespace and /run/netns hold: after a
// test, it must be what it was before.
type snapshot struct {
	Namespaces, Mounts, Links, Qdiscs, Addrs, Routes []string
}

func takeSnapshot(t testing.TB) snapshot {
	t.Helper()
	var s snapshot
	entries, err := os.ReadDir(runDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		s.Namespaces = append(s.Namespaces, e.Name())
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, runDir) {
			f := strings.Fields(line)
			s.Mounts = append(s.Mounts, f[4])
		}
	}
	links, err := retry(netlink.LinkList)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		s.Links = append(s.Links, l.Type()+" "+l.Attrs().Name)
	}
	qs, err := retry(func() ([]netlink.Qdisc, error) { return netlink.QdiscList(nil) })
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		s.Qdiscs = append(s.Qdiscs, fmt.Sprintf("%d %s %s", q.Attrs().LinkIndex, q.Type(), netlink.HandleStr(q.Attrs().Handle)))
	}
	as, err := retry(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		s.Addrs = append(s.Addrs, fmt.Sprintf("%d %s", a.LinkIndex, a.IPNet))
	}
	rs, err := retry(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		s.Routes = append(s.Routes, r.String())
	}
	for _, l := range [][]string{s.Namespaces, s.Mounts, s.Links, s.Qdiscs, s.Addrs, s.Routes} {
		slices.Sort(l)
	}
	return s
}

// noLeaks registers a check, run when the test ends (after the driver's
// own cleanup has been registered, so before it runs), that the host is
// as it was when noLeaks was called.
func noLeaks(t testing.TB) {
	t.Helper()
	before := takeSnapshot(t)
	t.Cleanup(func() {
		after := takeSnapshot(t)
		for _, c := range []struct {
			what string
			a, b []string
		}{
			{"namespaces in " + runDir, before.Namespaces, after.Namespaces},
			{"mounts on " + runDir, before.Mounts, after.Mounts},
			{"links in the root namespace", before.Links, after.Links},
			{"qdiscs in the root namespace", before.Qdiscs, after.Qdiscs},
			{"addresses in the root namespace", before.Addrs, after.Addrs},
			{"routes in the root namespace", before.Routes, after.Routes},
		} {
			if !slices.Equal(c.a, c.b) {
				t.Errorf("%s changed:\nbefore %q\nafter  %q", c.what, c.a, c.b)
			}
		}
	})
}

// pinger sends ICMP echo requests from inside a namespace, through a raw
// socket opened there (a socket stays in the namespace it was made in).
type pinger struct {
	conn *icmp.PacketConn
	id   int
}

func newPinger(t testing.TB, ns string) *pinger {
	t.Helper()
	var conn *icmp.PacketConn
	err := InNamespace(ns, func() error {
		var err error
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		t.Fatalf("ICMP socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { conn.Close() })
	b := make([]byte, 2)
	rand.Read(b)
	return &pinger{conn: conn, id: int(b[0])<<8 | int(b[1])}
}

// ping sends one echo request to dst and waits up to timeout for its
// reply, returning the round-trip time.
func (p *pinger) ping(dst netip.Addr, seq int, timeout time.Duration) (time.Duration, error) {
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("trellis materialize test")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := p.conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return 0, fmt.Errorf("send to %s: %w", dst, err)
	}
	deadline := start.Add(timeout)
	buf := make([]byte, 1500)
	for {
		p.conn.SetReadDeadline(deadline)
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			return 0, fmt.Errorf("no reply from %s: %w", dst, err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if m.Type == ipv4.ICMPTypeEchoReply && ok && echo.ID == p.id && echo.Seq == seq && from.String() == dst.String() {
			return time.Since(start), nil
		}
	}
}

// reach checks that node from reaches address to, allowing a few tries
// for neighbour discovery.
func reach(t *testing.T, d *Driver, realization, from string, to netip.Addr) {
	t.Helper()
	p := newPinger(t, d.Namespace(realization, from))
	var err error
	for seq := range 3 {
		if _, err = p.ping(to, seq, time.Second); err == nil {
			return
		}
	}
	t.Errorf("%s cannot reach %s: %v", from, to, err)
}

// unreachable checks that node from does not reach address to.
func unreachable(t *testing.T, d *Driver, realization, from string, to netip.Addr) {
	t.Helper()
	p := newPinger(t, d.Namespace(realization, from))
	if _, err := p.ping(to, 0, 300*time.Millisecond); err == nil {
		t.Errorf("%s reaches %s, and should not", from, to)
	}
}

func addrOf(t *testing.T, st materialize.Status, link, node string) netip.Addr {
	t.Helper()
	l, ok := st.Link(link)
	if ok {
		for _, a := range l.Attachments {
			if a.Node == node {
				return a.Address.Addr()
			}
		}
	}
	t.Fatalf("no address for %s on %s in %+v", node, link, st)
	return netip.Addr{}
}

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
