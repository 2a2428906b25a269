package topology_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/transport/portal/topology"
)

// shapes are graphs of the kinds experiments have, at the sizes the
// portal must draw readably.
func shapes() map[string]topology.Graph {
	chain := func(n int) topology.Graph {
		var g topology.Graph
		for i := range n {
			g.Nodes = append(g.Nodes, fmt.Sprintf("n%d", i))
			if i > 0 {
				g.Links = append(g.Links, [2]string{fmt.Sprintf("n%d", i-1), fmt.Sprintf("n%d", i)})
			}
		}
		return g
	}
	star := func(n int) topology.Graph {
		g := topology.Graph{Nodes: []string{"hub"}}
		for i := 1; i < n; i++ {
			g.Nodes = append(g.Nodes, fmt.Sprintf("leaf-with-a-long-name-%03d", i))
			g.Links = append(g.Links, [2]string{"hub", g.Nodes[i]})
		}
		return g
	}
	mesh := func(side int) topology.Graph {
		var g topology.Graph
		name := func(r, c int) string { return fmt.Sprintf("m%d-%d", r, c) }
		for r := range side {
			for c := range side {
				g.Nodes = append(g.Nodes, name(r, c))
				if r > 0 {
					g.Links = append(g.Links, [2]string{name(r-1, c), name(r, c)})
				}
				if c > 0 {
					g.Links = append(g.Links, [2]string{name(r, c-1), name(r, c)})
				}
			}
		}
		return g
	}
	lans := topology.Graph{Nodes: []string{"a", "b", "c", "d", "router"}, Links: [][2]string{{"router", "d"}},
		LANs: []topology.LAN{{Name: "lan0", Members: []string{"a", "b", "c", "router"}}}}
	return map[string]topology.Graph{
		"one": {Nodes: []string{"solo"}}, "pair": chain(2), "chain200": chain(200), "star200": star(200),
		"mesh196": mesh(14), "lan": lans, "isolated200": {Nodes: chain(200).Nodes},
	}
}

// The picture has one node symbol per node of the graph, one line per
// link, and no two labels overlap (every vertex has its own cell).
func TestDrawCountsAndNoOverlap(t *testing.T) {
	for name, g := range shapes() {
		t.Run(name, func(t *testing.T) {
			svg := topology.Draw(g)
			if got := bytes.Count(svg, []byte(`<g class="node">`)); got != len(g.Nodes) {
				t.Errorf("%d node symbols, want %d", got, len(g.Nodes))
			}
			if got := bytes.Count(svg, []byte(`<g class="lan">`)); got != len(g.LANs) {
				t.Errorf("%d LAN bars, want %d", got, len(g.LANs))
			}
			members := 0
			for _, l := range g.LANs {
				members += len(l.Members)
			}
			if got := bytes.Count(svg, []byte(`<line `)); got != len(g.Links)+members {
				t.Errorf("%d lines, want %d", got, len(g.Links)+members)
			}
			wellFormed(t, svg)
			d := topology.Place(g)
			for i, a := range d.Vertices {
				if a.X < 0 || a.Y < 0 || a.X > d.Width || a.Y > d.Height {
					t.Fatalf("%s at (%d,%d) outside %dx%d", a.Name, a.X, a.Y, d.Width, d.Height)
				}
				ax0, ay0, ax1, ay1 := d.LabelBox(a)
				if w := float64(len([]rune(a.Label))) * 0.62 * 11; w > ax1-ax0 {
					t.Fatalf("label %q is %.0f wide, its box %.0f", a.Label, w, ax1-ax0)
				}
				for _, b := range d.Vertices[i+1:] {
					bx0, by0, bx1, by1 := d.LabelBox(b)
					if ax0 < bx1 && bx0 < ax1 && ay0 < by1 && by0 < ay1 {
						t.Fatalf("labels of %s (%d,%d) and %s (%d,%d) overlap", a.Name, a.X, a.Y, b.Name, b.X, b.Y)
					}
				}
			}
			// Readable at natural size: the picture of 200 nodes is not a
			// strip (a chain drawn on one line would be 25,000 px wide).
			if len(g.Nodes) >= 100 && (d.Width > 4*d.Height || d.Height > 2*d.Width) {
				t.Errorf("%dx%d is a strip", d.Width, d.Height)
			}
		})
	}
}

func wellFormed(t *testing.T, svg []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
}

// Names are text, never markup: a name with markup characters is escaped
// in its label and its tooltip.
func TestDrawEscapes(t *testing.T) {
	evil := `<script>alert("x")</script>&`
	svg := topology.Draw(topology.Graph{Nodes: []string{evil, "b"}, Links: [][2]string{{evil, "b"}}, LANs: []topology.LAN{{Name: "<lan>", Members: []string{"b"}}}})
	for _, bad := range []string{"<script", `"x"`, "<lan>"} {
		if bytes.Contains(svg, []byte(bad)) {
			t.Errorf("unescaped %q in\n%s", bad, svg)
		}
	}
	if !bytes.Contains(svg, []byte("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;")) {
		t.Errorf("the escaped name is not in the tooltip:\n%s", svg)
	}
	wellFormed(t, svg)
}

// The same graph gives the same bytes, so pictures may be cached by
// content and reviewed as diffs.
func TestDrawDeterministic(t *testing.T) {
	for name, g := range shapes() {
		if a, b := topology.Draw(g), topology.Draw(g); !bytes.Equal(a, b) {
			t.Errorf("%s: two drawings differ", name)
		}
	}
}

// A layout becomes the graph: every node and link of every part.
func TestFromLayout(t *testing.T) {
	l := aspect.LayoutOf([]aspect.Part{
		{Name: "main", Content: dataset.Layout(200)},
		{Name: "extra", Content: []byte("nodes: [{name: x}, {name: y}]\nlinks: [[x, n0], [y, x]]\n")},
		{Name: "broken", Content: []byte("nodes: [")},
	})
	g := topology.FromLayout(l)
	if len(g.Nodes) != 202 || len(g.Links) != 201 {
		t.Fatalf("%d nodes, %d links; want 202 and 201", len(g.Nodes), len(g.Links))
	}
	svg := topology.Draw(g)
	if got := bytes.Count(svg, []byte(`<g class="node">`)); got != 202 {
		t.Errorf("%d nodes drawn", got)
	}
	if !strings.Contains(string(svg), "Topology: 202 nodes, 201 links") {
		t.Errorf("title: %s", svg[:300])
	}
}

// Past MaxVertices the picture says it is too large rather than weigh
// megabytes.
func TestDrawTooLarge(t *testing.T) {
	g := topology.Graph{}
	for i := range topology.MaxVertices + 1 {
		g.Nodes = append(g.Nodes, fmt.Sprintf("n%d", i))
	}
	svg := topology.Draw(g)
	if !bytes.Contains(svg, []byte("too many to draw")) || len(svg) > 1000 {
		t.Errorf("%d bytes: %s", len(svg), svg)
	}
}

// BenchmarkDraw measures a drawing at the sizes an experiment page shows
// (the portal's goal is a page under 20 ms; drawings are also cached by
// content):
//
//	go test -run '^$' -bench Draw ./internal/transport/portal/topology/
func BenchmarkDraw(b *testing.B) {
	for _, name := range []string{"chain200", "star200", "mesh196"} {
		g := shapes()[name]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				topology.Draw(g)
			}
		})
	}
}
