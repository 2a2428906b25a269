package alloc

import (
	"cmp"
	"math/bits"
	"slices"
)

// matcher assigns resources to groups of interchangeable requests: a group
// may hold as many resources as it has members, a resource belongs to at
// most one group. It is a bipartite matching in which each group stands for
// all its members, so a search for an augmenting path visits each group
// once, however many members it has.
type matcher struct {
	cand   []bitset  // per group, over ranked resources
	words  [][]int32 // per group, the indexes of cand's non-zero words
	demand []int     // per group, how many resources it needs
	held   []int     // per group, how many it holds
	owner  []int32   // per resource, the group holding it, or -1
	free   bitset

	// Scratch of augment, kept afterwards to describe a failed search.
	seen  bitset  // resources reached
	seenG []bool  // groups reached
	from  []int32 // per group reached: the group that reached it
	via   []int32 // per group reached: the resource by which it was reached
	queue []int32
}

// newMatcher ranks the resources that some group accepts by how many
// requests accept them, fewest first, then by name, and re-indexes the
// candidate sets by rank: taking the lowest free bit then takes the
// resource others want least. It returns the matcher and, per rank, the
// resource's index in name order.
func newMatcher(groups []group, n int) (*matcher, []int) {
	pop := make([]int, n)
	for _, g := range groups {
		for r := range g.cand.all() {
			pop[r] += len(g.members)
		}
	}
	var ranked []int
	for r, p := range pop {
		if p > 0 {
			ranked = append(ranked, r)
		}
	}
	slices.SortFunc(ranked, func(a, b int) int { return cmp.Or(pop[a]-pop[b], a-b) })
	rank := make([]int32, n)
	for i, r := range ranked {
		rank[r] = int32(i)
	}

	m := &matcher{
		cand:   make([]bitset, len(groups)),
		words:  make([][]int32, len(groups)),
		demand: make([]int, len(groups)),
		held:   make([]int, len(groups)),
		owner:  make([]int32, len(ranked)),
		free:   full(len(ranked)),
		seen:   newBitset(len(ranked)),
		seenG:  make([]bool, len(groups)),
		from:   make([]int32, len(groups)),
		via:    make([]int32, len(groups)),
	}
	for i := range m.owner {
		m.owner[i] = -1
	}
	for g, gr := range groups {
		b := newBitset(len(ranked))
		for r := range gr.cand.all() {
			b.set(int(rank[r]))
		}
		for w, x := range b {
			if x != 0 {
				m.words[g] = append(m.words[g], int32(w))
			}
		}
		m.cand[g], m.demand[g] = b, len(gr.members)
	}
	return m, ranked
}

// greedy gives each group, in order, the first free resources it accepts.
// It is only a head start: augment corrects its mistakes.
func (m *matcher) greedy(order []int) {
	for _, g := range order {
		for _, w := range m.words[g] {
			for x := m.cand[g][w] & m.free[w]; x != 0 && m.held[g] < m.demand[g]; x &= x - 1 {
				m.take(g, int(w)<<6|bits.TrailingZeros64(x))
			}
		}
	}
}

func (m *matcher) take(g, r int) {
	m.owner[r] = int32(g)
	m.free[r>>6] &^= 1 << (r & 63)
	m.held[g]++
}

// augment gives group g one more resource, by a breadth-first search for a
// chain of groups each of which hands a resource to the one before and takes
// another it accepts, the last one a free resource. It reports false when
// there is none: then no assignment gives g one more resource without taking
// one from another group that needs it (Berge), and the groups and
// resources the search reached are a set of groups that need more resources
// than they accept between them (Hall), which lastSearch describes.
func (m *matcher) augment(g int) bool {
	clear(m.seen)
	clear(m.seenG)
	m.queue = append(m.queue[:0], int32(g))
	m.seenG[g] = true
	for qi := 0; qi < len(m.queue); qi++ {
		h := int(m.queue[qi])
		for _, w := range m.words[h] {
			if x := m.cand[h][w] & m.free[w]; x != 0 {
				m.take(h, int(w)<<6|bits.TrailingZeros64(x))
				// Hand back along the chain: each group gives the resource
				// that reached it to the group it came from.
				for h != g {
					p, r := int(m.from[h]), int(m.via[h])
					m.owner[r] = int32(p)
					m.held[h]--
					m.held[p]++
					h = p
				}
				return true
			}
		}
		for _, w := range m.words[h] {
			x := m.cand[h][w] &^ m.seen[w]
			m.seen[w] |= x
			for ; x != 0; x &= x - 1 {
				r := int(w)<<6 | bits.TrailingZeros64(x)
				if o := m.owner[r]; !m.seenG[o] {
					m.seenG[o] = true
					m.from[o], m.via[o] = int32(h), int32(r)
					m.queue = append(m.queue, o)
				}
			}
		}
	}
	return false
}

// lastSearch describes the failed search of augment: how many requests the
// groups it reached stand for, and how many resources they accept between
// them (fewer).
func (m *matcher) lastSearch() (requests, resources int) {
	for _, g := range m.queue {
		requests += m.demand[g]
	}
	return requests, m.seen.count()
}
