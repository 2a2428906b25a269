//go:build linux

package netns

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// These tests need no privilege.

func TestNames(t *testing.T) {
	x := names{prefix: "trl"}
	long := "a-node-name-of-sixty-three-characters-which-is-the-longest-okay"
	for _, name := range []string{ifName("a~b"), bridgeName("lan0"), portName("lan0", long)} {
		if len(name) > 15 || !ours(name) {
			t.Errorf("%q: %d bytes, ours %v", name, len(name), ours(name))
		}
	}
	for _, name := range []string{"lo", "eth0", "t12345", "tzzzzzzzzzz", "x0123456789"} {
		if ours(name) {
			t.Errorf("%q taken for the driver's", name)
		}
	}
	node, fabric := x.nodeNS("r-1", "fabric"), x.fabricNS("r-1")
	if node == fabric {
		t.Errorf("node fabric and the fabric share %s", node)
	}
	for _, ns := range []string{node, fabric} {
		if tag, ok := x.tagOf(ns); !ok || tag != x.tag("r-1") {
			t.Errorf("tagOf(%s) = %s, %v", ns, tag, ok)
		}
	}
	for _, ns := range []string{"trl-kept", "trl-probe", "other-0123456789ab-fabric"} {
		if _, ok := x.tagOf(ns); ok {
			t.Errorf("tagOf(%s) claims it", ns)
		}
	}
	if x.tag("r-1") == x.tag("r-2") {
		t.Error("two realizations share a tag")
	}
}

func TestWantQdiscs(t *testing.T) {
	kinds := func(qs []netlink.Qdisc) []string {
		var out []string
		for _, q := range qs {
			out = append(out, q.Type()+" "+netlink.HandleStr(q.Attrs().Handle)+" parent "+netlink.HandleStr(q.Attrs().Parent))
		}
		return out
	}
	tests := []struct {
		c    materialize.Constraints
		want []string
	}{
		{materialize.Constraints{}, nil},
		{materialize.Constraints{Delay: 50 * time.Millisecond}, []string{"netem 1:0 parent root"}},
		{materialize.Constraints{Loss: 0.1}, []string{"netem 1:0 parent root"}},
		{materialize.Constraints{Rate: 1e6}, []string{"tbf 1:0 parent root"}},
		{materialize.Constraints{Delay: time.Millisecond, Rate: 1e6}, []string{"netem 1:0 parent root", "tbf 10:0 parent 1:1"}},
	}
	for _, tt := range tests {
		if got := kinds(wantQdiscs(7, tt.c)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.c, got, tt.want)
		}
	}
	tbf := wantQdiscs(7, materialize.Constraints{Rate: 10_000_000})[0].(*netlink.Tbf)
	// 10 Mbit/s is 1.25 MB/s; the queue holds 50 ms of it plus the burst
	// of 5 ms (6,250 bytes, above the four-frame floor).
	if tbf.Rate != 1_250_000 || tbf.Limit != 62_500+6_250 {
		t.Errorf("tbf = %+v", tbf)
	}
	netem := wantQdiscs(7, materialize.Constraints{Loss: 0.25})[0].(*netlink.Netem)
	if netem.Loss != netlink.Percentage2u32(25) || netem.Limit != netemLimit {
		t.Errorf("netem = %+v", netem)
	}
}

func TestJournal(t *testing.T) {
	j := journal{dir: t.TempDir()}
	if r, err := j.read("abc"); r != nil || err != nil {
		t.Fatalf("read of nothing = %v, %v", r, err)
	}
	prev := materialize.Plan{Realization: "r", Nodes: []materialize.Node{{Name: "a"}}}
	want := &record{Realization: "r", Phase: phaseApplying, Plan: benchPlan(), Prev: &prev}
	want.Plan.Links[0].Constraints = materialize.Constraints{Delay: time.Millisecond, Loss: 0.5}
	want.Plan, _ = materialize.Assign(want.Plan, nil)
	if err := j.write("abc", want); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(j.dir, "abc.123.tmp"), []byte("{half"), 0o600) // a crash mid-write
	all, err := j.all()
	if err != nil {
		t.Fatal(err)
	}
	if got := all["abc"]; len(all) != 1 || got.Phase != want.Phase || !got.Plan.Equal(want.Plan) || !got.Prev.Equal(*want.Prev) {
		t.Errorf("read back %+v", all)
	}
	if _, err := os.Stat(filepath.Join(j.dir, "abc.123.tmp")); !os.IsNotExist(err) {
		t.Error("a temporary file survived")
	}
	if err := j.remove("abc"); err != nil {
		t.Fatal(err)
	}
	if r, _ := j.read("abc"); r != nil {
		t.Error("removed record still read")
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a state directory")
	}
	if _, err := New(Options{StateDir: t.TempDir(), Prefix: "Bad-Prefix"}); err == nil {
		t.Error("New with a bad prefix")
	}
}
