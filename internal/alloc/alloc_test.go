package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// res builds a resource from "attr=value" pairs.
func res(name string, kvs ...string) domain.Resource {
	attrs := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		attrs[k] = v
	}
	return domain.Resource{Name: name, Kind: domain.KindNode, State: domain.ResourceAvailable, Attributes: attrs}
}

func req(t testing.TB, name string, exprs ...string) Request {
	t.Helper()
	r := Request{Name: name}
	for _, e := range exprs {
		c, err := domain.ParseConstraint("test", e)
		if err != nil {
			t.Fatal(err)
		}
		r.Constraints = append(r.Constraints, c)
	}
	return r
}

// checkAssignment fails unless got binds every request to a distinct
// resource of pool that satisfies it.
func checkAssignment(t testing.TB, reqs []Request, pool []domain.Resource, got map[string]string) {
	t.Helper()
	byName := map[string]domain.Resource{}
	for _, r := range pool {
		byName[r.Name] = r
	}
	if len(got) != len(reqs) {
		t.Fatalf("%d bindings for %d requests: %v", len(got), len(reqs), got)
	}
	used := map[string]string{}
	for _, q := range reqs {
		name, ok := got[q.Name]
		if !ok {
			t.Fatalf("request %s unbound: %v", q.Name, got)
		}
		r, ok := byName[name]
		if !ok {
			t.Fatalf("request %s bound to unknown resource %s", q.Name, name)
		}
		if other, ok := used[name]; ok {
			t.Fatalf("resource %s bound to both %s and %s", name, other, q.Name)
		}
		used[name] = q.Name
		if !domain.MatchAll(q.Constraints, r.Attributes) {
			t.Fatalf("request %s bound to %s, whose attributes %v fail %v", q.Name, name, r.Attributes, q.Constraints)
		}
	}
}

func TestAllocate(t *testing.T) {
	pool := []domain.Resource{
		res("pc1", "cores=8", "arch=x86_64", "memory_gb=32"),
		res("pc2", "cores=16", "arch=x86_64", "memory_gb=64"),
		res("pc3", "cores=32", "arch=x86_64", "memory_gb=128", "gpu=1"),
		res("arm1", "cores=4", "arch=aarch64"),
		res("arm2", "cores=8", "arch=aarch64"),
		res("bare"),
	}
	tests := []struct {
		name string
		reqs []Request
		want map[string]string // nil: only check validity
		err  string            // expected error text
		code domain.Code
		fall *Shortfall
	}{
		{name: "empty layout", reqs: nil, want: map[string]string{}},
		{
			name: "simple fits",
			reqs: []Request{req(t, "a", "gpu=1"), req(t, "b", "arch=aarch64", "cores>4")},
			want: map[string]string{"a": "pc3", "b": "arm2"},
		},
		{
			// Greedy in name order would give a the first resource it
			// accepts, arm2, and strand b.
			name: "greedy trap",
			reqs: []Request{req(t, "a", "cores>=8", "cores<=8"), req(t, "b", "arch=aarch64", "cores>=8")},
			want: map[string]string{"a": "pc1", "b": "arm2"},
		},
		{
			name: "distinct resources for identical nodes",
			reqs: []Request{req(t, "a", "arch=x86_64"), req(t, "b", "arch=x86_64"), req(t, "c", "arch=x86_64")},
		},
		{
			name: "a node without constraints leaves the scarce resource",
			reqs: []Request{req(t, "any"), req(t, "gpu", "gpu=1")},
			want: map[string]string{"any": "arm1", "gpu": "pc3"},
		},
		{
			// Only bare and the arm nodes lack arch=x86_64; a missing
			// attribute satisfies != and nothing else.
			name: "!= accepts a missing attribute",
			reqs: []Request{req(t, "a", "arch!=x86_64"), req(t, "b", "arch!=x86_64"), req(t, "c", "arch!=x86_64", "cores!=4", "cores!=8")},
			want: map[string]string{"a": "arm1", "b": "arm2", "c": "bare"},
		},
		{
			name: "numbers compare as numbers",
			reqs: []Request{req(t, "a", "cores=16.0"), req(t, "b", "memory_gb>100")},
			want: map[string]string{"a": "pc2", "b": "pc3"},
		},
		{
			name: "constraint on a missing attribute",
			reqs: []Request{req(t, "a"), req(t, "b", "fpga=1")},
			err:  `node "b" cannot be placed: its constraints fpga=1 match 0 of 6 available resources`,
			code: domain.CodeFailedPrecondition,
			fall: &Shortfall{Node: "b", Candidates: 0, Available: 6},
		},
		{
			name: "first node by name that nothing fits",
			reqs: []Request{req(t, "z", "cores>=64"), req(t, "m", "cores>=64", "arch=aarch64"), req(t, "k", "arch=aarch64")},
			err:  `node "m" cannot be placed: its constraints cores>=64 arch=aarch64 match 0 of 6 available resources`,
			code: domain.CodeFailedPrecondition,
			fall: &Shortfall{Node: "m", Candidates: 0, Available: 6},
		},
		{
			// The same constraints in another order are the same set, and the
			// error quotes the named node's own.
			name: "more nodes than candidates",
			reqs: []Request{req(t, "n1", "arch=aarch64", "cores>=1"), req(t, "n2", "arch=aarch64", "cores>=1"), req(t, "n3", "cores>=1", "arch=aarch64")},
			err:  `node "n3" cannot be placed: its constraints cores>=1 arch=aarch64 match 2 of 6 available resources, but 3 nodes with overlapping constraints compete for them`,
			code: domain.CodeFailedPrecondition,
			fall: &Shortfall{Node: "n3", Candidates: 2, Available: 6, Competing: 3, Contested: 2},
		},
		{
			// x1 and x2 accept pc1 and pc2; b and c take pc2 and pc3, the
			// only ones they accept: four nodes, three resources.
			name: "contention across constraint sets",
			reqs: []Request{
				req(t, "a", "arch=aarch64"),
				req(t, "b", "cores>=16"), req(t, "c", "cores>=16"),
				req(t, "x1", "cores>=8", "cores<=16", "arch=x86_64"), req(t, "x2", "cores>=8", "cores<=16", "arch=x86_64"),
			},
			err:  `node "x2" cannot be placed: its constraints cores>=8 cores<=16 arch=x86_64 match 2 of 6 available resources, but 4 nodes with overlapping constraints compete for the 3 resources that any of them accepts`,
			code: domain.CodeFailedPrecondition,
			fall: &Shortfall{Node: "x2", Candidates: 2, Available: 6, Competing: 4, Contested: 3},
		},
		{
			name: "nothing available",
			reqs: []Request{req(t, "a")},
			err:  `node "a" cannot be placed: with no constraints it matches 0 of 0 available resources`,
			code: domain.CodeFailedPrecondition,
		},
		{
			name: "duplicate node",
			reqs: []Request{req(t, "a"), req(t, "b"), req(t, "a")},
			err:  `nodes: node "a" is named twice`,
			code: domain.CodeInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pool
			if tt.name == "nothing available" {
				p = nil
			}
			got, err := Allocate(tt.reqs, p)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				if c := domain.CodeOf(err); c != tt.code {
					t.Errorf("code %v, want %v", c, tt.code)
				}
				if tt.fall != nil {
					var s *Shortfall
					if !errors.As(err, &s) {
						t.Fatalf("no Shortfall in %#v", err)
					}
					if s.Node != tt.fall.Node || s.Candidates != tt.fall.Candidates || s.Available != tt.fall.Available ||
						s.Competing != tt.fall.Competing || s.Contested != tt.fall.Contested || len(s.Constraints) == 0 {
						t.Errorf("shortfall %+v, want %+v", *s, *tt.fall)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkAssignment(t, tt.reqs, p, got)
			if tt.want != nil && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAllocateDuplicateResource(t *testing.T) {
	_, err := Allocate([]Request{req(t, "a")}, []domain.Resource{res("r"), res("r")})
	if domain.CodeOf(err) != domain.CodeInternal {
		t.Fatalf("error %v, want an internal error", err)
	}
}

// The augmenting search must undo a bad head start, whatever greedy did.
func TestAugmentUndoesGreedy(t *testing.T) {
	// a accepts r0 and r1, b accepts only r0, and a holds r0.
	a, b := full(2), newBitset(2)
	b.set(0)
	m, ranked := newMatcher([]group{{members: []int{0}, cand: a}, {members: []int{1}, cand: b}}, 2)
	// Ranks put r1, which one request accepts, before r0, which two do.
	if ranked[1] != 0 {
		t.Fatalf("ranked %v", ranked)
	}
	m.take(0, 1)
	if !m.augment(1) {
		t.Fatal("no augmenting path")
	}
	if m.held[0] != 1 || m.held[1] != 1 || m.owner[0] == m.owner[1] {
		t.Fatalf("owners %v, held %v", m.owner, m.held)
	}
}

func TestAllocateDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := genPool(rng, 500)
	reqs := genRequests(t, rng, 200, 6)
	want, err := Allocate(reqs, pool)
	if err != nil {
		t.Fatal(err)
	}
	checkAssignment(t, reqs, pool, want)
	for range 20 {
		rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
		got, err := Allocate(reqs, pool)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("shuffled input changed the result:\n%v\n%v", got, want)
		}
	}
}

// bruteForce reports whether the requests can have distinct resources, by
// trying every assignment.
func bruteForce(reqs []Request, pool []domain.Resource) bool {
	used := make([]bool, len(pool))
	var place func(i int) bool
	place = func(i int) bool {
		if i == len(reqs) {
			return true
		}
		for r := range pool {
			if !used[r] && domain.MatchAll(reqs[i].Constraints, pool[r].Attributes) {
				used[r] = true
				ok := place(i + 1)
				used[r] = false
				if ok {
					return true
				}
			}
		}
		return false
	}
	return place(0)
}

// Small random instances, where brute force is the oracle: Allocate must
// succeed exactly when some assignment exists.
func TestAllocateAgainstBruteForce(t *testing.T) {
	vocab := []string{
		"cores>=2", "cores>=4", "cores<=4", "cores=8", "cores>2", "cores<8", "cores!=4",
		"arch=x", "arch!=x", "arch=y", "site=a", "site!=b", "site!=c", "gpu!=1",
	}
	var ok, failed, contended int
	for seed := range uint64(3000) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var pool []domain.Resource
		for i := range 1 + rng.IntN(8) {
			var kvs []string
			if rng.IntN(5) > 0 {
				kvs = append(kvs, fmt.Sprintf("cores=%d", 1<<rng.IntN(4)))
			}
			if rng.IntN(4) > 0 {
				kvs = append(kvs, "arch="+[]string{"x", "y"}[rng.IntN(2)])
			}
			kvs = append(kvs, "site="+[]string{"a", "b", "c"}[rng.IntN(3)])
			if rng.IntN(4) == 0 {
				kvs = append(kvs, "gpu=1")
			}
			pool = append(pool, res(fmt.Sprintf("r%d", i), kvs...))
		}
		var reqs []Request
		for i := range max(1, len(pool)-rng.IntN(4)) {
			var exprs []string
			for range rng.IntN(3) {
				exprs = append(exprs, vocab[rng.IntN(len(vocab))])
			}
			reqs = append(reqs, req(t, fmt.Sprintf("n%d", i), exprs...))
		}
		got, err := Allocate(reqs, pool)
		possible := bruteForce(reqs, pool)
		switch {
		case possible && err != nil:
			t.Fatalf("seed %d: %v, but an assignment exists\nreqs %v\npool %v", seed, err, reqs, pool)
		case !possible && err == nil:
			t.Fatalf("seed %d: got %v, but no assignment exists", seed, got)
		case possible:
			checkAssignment(t, reqs, pool, got)
			ok++
		default:
			var s *Shortfall
			if !errors.As(err, &s) || domain.CodeOf(err) != domain.CodeFailedPrecondition {
				t.Fatalf("seed %d: error %v without a Shortfall", seed, err)
			}
			n := len(Filter(pool, s.Constraints))
			if s.Candidates != n || s.Available != len(pool) {
				t.Fatalf("seed %d: %+v, but %d candidates", seed, s, n)
			}
			// The competing nodes are a witness: more of them than
			// resources they accept.
			if n > 0 && (s.Competing <= s.Contested || s.Contested < n) {
				t.Fatalf("seed %d: %+v is no witness of contention", seed, s)
			}
			failed++
			if n > 0 {
				contended++
			}
		}
	}
	t.Logf("%d placed, %d impossible (%d by contention)", ok, failed, contended)
	if ok < 500 || contended < 100 {
		t.Errorf("the generator no longer covers both outcomes")
	}
}

// The index must agree with Constraint.Match on every resource, including
// values that are numbers in disguise, not numbers, or missing.
func TestIndexAgreesWithMatch(t *testing.T) {
	vals := []string{"4", "4.0", "04", "1e1", "10", "-3", "0", "-0", "NaN", "Inf", "-Inf", "x86_64", "4x", "", " 4", "abc", "1_0", "0x10",
		"nan", "inf", "+Inf", "infinity", "INFINITY", "infinite", "nano", "n", "i"}
	ops := []domain.Op{domain.OpEq, domain.OpNe, domain.OpGe, domain.OpLe, domain.OpGt, domain.OpLt}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		attrs := make([]map[string]string, 1+rng.IntN(40))
		for i := range attrs {
			attrs[i] = map[string]string{}
			if rng.IntN(5) > 0 {
				attrs[i]["v"] = vals[rng.IntN(len(vals))]
			}
		}
		x := newIndex(attrs)
		for range 30 {
			op := ops[rng.IntN(len(ops))]
			var cs []domain.Constraint
			if c, err := domain.NewConstraint("test", "v", op, vals[rng.IntN(len(vals))]); err == nil {
				cs = append(cs, c) // else an order compared to a non-number
			}
			// A constraint built without NewConstraint has no number, and
			// maybe an unknown comparison: the index must still follow Match.
			raw := domain.Constraint{Attr: "v", Op: op, Value: vals[rng.IntN(len(vals))]}
			if rng.IntN(10) == 0 {
				raw.Op = "~"
			}
			for _, c := range append(cs, raw) {
				got := x.eval(c)
				for r, a := range attrs {
					if got.has(r) != c.Match(a) {
						t.Fatalf("seed %d: %#v on %q: index says %v", seed, c, a["v"], got.has(r))
					}
				}
			}
		}
	}
}

func TestSetKey(t *testing.T) {
	a := req(t, "a", "cores>=4", "arch=x86_64", "cores>=4").Constraints
	b := req(t, "b", "arch=x86_64", "cores>=4").Constraints
	c := req(t, "c", "arch=x86_64", "cores>=4.0").Constraints
	ka, _ := setKey(a)
	kb, _ := setKey(b)
	kc, _ := setKey(c)
	if ka != kb || ka == kc {
		t.Fatalf("keys %q %q %q", ka, kb, kc)
	}
	if k, _ := setKey(nil); k != "" {
		t.Fatalf("empty key %q", k)
	}
}
