package app_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// Issue 4's benchmarks, through the service layer (the operation as the
// API runs it, without HTTP):
//
//	go test -run '^$' -bench 'Realize|ListExperiments' -benchtime 20x ./internal/app/

// built returns a server built (not serving) on a fresh store of kind,
// filled by populate first.
func built(b *testing.B, kind storeKind, populate func(store.Store) error) *app.Server {
	b.Helper()
	ctx := context.Background()
	var spec string
	if kind == postgres {
		spec = migrated.NewDatabase(b)
	} else {
		spec = b.TempDir() + "/trellis.db"
	}
	st, err := sqlstore.Open(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := populate(st); err != nil {
		b.Fatal(err)
	}
	params := password.TestParams()
	srv, err := app.Build(ctx, app.Config{Listen: "127.0.0.1:0", PasswordParams: &params, Log: quietLog()}, st)
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

func BenchmarkRealize1000(b *testing.B) {
	for _, kind := range []storeKind{sqlite, postgres} {
		b.Run(string(kind), func(b *testing.B) {
			ctx := context.Background()
			srv := built(b, kind, func(st store.Store) error { return dataset.Nodes(ctx, st, 10_000, 1) })
			svc := srv.Service
			if _, err := svc.Bootstrap(ctx, "ops", "ops@example.org", adminPassword); err != nil {
				b.Fatal(err)
			}
			ops := &auth.Principal{UID: "ops", Admin: true}
			// Realizing is authorized: it names a project that exists.
			if err := srv.Store.Update(ctx, func(tx store.Tx) error {
				now := time.Now()
				if err := tx.Projects().Create(ctx, &domain.Project{Name: "ops-lab", Owner: "ops", State: domain.ProjectApproved, CreatedAt: now, ApprovedAt: now}); err != nil {
					return err
				}
				return tx.Changes().Append(ctx, store.ChangeProject, "ops-lab")
			}); err != nil {
				b.Fatal(err)
			}
			if _, err := svc.Testbed.CreateExperiment(ctx, ops, "ops:big", "", nil, []service.AspectInput{{Type: "layout", Name: "main", Content: dataset.Layout(1000)}}); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				r, err := svc.Testbed.Realize(ctx, ops, "ops:big", "ops-lab", 0)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := svc.Testbed.Release(ctx, ops, r.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			reportMillis(b, lat)
		})
	}
}

func reportMillis(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
}

// BenchmarkListExperiments50k lists, for random users, the experiments
// they may read among 50,000 (owned by users and projects of the testbed
// population, a third shared with circles).
func BenchmarkListExperiments50k(b *testing.B) {
	ctx := context.Background()
	var pop *dataset.Population
	spec := dataset.Testbed
	spec.Experiments = 50_000
	srv := built(b, sqlite, func(st store.Store) error {
		var err error
		pop, err = dataset.Generate(ctx, st, spec)
		return err
	})
	r := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	found := 0
	b.ResetTimer()
	for range b.N {
		p := &auth.Principal{UID: pop.Memberships[r.IntN(len(pop.Memberships))][0]}
		t0 := time.Now()
		xs, _, err := srv.Service.Testbed.ListExperiments(ctx, p, service.ExperimentQuery{PageSize: 100})
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		found += len(xs)
	}
	b.StopTimer()
	reportMillis(b, lat)
	b.ReportMetric(float64(found)/float64(b.N), "listed/op")
}
