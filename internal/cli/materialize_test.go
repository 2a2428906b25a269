package cli

import (
	"strings"
	"sync"
	"testing"
	"time"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// A realization whose resources belong to a registered site: show prints
// the materialization with each node and link, admins see the delivery
// queued for the site, and the listings say the materialization's state.
func TestMaterializationShownAndQueued(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	ops := as(t, srv, "ops")
	r := ops.run("", "admin", "provider", "add", "site1", "--url", "https://site1.example.org:7800")
	if r.code != 0 {
		t.Fatalf("provider add: %+v", r)
	}
	srv.RegisterSite(t, r.out)
	for _, n := range []string{"n1", "n2"} {
		srv.AddResource(t, n, "site1", map[string]string{"cores": "8", "arch": "x86_64"})
	}
	newExperiment(t, srv, "alice:ping")
	rz := realize(t, srv, "alice:ping")
	alice := as(t, srv, "alice")
	r = alice.run("", "realization", "show", rz.GetId())
	for _, w := range []string{"materialization: bound\n", "KIND  NAME  SITE   STATE    ADDRESS  REASON\n", "node  a     site1  pending  -        -\n", "link  a~b   site1  pending"} {
		if r.code != 0 || !strings.Contains(r.out, w) {
			t.Errorf("realization show lacks %q:\n%s%s", w, r.out, r.err)
		}
	}
	r = ops.run("", "admin", "provider", "deliveries", "site1")
	if r.code != 0 || !strings.Contains(r.out, "site1  materialize  pending") {
		t.Errorf("admin provider deliveries:\n%s%s", r.out, r.err)
	}
	r = ops.run("", "admin", "realizations")
	if r.code != 0 || !strings.Contains(r.out, "allocated/bound") {
		t.Errorf("admin realizations lacks the materialization state:\n%s%s", r.out, r.err)
	}
	if r := alice.run("", "admin", "provider", "deliveries"); r.code == 0 {
		t.Errorf("a user listed the deliveries: %+v", r)
	}
}

// realization watch prints the realization now and at each change, and
// ends when it is released.
func TestRealizationWatch(t *testing.T) {
	t.Parallel()
	srv := testbed(t, 2)
	newExperiment(t, srv, "alice:ping")
	rz := realize(t, srv, "alice:ping")
	alice := as(t, srv, "alice")
	first := make(chan struct{})
	var once sync.Once
	out := &syncBuffer{onWrite: func(s string) {
		if strings.Contains(s, rz.GetId()+" allocated") {
			once.Do(func() { close(first) })
		}
	}}
	errs := &syncBuffer{}
	root := NewRoot(Streams{In: strings.NewReader(""), Out: out, Err: errs})
	root.SetArgs([]string{"--server", alice.server, "--config-dir", alice.dir, "realization", "watch", rz.GetId()})
	codes := make(chan int, 1)
	go func() { codes <- reportError(errs, root.ExecuteContext(t.Context())) }()
	select {
	case <-first:
	case code := <-codes:
		t.Fatalf("watch ended (%d) before printing: %s", code, errs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("watch printed nothing")
	}
	must(srv.As(t, "alice").Realizations.Release(bg, req(&trellisv1.ReleaseRequest{Id: rz.GetId()})))(t)
	select {
	case code := <-codes:
		if code != 0 || !strings.Contains(out.String(), rz.GetId()+" released") {
			t.Errorf("watch ended %d:\n%s%s", code, out.String(), errs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end when the realization was released")
	}
}
