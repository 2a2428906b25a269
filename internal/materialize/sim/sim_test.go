package sim_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
	"github.com/trellis-testbed/trellis/internal/materialize/drivertest"
	"github.com/trellis-testbed/trellis/internal/materialize/sim"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T, obs materialize.Observer) materialize.Driver {
			return sim.New(sim.Options{Observer: obs})
		},
		Leftovers: func(t *testing.T, d materialize.Driver) []string { return d.(*sim.Driver).Objects() },
	})
}

// TestNodeFails: a node that will not start fails the materialization,
// names the node and its reason, and leaves nothing behind.
func TestNodeFails(t *testing.T) {
	var rec drivertest.Recorder
	d := sim.New(sim.Options{Observer: rec.Observe})
	d.FailNode("r", "no image for r")
	st, err := d.Materialize(context.Background(), drivertest.Plan(t, "r-1", drivertest.LineLayout))
	var ee *materialize.ElementError
	if !errors.As(err, &ee) || ee.Kind != materialize.KindNode || ee.Name != "r" {
		t.Fatalf("err = %v, want an ElementError on node r", err)
	}
	if n, _ := st.Node("r"); n.State != materialize.StateFailed || n.Reason != "no image for r" {
		t.Errorf("r = %+v", n)
	}
	if n, _ := st.Node("b"); n.State != materialize.StatePending {
		t.Errorf("b = %+v, want pending", n)
	}
	if objs := d.Objects(); len(objs) != 0 {
		t.Errorf("rollback left %v", objs)
	}
	var failed, removed bool
	for _, e := range rec.Take() {
		failed = failed || (e.Name == "r" && e.State == materialize.StateFailed && e.Reason == "no image for r")
		removed = removed || (e.Name == "a" && e.State == materialize.StateRemoved)
	}
	if !failed || !removed {
		t.Errorf("events lack r failed or a removed")
	}
	d.Heal()
	if _, err := d.Materialize(context.Background(), drivertest.Plan(t, "r-1", drivertest.LineLayout)); err != nil {
		t.Errorf("after Heal: %v", err)
	}
}

// TestChangeFailsRollsBack: a failed change returns to the previous plan.
func TestChangeFailsRollsBack(t *testing.T) {
	ctx := context.Background()
	d := sim.New(sim.Options{})
	if _, err := d.Materialize(ctx, drivertest.Plan(t, "r-1", drivertest.LineLayout)); err != nil {
		t.Fatal(err)
	}
	before := d.Objects()
	d.FailLink("b~c", "cable cut")
	_, err := d.Change(ctx, drivertest.Plan(t, "r-1", "nodes: [{name: a}, {name: r}, {name: b}, {name: c}]\nlinks: [[a, r], [r, b], [b, c]]\n"))
	if err == nil {
		t.Fatal("Change succeeded")
	}
	if after := d.Objects(); !slices.Equal(before, after) {
		t.Errorf("objects after failed change %v, want %v", after, before)
	}
	st, _ := d.Status(ctx, "r-1")
	if _, ok := st.Node("c"); ok || !st.Ready() {
		t.Errorf("status after failed change: %+v", st)
	}
}

// TestCrashRecover: a crash mid-way leaves half the work; only Recover is
// served, and it finishes the work.
func TestCrashRecover(t *testing.T) {
	ctx := context.Background()
	for _, steps := range []int{1, 2, 3, 5} {
		d := sim.New(sim.Options{})
		d.CrashAfter(steps)
		_, err := d.Materialize(ctx, drivertest.Plan(t, "r-1", drivertest.LineLayout))
		if !errors.Is(err, sim.ErrCrashed) {
			t.Fatalf("steps %d: err = %v, want ErrCrashed", steps, err)
		}
		if _, err := d.Status(ctx, "r-1"); err != nil {
			t.Fatalf("Status: %v", err)
		}
		if err := d.Dematerialize(ctx, "r-1"); !errors.Is(err, sim.ErrCrashed) {
			t.Errorf("Dematerialize before Recover: %v", err)
		}
		sts, err := d.Recover(ctx)
		if err != nil || len(sts) != 1 || !sts[0].Ready() {
			t.Errorf("steps %d: Recover = %+v, %v", steps, sts, err)
		}
		if len(d.Objects()) != 5 {
			t.Errorf("steps %d: objects %v", steps, d.Objects())
		}
	}
	// A crash while removing: Recover finishes the removal.
	d := sim.New(sim.Options{})
	if _, err := d.Materialize(ctx, drivertest.Plan(t, "r-1", drivertest.LineLayout)); err != nil {
		t.Fatal(err)
	}
	d.CrashAfter(2)
	if err := d.Dematerialize(ctx, "r-1"); !errors.Is(err, sim.ErrCrashed) {
		t.Fatalf("err = %v", err)
	}
	if sts, err := d.Recover(ctx); err != nil || len(sts) != 0 || len(d.Objects()) != 0 {
		t.Errorf("Recover after crashed removal = %+v, %v, objects %v", sts, err, d.Objects())
	}
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	d := sim.New(sim.Options{})
	if _, err := d.Exec(ctx, "r-1", "a", []string{"true"}); !domain.HasCode(err, domain.CodeNotFound) {
		t.Errorf("Exec on nothing: %v", err)
	}
	if _, err := d.Materialize(ctx, drivertest.Plan(t, "r-1", drivertest.LineLayout)); err != nil {
		t.Fatal(err)
	}
	out, err := d.Exec(ctx, "r-1", "a", []string{"echo", "hi"})
	if err != nil || string(out) != "[\"echo\" \"hi\"]\n" {
		t.Errorf("Exec = %q, %v", out, err)
	}
}
