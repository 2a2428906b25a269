// Package topology draws an experiment's topology as SVG, on the server, so
// that a page shows the picture without any script.
//
// The drawing is deterministic (the same graph always gives the same
// bytes, so it can be cached by content and compared in tests) and stays
// readable at a few hundred nodes:
//
//  1. a force-directed layout (Fruchterman and Reingold, 1991) from a
//     seeded start, with a bounded number of iterations, gives each vertex
//     a position that keeps neighbours close and the rest apart;
//  2. the positions are snapped to a grid of cells, each one wide enough
//     for the longest label drawn, every vertex in its own cell (the one
//     nearest its position that is still free), and empty rows and columns
//     are removed. So no two labels overlap, whatever the graph.
//
// A LAN is a vertex of its own, drawn as a bar that its members are wired
// to. The SVG has a viewBox, so it scales; its width and height are its
// natural size, at which the labels are 11 px.
package topology

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/aspect"
)

// Graph is what is drawn: nodes, point-to-point links and LANs.
type Graph struct {
	Nodes []string
	// Links join two nodes; a link naming an unknown node is not drawn.
	Links [][2]string
	LANs  []LAN
}

// LAN joins its members on one segment.
type LAN struct {
	Name    string
	Members []string
}

// FromLayout is the graph of a layout. The layout format has only
// point-to-point links so far, so it has no LANs.
func FromLayout(l *aspect.Layout) Graph {
	var g Graph
	if l == nil {
		return g
	}
	g.Nodes = make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		g.Nodes[i] = n.Name
	}
	g.Links = make([][2]string, len(l.Links))
	for i, k := range l.Links {
		g.Links[i] = [2]string{k.A, k.B}
	}
	return g
}

// Geometry of a cell, in SVG user units (px at natural size).
const (
	// MaxLabel is how many characters of a name are drawn; a longer name
	// is cut with an ellipsis and given whole in the vertex's tooltip.
	MaxLabel = 16
	fontSize = 11
	// charWidth bounds a monospace character's advance at fontSize (0.6
	// em for the common monospace faces).
	charWidth = 0.62 * fontSize
	// A cell is as wide as the drawing's longest label and a margin, and
	// no narrower than minCell: short names make a compact picture.
	labelMargin = 16
	minCell     = 64
	CellHeight  = 56
	margin      = 16
	radius      = 8
	barHeight   = 10
)

// MaxVertices bounds what is drawn: past it a picture is no longer
// readable and its SVG would weigh megabytes, so Draw says so instead.
const MaxVertices = 2000

// maxForceVertices bounds the force-directed step, which costs the square
// of the vertex count per iteration; larger graphs keep their start.
const maxForceVertices = 600

// Kind tells a node from a LAN.
type Kind int

const (
	KindNode Kind = iota
	KindLAN
)

// Vertex is a placed node or LAN: the centre of its cell.
type Vertex struct {
	Name  string
	Kind  Kind
	X, Y  int
	Label string
}

// LabelBox is the rectangle a vertex's label may take: its cell, less a
// margin on each side. Cells do not overlap, so neither do labels.
func (d *Drawing) LabelBox(v Vertex) (x0, y0, x1, y1 float64) {
	return float64(v.X) - float64(d.CellWidth)/2 + 2, float64(v.Y) - float64(CellHeight)/2 + 2,
		float64(v.X) + float64(d.CellWidth)/2 - 2, float64(v.Y) + float64(CellHeight)/2 - 2
}

// Drawing is a placed graph.
type Drawing struct {
	Vertices      []Vertex
	Edges         [][2]int // indexes into Vertices
	Width, Height int
	// CellWidth is the width of every vertex's cell.
	CellWidth int
	// Nodes and Links count the graph's nodes and links (LAN members
	// included as links), for the picture's title.
	Nodes, Links, LANs int
}

// Place lays a graph out. It returns nil when the graph has more than
// MaxVertices nodes and LANs.
func Place(g Graph) *Drawing {
	n := len(g.Nodes) + len(g.LANs)
	if n > MaxVertices {
		return nil
	}
	d := &Drawing{Nodes: len(g.Nodes), LANs: len(g.LANs)}
	index := make(map[string]int, n)
	for _, name := range g.Nodes {
		if _, dup := index[name]; dup {
			continue
		}
		index[name] = len(d.Vertices)
		d.Vertices = append(d.Vertices, Vertex{Name: name, Kind: KindNode, Label: label(name)})
	}
	seen := map[[2]int]bool{}
	edge := func(a, b int) {
		if a == b {
			return
		}
		k := [2]int{min(a, b), max(a, b)}
		if !seen[k] {
			seen[k] = true
			d.Edges = append(d.Edges, k)
		}
	}
	for _, k := range g.Links {
		a, okA := index[k[0]]
		b, okB := index[k[1]]
		if okA && okB {
			edge(a, b)
		}
	}
	for _, lan := range g.LANs {
		at := len(d.Vertices)
		d.Vertices = append(d.Vertices, Vertex{Name: lan.Name, Kind: KindLAN, Label: label(lan.Name)})
		for _, m := range lan.Members {
			if b, ok := index[m]; ok {
				edge(at, b)
			}
		}
	}
	d.Links = len(d.Edges)
	longest := 0
	for _, v := range d.Vertices {
		longest = max(longest, utf8.RuneCountInString(v.Label))
	}
	d.CellWidth = max(minCell, int(math.Ceil(float64(longest)*charWidth))+labelMargin)
	if len(d.Vertices) == 0 {
		d.Width, d.Height = 2*margin+d.CellWidth, 2*margin+CellHeight
		return d
	}
	pos := force(len(d.Vertices), d.Edges)
	snap(d, pos)
	return d
}

// label cuts a name to MaxLabel characters.
func label(name string) string {
	if utf8.RuneCountInString(name) <= MaxLabel {
		return name
	}
	r := []rune(name)
	return string(r[:MaxLabel-1]) + "…"
}

type point struct{ x, y float64 }

// seed fixes the start of every layout: the same graph, the same picture.
const seed = 0x7e1115

// gravity is the pull to the centre, per unit of distance.
const gravity = 0.1

// force runs a bounded Fruchterman-Reingold layout of n vertices in the
// unit square scaled to the vertex count, and returns the positions.
func force(n int, edges [][2]int) []point {
	side := math.Sqrt(float64(n)) // area n: one unit of area per vertex
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	pos := make([]point, n)
	for i := range pos {
		pos[i] = point{rng.Float64() * side, rng.Float64() * side}
	}
	if n == 1 || n > maxForceVertices {
		return pos
	}
	k := side / math.Sqrt(float64(n)) // the ideal distance: 1
	// Enough rounds to settle a few hundred vertices; fewer as the graph
	// grows, so the cost stays near a few million pair steps.
	iterations := min(150, max(30, 4_000_000/(n*n)))
	disp := make([]point, n)
	// Hot at first, so that a start folded by chance can unfold; cooling
	// linearly to nothing.
	temp := side / 3
	cool := temp / float64(iterations+1)
	centre := side / 2
	for range iterations {
		clear(disp)
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				dx, dy := pos[i].x-pos[j].x, pos[i].y-pos[j].y
				d2 := dx*dx + dy*dy
				if d2 < 1e-9 {
					// Two vertices on one spot: push apart along a fixed
					// direction that depends on the pair, not on chance.
					dx, dy, d2 = 1e-3*float64(1+i%7), 1e-3*float64(1+j%5), 1e-6
				}
				f := k * k / d2 // repulsion k²/d, divided by d to scale (dx, dy)
				disp[i].x += dx * f
				disp[i].y += dy * f
				disp[j].x -= dx * f
				disp[j].y -= dy * f
			}
		}
		for _, e := range edges {
			a, b := e[0], e[1]
			dx, dy := pos[a].x-pos[b].x, pos[a].y-pos[b].y
			d := math.Sqrt(dx*dx + dy*dy)
			f := d / k // attraction d²/k, divided by d
			disp[a].x -= dx * f
			disp[a].y -= dy * f
			disp[b].x += dx * f
			disp[b].y += dy * f
		}
		for i := range pos {
			// A weak pull to the centre keeps separate components (and
			// lone nodes) from drifting off, without a wall to pile on.
			disp[i].x += (centre - pos[i].x) * gravity
			disp[i].y += (centre - pos[i].y) * gravity
			dl := math.Hypot(disp[i].x, disp[i].y)
			if dl > 0 {
				step := math.Min(dl, temp) / dl
				pos[i].x += disp[i].x * step
				pos[i].y += disp[i].y * step
			}
		}
		temp -= cool
	}
	return pos
}

// snap puts every vertex in its own grid cell, near its position, and
// sets the drawing's coordinates and size.
func snap(d *Drawing, pos []point) {
	n := len(pos)
	// A third more cells than vertices leaves room to keep neighbours
	// near. The columns make the picture about 1.6 times as wide as tall,
	// as screens are.
	slots := n + n/3 + 1
	cellAspect := float64(d.CellWidth) / CellHeight
	cols := min(slots, max(1, int(math.Round(math.Sqrt(1.6*float64(slots)/cellAspect)))))
	rows := (slots + cols - 1) / cols
	// Positions become ranks along each axis, spread over the grid: the
	// force layout's round cloud fills the rectangle, corners included,
	// and left of, above, stay left of, above.
	target := make([]point, n)
	spread := func(coord func(point) float64, set func(*point, float64), cells int) {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(coord(pos[a]), coord(pos[b])) })
		for rank, v := range order {
			at := float64(cells-1) / 2
			if n > 1 {
				at = float64(rank) / float64(n-1) * float64(cells-1)
			}
			set(&target[v], at)
		}
	}
	spread(func(p point) float64 { return p.x }, func(p *point, v float64) { p.x = v }, cols)
	spread(func(p point) float64 { return p.y }, func(p *point, v float64) { p.y = v }, rows)
	// Hubs choose first: they have the most to lose from a far cell.
	degree := make([]int, n)
	for _, e := range d.Edges {
		degree[e[0]]++
		degree[e[1]]++
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return degree[b] - degree[a] })
	taken := make([]bool, cols*rows)
	cell := make([][2]int, n)
	for _, v := range order {
		c, r := nearestFree(taken, cols, rows, cellAspect, target[v])
		taken[r*cols+c] = true
		cell[v] = [2]int{c, r}
	}
	// Drop empty columns and rows.
	usedC, usedR := make([]bool, cols), make([]bool, rows)
	for _, c := range cell {
		usedC[c[0]], usedR[c[1]] = true, true
	}
	remap := func(used []bool) ([]int, int) {
		to := make([]int, len(used))
		k := 0
		for i, u := range used {
			to[i] = k
			if u {
				k++
			}
		}
		return to, k
	}
	toC, nc := remap(usedC)
	toR, nr := remap(usedR)
	for i := range d.Vertices {
		c, r := toC[cell[i][0]], toR[cell[i][1]]
		d.Vertices[i].X = margin + c*d.CellWidth + d.CellWidth/2
		d.Vertices[i].Y = margin + r*CellHeight + CellHeight/2
	}
	d.Width, d.Height = 2*margin+nc*d.CellWidth, 2*margin+nr*CellHeight
}

// nearestFree finds the free cell nearest p, searching rings of growing
// radius; among cells equally near, the first in row-major order wins.
func nearestFree(taken []bool, cols, rows int, cellAspect float64, p point) (int, int) {
	c0 := min(cols-1, max(0, int(math.Round(p.x))))
	r0 := min(rows-1, max(0, int(math.Round(p.y))))
	if !taken[r0*cols+c0] {
		return c0, r0
	}
	for radius := 1; radius < cols+rows; radius++ {
		best, bc, br := math.Inf(1), -1, -1
		for r := max(0, r0-radius); r <= min(rows-1, r0+radius); r++ {
			for c := max(0, c0-radius); c <= min(cols-1, c0+radius); c++ {
				if max(abs(r-r0), abs(c-c0)) != radius || taken[r*cols+c] {
					continue
				}
				// Weigh distance in the picture, not in cells.
				dx, dy := (float64(c)-p.x)*cellAspect, float64(r)-p.y
				if d := dx*dx + dy*dy; d < best {
					best, bc, br = d, c, r
				}
			}
		}
		if bc >= 0 {
			return bc, br
		}
	}
	panic("topology: no free cell; the grid is smaller than the graph")
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Draw renders a graph as an SVG element, ready to be inlined in HTML or
// served alone. Every name is escaped. A graph too large to draw gives a
// small picture that says so.
func Draw(g Graph) []byte {
	d := Place(g)
	var b strings.Builder
	if d == nil {
		w, h := 480, 60
		fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 %d %d" width="%d" height="%d" role="img" font-family="monospace" font-size="%d">`, w, h, w, h, fontSize)
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#57606a">%d nodes and %d LANs: too many to draw (at most %d)</text></svg>`, margin, h/2, len(g.Nodes), len(g.LANs), MaxVertices)
		return []byte(b.String())
	}
	b.Grow(256 + 160*len(d.Vertices) + 80*len(d.Edges))
	summary := fmt.Sprintf("Topology: %s, %s", plural(d.Nodes, "node"), plural(d.Links, "link"))
	if d.LANs > 0 {
		summary += ", " + plural(d.LANs, "LAN")
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="topology-title" font-family="monospace" font-size="%d">`,
		d.Width, d.Height, d.Width, d.Height, fontSize)
	fmt.Fprintf(&b, `<title id="topology-title">%s</title>`, escape(summary))
	b.WriteString(`<g class="links" stroke="#8c959f" stroke-width="1.5">`)
	for _, e := range d.Edges {
		a, z := d.Vertices[e[0]], d.Vertices[e[1]]
		ax, ay := d.anchor(a, z)
		zx, zy := d.anchor(z, a)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d"/>`, ax, ay, zx, zy)
	}
	b.WriteString(`</g>`)
	for _, v := range d.Vertices {
		name := escape(v.Name)
		switch v.Kind {
		case KindLAN:
			bw := d.barWidth()
			fmt.Fprintf(&b, `<g class="lan"><title>LAN %s</title><rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="#0a5bc4"/>`,
				name, v.X-bw/2, v.Y-6-barHeight/2, bw, barHeight)
		default:
			fmt.Fprintf(&b, `<g class="node"><title>%s</title><circle cx="%d" cy="%d" r="%d" fill="#dbe9fb" stroke="#0a5bc4" stroke-width="2"/>`,
				name, v.X, v.Y-6, radius)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#1f2328">%s</text></g>`, v.X, v.Y+18, escape(v.Label))
	}
	b.WriteString(`</svg>`)
	return []byte(b.String())
}

// anchor is where an edge from v towards w meets v's symbol: the centre of
// a node; the nearest point of a LAN's bar.
func (d *Drawing) anchor(v, w Vertex) (int, int) {
	if v.Kind != KindLAN {
		return v.X, v.Y - 6
	}
	bw := d.barWidth()
	x := min(v.X+bw/2, max(v.X-bw/2, w.X))
	return x, v.Y - 6
}

// barWidth is a LAN bar's width: most of its cell.
func (d *Drawing) barWidth() int { return d.CellWidth - 12 }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// escape makes text safe in SVG (XML) content and attribute values.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		case utf8.RuneError, 0:
			b.WriteRune('\uFFFD')
		default:
			if r < 0x20 && r != '\t' && r != '\n' {
				b.WriteRune('\uFFFD')
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
