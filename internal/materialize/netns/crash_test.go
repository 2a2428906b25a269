//go:build linux

package netns

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// The kill -9 test re-runs the test binary as a child that materializes
// (or dematerializes) a line of nodes and prints every event; the parent
// kills it with SIGKILL after a given number of events, then recovers.

const (
	childDir    = "TRELLIS_NETNS_CHILD_DIR"
	childPrefix = "TRELLIS_NETNS_CHILD_PREFIX"
	childMode   = "TRELLIS_NETNS_CHILD_MODE"
	crashRealm  = "r-crash"
	crashNodes  = 20
)

func TestMain(m *testing.M) {
	if os.Getenv(childDir) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// crashPlan is a line n0 - n1 - ... - n19, every inner node a router.
func crashPlan() materialize.Plan {
	p := materialize.Plan{Realization: crashRealm}
	for i := range crashNodes {
		p.Nodes = append(p.Nodes, materialize.Node{Name: fmt.Sprintf("n%d", i), Router: i > 0 && i < crashNodes-1})
		if i > 0 {
			a, b := fmt.Sprintf("n%d", i-1), fmt.Sprintf("n%d", i)
			p.Links = append(p.Links, materialize.Link{Name: materialize.LinkName(a, b), Endpoints: []materialize.Endpoint{{Node: a}, {Node: b}}})
		}
	}
	return p
}

// child is the process the test kills.
func child() int {
	ctx := context.Background()
	d, err := New(Options{StateDir: os.Getenv(childDir), Prefix: os.Getenv(childPrefix)})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if os.Getenv(childMode) == "remove" {
		if _, err := d.Materialize(ctx, crashPlan()); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	d.opts.Observer = func(e materialize.Event) { fmt.Println("event", e.Kind, e.Name, e.State) }
	if os.Getenv(childMode) == "remove" {
		err = d.Dematerialize(ctx, crashRealm)
	} else {
		_, err = d.Materialize(ctx, crashPlan())
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("done")
	time.Sleep(time.Minute) // the parent kills it before this ends
	return 0
}

// runAndKill starts the child and kills it after `after` events, returning
// how many it saw and whether the child finished before it was killed.
func runAndKill(t *testing.T, dir, prefix, mode string, after int) (int, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDir+"="+dir, childPrefix+"="+prefix, childMode+"="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
		}
		cmd.Wait()
	}()
	events, done := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatalf("child: %s", line)
		}
		if line == "done" {
			done = true
		} else {
			events++
		}
		if done || events == after {
			break
		}
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	killed = true
	return events, done
}

// TestKill9 kills a materialization, and a dematerialization, at several
// points with SIGKILL; Recover must end each in a complete or a clean state
// and leave nothing else behind.
func TestKill9(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	cases := []struct {
		mode  string
		after int // events before the kill
	}{
		{"make", 1}, {"make", 17}, {"make", 45}, {"make", 75},
		{"remove", 1}, {"remove", 30},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/after%d", c.mode, c.after), func(t *testing.T) {
			dir, prefix := t.TempDir(), testPrefix()
			t.Cleanup(func() { cleanPrefix(t, prefix) })
			events, done := runAndKill(t, dir, prefix, c.mode, c.after)
			left, _ := listNS(prefix + "-")
			t.Logf("killed after %d events (finished: %v), leaving %d namespaces", events, done, len(left))

			d := openDriver(t, dir, prefix, nil)
			sts, err := d.Recover(bg(t))
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			switch len(sts) {
			case 0: // clean: nothing may be left
				if c.mode == "make" {
					t.Logf("recovered to a clean state")
				}
				if left := leftovers(t, d); len(left) != 0 {
					t.Errorf("clean state, but left %v", left)
				}
			case 1: // complete: ready, and working end to end
				if c.mode == "remove" {
					t.Fatalf("a removal came back: %+v", sts[0])
				}
				if !sts[0].Ready() {
					t.Fatalf("recovered but not ready: %+v", sts[0])
				}
				last := fmt.Sprintf("n%d", crashNodes-1)
				reach(t, d, crashRealm, "n0", addrOf(t, sts[0], materialize.LinkName(fmt.Sprintf("n%d", crashNodes-2), last), last))
				if err := d.Dematerialize(bg(t), crashRealm); err != nil {
					t.Fatal(err)
				}
				if left := leftovers(t, d); len(left) != 0 {
					t.Errorf("left %v", left)
				}
			default:
				t.Fatalf("Recover = %+v", sts)
			}
		})
	}
}
