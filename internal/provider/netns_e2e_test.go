//go:build linux

package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/materialize/netns"
)

// requireNetAdmin skips without root, saying why, except under CI=true,
// where this test must run.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root: the netns driver creates network namespaces, veth pairs and qdiscs"
	if os.Getenv("CI") == "true" {
		t.Fatal(why + "; with CI=true this test must run")
	}
	t.Skip(why + " (runs in CI)")
}

// hostNetwork is what the host shows of the test's driver: its namespaces
// (by prefix) and the root namespace's links.
func hostNetwork(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, "netns "+e.Name())
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		out = append(out, "link "+i.Name)
	}
	slices.Sort(out)
	return out
}

// TestNetnsEndToEnd realizes the README's example layout on a site on this
// machine with the netns driver: the centre queues the work, the site
// builds the namespaces and the veth link and reports; the two nodes ping
// each other; release removes everything, and only then are the
// resources freed.
func TestNetnsEndToEnd(t *testing.T) {
	requireNetAdmin(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	prefix := "te" + hex.EncodeToString(b)
	before := hostNetwork(t, prefix)

	d, err := netns.New(netns.Options{StateDir: t.TempDir(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ts := newTestSite(t, "site1")
	ts.withDriver(d, DriverNetns)
	ts.seedPing()
	ts.up()

	rid := ts.realizeAs("alice", "lab", "ping", readmeLayout)
	if n := ts.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want the materialize delivery", n)
	}
	rz := ts.watchUntil("alice", rid, matState("ready"))
	var bAddr string
	for _, e := range rz.GetMaterialization().GetElements() {
		if e.GetKind() == "node" && !strings.HasPrefix(e.GetAddress(), "netns:"+prefix) {
			t.Errorf("node %s at %q, want a namespace of the driver", e.GetName(), e.GetAddress())
		}
		if e.GetKind() == "link" {
			for _, f := range strings.Fields(e.GetAddress()) {
				if a, ok := strings.CutPrefix(f, "b="); ok {
					bAddr, _, _ = strings.Cut(a, "/")
				}
			}
		}
	}
	if bAddr == "" {
		t.Fatalf("no address of b on the link: %v", rz.GetMaterialization())
	}
	if hn := hostNetwork(t, prefix); slices.Equal(hn, before) {
		t.Errorf("nothing was made on the host: %v", hn)
	}
	// a reaches b over the link, from inside a's namespace.
	if out, err := d.Exec(context.Background(), rid, "a", []string{"ip", "-o", "route", "get", bAddr}); err != nil || !strings.Contains(string(out), bAddr) {
		t.Errorf("a's route to b (%s): %v\n%s", bAddr, err, out)
	}

	if _, err := ts.centre.As(t, "alice").Realizations.Release(context.Background(), connectReq(rid)); err != nil {
		t.Fatal(err)
	}
	if n := ts.dispatch(); n != 1 {
		t.Fatalf("dispatched %d, want the dematerialize delivery", n)
	}
	rz = ts.watchUntil("alice", rid, matState("released"))
	if rz.GetState() != "released" {
		t.Errorf("realization %s after the site confirmed", rz.GetState())
	}
	if after := hostNetwork(t, prefix); !slices.Equal(after, before) {
		t.Errorf("left behind on the host:\nbefore %v\nafter  %v", before, after)
	}
}
