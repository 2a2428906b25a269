package alloc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// genPool makes n nodes of a testbed: a few hardware classes over 8 sites,
// and a host attribute unique to each node.
func genPool(rng *rand.Rand, n int) []domain.Resource {
	cores := []string{"4", "8", "16", "32", "64"}
	mem := []string{"16", "32", "64", "128", "256"}
	pool := make([]domain.Resource, n)
	for i := range pool {
		arch := "x86_64"
		if rng.IntN(4) == 0 {
			arch = "aarch64"
		}
		name := fmt.Sprintf("node-%05d", i)
		pool[i] = domain.Resource{
			Name: name, Kind: domain.KindNode, State: domain.ResourceAvailable,
			Attributes: map[string]string{
				"cores": cores[rng.IntN(len(cores))], "memory_gb": mem[rng.IntN(len(mem))],
				"arch": arch, "site": fmt.Sprintf("s%d", rng.IntN(8)), "host": name,
			},
		}
	}
	return pool
}

// genRequests makes n requests drawn from sets distinct constraint sets.
func genRequests(t testing.TB, rng *rand.Rand, n, sets int) []Request {
	shapes := [][]string{
		{"cores>=8", "arch=x86_64"},
		{"cores>=16", "memory_gb>=64"},
		{"arch=aarch64"},
		{"site=s3", "cores>=4"},
		{"cores>=32", "memory_gb>=128", "arch=x86_64"},
		{"memory_gb>=32", "site!=s0"},
	}
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = req(t, fmt.Sprintf("n%04d", i), shapes[rng.IntN(min(sets, len(shapes)))]...)
	}
	return reqs
}

func benchAllocate(b *testing.B, reqs []Request, pool []domain.Resource) {
	got, err := Allocate(reqs, pool)
	if err != nil {
		b.Fatal(err)
	}
	checkAssignment(b, reqs, pool, got)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Allocate(reqs, pool); err != nil {
			b.Fatal(err)
		}
	}
}

// The target case: 1,000 nodes of a handful of kinds, 10,000 resources.
func BenchmarkAllocate1000x10000(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	benchAllocate(b, genRequests(b, rng, 1000, 5), genPool(rng, 10000))
}

// Every node has its own constraint set (1,024 distinct sets).
func BenchmarkAllocateDistinct1000x10000(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	pool := genPool(rng, 10000)
	reqs := make([]Request, 1000)
	for i := range reqs {
		reqs[i] = req(b, fmt.Sprintf("n%04d", i),
			fmt.Sprintf("cores>=%d", 1+i%32), fmt.Sprintf("memory_gb>=%d", 1+i/32*4), fmt.Sprintf("site=s%d", i%8))
	}
	benchAllocate(b, reqs, pool)
}

// Every node is pinned to a host by name: 1,000 distinct sets of one
// equality each.
func BenchmarkAllocatePinned1000x10000(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	pool := genPool(rng, 10000)
	reqs := make([]Request, 1000)
	for i := range reqs {
		reqs[i] = req(b, fmt.Sprintf("n%04d", i), fmt.Sprintf("host=node-%05d", i*7))
	}
	benchAllocate(b, reqs, pool)
}

// A tight fit: 1,000 nodes, 1,000 resources, each node accepting a random
// window of about five slots that holds its own (so an assignment exists).
// Greedy leaves about 40 nodes to the augmenting search.
func BenchmarkAllocateTight1000(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 99))
	pool := make([]domain.Resource, 1000)
	reqs := make([]Request, 1000)
	for i := range pool {
		pool[i] = res(fmt.Sprintf("r%04d", i), fmt.Sprintf("slot=%d", i))
		lo := i - rng.IntN(5)
		reqs[i] = req(b, fmt.Sprintf("n%04d", i), fmt.Sprintf("slot>=%d", lo), fmt.Sprintf("slot<=%d", lo+4))
	}
	benchAllocate(b, reqs, pool)
}
