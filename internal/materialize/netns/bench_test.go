//go:build linux

package netns

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// benchPlan is 100 nodes and 150 links: a ring, and a chord from every
// node to the one opposite. Every node has three links, so every node
// routes, and every node gets a route to each of the 147 subnets it is
// not on (14,700 routes in all).
func benchPlan() materialize.Plan {
	const n = 100
	p := materialize.Plan{Realization: "r-bench"}
	name := func(i int) string { return fmt.Sprintf("n%02d", i%n) }
	for i := range n {
		p.Nodes = append(p.Nodes, materialize.Node{Name: name(i), Router: true})
	}
	link := func(a, b string) {
		p.Links = append(p.Links, materialize.Link{Name: materialize.LinkName(a, b), Endpoints: []materialize.Endpoint{{Node: a}, {Node: b}}})
	}
	for i := range n {
		link(name(i), name(i+1))
	}
	for i := range n / 2 {
		link(name(i), name(i+n/2))
	}
	return p
}

// BenchmarkMaterialize100 materializes and dematerializes benchPlan,
// reporting each half's seconds, and checks that nothing is left.
func BenchmarkMaterialize100(b *testing.B) {
	requireRoot(b)
	noLeaks(b)
	d := newDriver(b, nil)
	p := benchPlan()
	if len(p.Links) != 150 {
		b.Fatalf("%d links", len(p.Links))
	}
	ctx := context.Background()
	var make, remove time.Duration
	runs := 0
	for b.Loop() {
		start := time.Now()
		st, err := d.Materialize(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		make += time.Since(start)
		if !st.Ready() {
			b.Fatalf("not ready: %+v", st)
		}
		start = time.Now()
		if err := d.Dematerialize(ctx, p.Realization); err != nil {
			b.Fatal(err)
		}
		remove += time.Since(start)
		runs++
		if left := leftovers(b, d); len(left) != 0 {
			b.Fatalf("left behind: %v", left)
		}
	}
	b.ReportMetric(make.Seconds()/float64(runs), "materialize-s")
	b.ReportMetric(remove.Seconds()/float64(runs), "dematerialize-s")
}
