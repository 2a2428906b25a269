package policy_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/changefeed"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// The benchmarks run on the testbed-sized population of dataset.Testbed in
// an embedded store, built once per run:
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/policy/

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixture     struct {
		st     store.Store
		engine *policy.Engine
		feed   *changefeed.Follower
		pop    *dataset.Population
		err    error
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func testbed(b *testing.B) (*policy.Engine, *dataset.Population, store.Store) {
	fixtureOnce.Do(func() {
		ctx := context.Background()
		fixtureDir, fixture.err = os.MkdirTemp("", "trellis-policy-bench-")
		if fixture.err != nil {
			return
		}
		st, err := sqlstore.OpenSQLite(ctx, fixtureDir+"/t.db")
		if err == nil {
			err = st.Migrate(ctx)
		}
		if err != nil {
			fixture.err = err
			return
		}
		fixture.st = st
		if fixture.pop, fixture.err = dataset.Generate(ctx, st, dataset.Testbed); fixture.err != nil {
			return
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if fixture.feed, fixture.err = changefeed.New(ctx, st, log); fixture.err != nil {
			return
		}
		fixture.engine, fixture.err = policy.NewEngine(ctx, st, fixture.feed, log)
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.engine, fixture.pop, fixture.st
}

var actions = []string{policy.ProjectRead, policy.ProjectAddUser, policy.ProjectRealizeExperiment, policy.ProjectRemoveUser}

// query draws a check: half about a membership that exists (so nesting and
// rights are walked), half about a random user and project.
func query(r *rand.Rand, pop *dataset.Population) (uid, action, object string) {
	action = actions[r.IntN(len(actions))]
	if r.IntN(2) == 0 {
		m := pop.Memberships[r.IntN(len(pop.Memberships))]
		return m[0], action, "project:" + m[1]
	}
	return pop.Users[r.IntN(len(pop.Users))], action, "project:" + pop.Projects[r.IntN(len(pop.Projects))]
}

// reportLatency adds p50 and p99 of the recorded durations to b's output.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkCheck is one decision as the API gate makes it: the freshness
// barrier (one query of the feed's head, shared by concurrent callers) and
// the walk of the in-memory graph.
func BenchmarkCheck(b *testing.B) {
	e, pop, _ := testbed(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(2, 3))
	lat := make([]time.Duration, 0, b.N)
	allowed := 0
	b.ResetTimer()
	for range b.N {
		uid, action, object := query(r, pop)
		t0 := time.Now()
		d := e.Check(ctx, uid, action, object)
		lat = append(lat, time.Since(t0))
		if d.Allowed {
			allowed++
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
}

// BenchmarkCheckParallel is BenchmarkCheck from many goroutines, which
// share barrier rounds.
func BenchmarkCheckParallel(b *testing.B) {
	e, pop, _ := testbed(b)
	ctx := context.Background()
	var seed atomic.Uint64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 7))
		for pb.Next() {
			uid, action, object := query(r, pop)
			e.Check(ctx, uid, action, object)
		}
	})
}

// BenchmarkCheckUnderChurn measures decisions while another writer (as if
// on another replica) adds and removes memberships every millisecond, each
// write invalidating part of the graph through the change feed.
func BenchmarkCheckUnderChurn(b *testing.B) {
	e, pop, st := testbed(b)
	ctx, cancel := context.WithCancel(context.Background())
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(5, 6))
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for ctx.Err() == nil {
			<-t.C
			uid, project := pop.Users[r.IntN(len(pop.Users))], pop.Projects[r.IntN(len(pop.Projects))]
			err := st.Update(ctx, func(tx store.Tx) error {
				if _, err := tx.Projects().Member(ctx, project, uid); err == nil {
					p, err := tx.Projects().Get(ctx, project)
					if err != nil || p.Owner == uid {
						return err
					}
					if err := tx.Projects().RemoveMember(ctx, project, uid); err != nil {
						return err
					}
				} else if err := tx.Projects().SetMember(ctx, &domain.Membership{Group: project, UID: uid, Rights: domain.RightsOf(domain.RealizeExperiment), AddedAt: time.Now()}); err != nil {
					return err
				}
				return tx.Changes().Append(ctx, store.ChangeProject, project)
			})
			if err == nil {
				writes.Add(1)
			}
		}
	})
	r := rand.New(rand.NewPCG(8, 9))
	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		uid, action, object := query(r, pop)
		t0 := time.Now()
		e.Check(ctx, uid, action, object)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	reportLatency(b, lat)
	b.ReportMetric(float64(writes.Load())/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkListAllowed lists the projects a user may realize in, across
// all 2,000.
func BenchmarkListAllowed(b *testing.B) {
	e, pop, _ := testbed(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(4, 5))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		uid := pop.Memberships[r.IntN(len(pop.Memberships))][0]
		t0 := time.Now()
		if _, err := e.ListAllowed(ctx, uid, policy.ProjectRealizeExperiment, "project"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}
