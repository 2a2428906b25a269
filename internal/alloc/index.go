package alloc

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// index finds the resources that satisfy a constraint without testing every
// resource: a constraint on one attribute can only tell apart resources
// whose values of that attribute differ, so it is tested once per distinct
// value (and, for order comparisons, only O(log n) times). A layout that pins
// each of 1,000 nodes to a host by name thus costs 1,000 map look-ups, not
// 10 million comparisons.
//
// domain.Constraint.Match stays the only judge of what matches: the index
// merely chooses which values to ask it about.
type index struct {
	attrs []map[string]string // per resource
	by    map[string]*values  // per attribute, built when first needed
}

// values is one attribute's distinct values and who holds them.
type values struct {
	ids map[string]int32
	rep []map[string]string // per value: the attributes of one holder
	// The holders of value id are order[start[id]:start[id+1]], in
	// resource order; one flat slice rather than one slice per value,
	// because an attribute such as a host name has a value per resource.
	start   []int32
	order   []int32
	missing []int32 // resources without the attribute
	// numeric holds the values that are numbers (NaN aside: it has no
	// order), sorted by number; nums holds the numbers. others holds the
	// rest.
	numeric []int32
	nums    []float64
	others  []int32
}

func newIndex(attrs []map[string]string) *index {
	return &index{attrs: attrs, by: map[string]*values{}}
}

func (x *index) values(attr string) *values {
	if v := x.by[attr]; v != nil {
		return v
	}
	v := &values{ids: map[string]int32{}}
	of := make([]int32, len(x.attrs)) // per resource, its value
	var count []int32
	var text []string
	for r, a := range x.attrs {
		s, ok := a[attr]
		if !ok {
			v.missing = append(v.missing, int32(r))
			of[r] = -1
			continue
		}
		id, ok := v.ids[s]
		if !ok {
			id = int32(len(v.rep))
			v.ids[s] = id
			v.rep = append(v.rep, a)
			text = append(text, s)
			count = append(count, 0)
		}
		of[r] = id
		count[id]++
	}
	v.start = make([]int32, len(count)+1)
	for id, n := range count {
		v.start[id+1] = v.start[id] + n
	}
	v.order = make([]int32, v.start[len(count)])
	next := slices.Clone(v.start[:len(count)])
	for r, id := range of {
		if id >= 0 {
			v.order[next[id]] = int32(r)
			next[id]++
		}
	}

	type num struct {
		id int32
		f  float64
	}
	var ns []num
	for id, s := range text {
		if f, ok := number(s); ok && !math.IsNaN(f) {
			ns = append(ns, num{int32(id), f})
		} else {
			v.others = append(v.others, int32(id))
		}
	}
	// Equal numbers ("4", "4.0") stay in id order: the sort is stable.
	slices.SortStableFunc(ns, func(a, b num) int { return cmp.Compare(a.f, b.f) })
	for _, n := range ns {
		v.numeric = append(v.numeric, n.id)
		v.nums = append(v.nums, n.f)
	}
	x.by[attr] = v
	return v
}

// number parses s as domain.Constraint.Match does, with strconv.ParseFloat,
// but first rules out text that starts with a letter and is not "inf",
// "infinity" or "nan": names and words are common attribute values, and a
// failed ParseFloat allocates its error.
func number(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	if c := s[0] | 0x20; c >= 'a' && c <= 'z' && (len(s) > len("infinity") || c != 'i' && c != 'n') {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// eval returns the resources that satisfy c.
func (x *index) eval(c domain.Constraint) bitset {
	v := x.values(c.Attr)
	b := newBitset(len(x.attrs))
	if c.Match(nil) { // what a missing attribute does is Match's to say
		for _, r := range v.missing {
			b.set(int(r))
		}
	}
	take := func(id int32) {
		for _, r := range v.order[v.start[id]:v.start[id+1]] {
			b.set(int(r))
		}
	}
	test := func(id int32) bool { return c.Match(v.rep[id]) }
	switch c.Op {
	case domain.OpGe, domain.OpGt, domain.OpLe, domain.OpLt:
		// Numbers compare in order, so over the numbers sorted, c holds on
		// a suffix (>=, >) or a prefix (<=, <): find its edge by bisection.
		up := c.Op == domain.OpGe || c.Op == domain.OpGt
		i := sort.Search(len(v.numeric), func(i int) bool { return test(v.numeric[i]) == up })
		span := v.numeric[:i]
		if up {
			span = v.numeric[i:]
		}
		for _, id := range span {
			take(id)
		}
		for _, id := range v.others {
			if test(id) {
				take(id)
			}
		}
	case domain.OpEq, domain.OpNe:
		// Only a value equal to c's, as text or as a number, can satisfy =
		// or fail !=; every other value fails = and satisfies !=.
		eq := v.equal(c.Value)
		if c.Op == domain.OpNe {
			for id := range v.rep {
				if !slices.Contains(eq, int32(id)) {
					take(int32(id))
				}
			}
		}
		for _, id := range eq {
			if test(id) {
				take(id)
			}
		}
	default:
		for id := range v.rep {
			if test(int32(id)) {
				take(int32(id))
			}
		}
	}
	return b
}

// equal returns the values equal to s as text or as a number.
func (v *values) equal(s string) []int32 {
	var eq []int32
	if id, ok := v.ids[s]; ok {
		eq = append(eq, id)
	}
	if f, ok := number(s); ok {
		for i := sort.SearchFloat64s(v.nums, f); i < len(v.nums) && v.nums[i] == f; i++ {
			if id := v.numeric[i]; !slices.Contains(eq, id) {
				eq = append(eq, id)
			}
		}
	}
	return eq
}

// bitset is a set of small non-negative integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

// full returns the set {0, ..., n-1}.
func full(n int) bitset {
	b := newBitset(n)
	for i := range b {
		b[i] = ^uint64(0)
	}
	if n%64 != 0 {
		b[len(b)-1] = 1<<(n%64) - 1
	}
	return b
}

func (b bitset) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

func (b bitset) and(c bitset) {
	for i := range b {
		b[i] &= c[i]
	}
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// all yields the members of b in increasing order.
func (b bitset) all() func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for w, x := range b {
			for ; x != 0; x &= x - 1 {
				if !yield(w<<6 | bits.TrailingZeros64(x)) {
					return
				}
			}
		}
	}
}
