package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// benchStores opens a fresh, migrated store of each kind for b.
func benchStores(b *testing.B, fn func(b *testing.B, db *sqlstore.DB)) {
	specs := []struct {
		name string
		spec func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "trellis.db") }},
		{"postgres", func(b *testing.B) string {
			return migrated.NewDatabase(b)
		}},
	}
	for _, s := range specs {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			db, err := sqlstore.Open(ctx, s.spec(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			if err := db.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			fn(b, db)
		})
	}
}

// createNodes adds count available nodes named prefix0, prefix1, … in one
// transaction.
func createNodes(b *testing.B, db *sqlstore.DB, prefix string, count int) []string {
	ctx := context.Background()
	names := make([]string, count)
	err := db.Update(ctx, func(tx store.Tx) error {
		for i := range names {
			names[i] = fmt.Sprintf("%s%d", prefix, i)
			err := tx.Resources().Create(ctx, &domain.Resource{
				Name: names[i], Kind: domain.KindNode, Provider: "site1",
				Attributes: map[string]string{"cores": "8", "memory_gb": "64", "arch": "x86_64"},
				State:      domain.ResourceAvailable, CreatedAt: time.Now(),
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return names
}

// BenchmarkCreateRealization1000 is the store's share of realizing a
// 1,000-node experiment: one transaction that writes the realization and
// its 1,000 bindings (the live-resource index checked on each). The same
// nodes are released, untimed, between iterations, so the bindings table
// also grows by the ended realizations' record, as it does in service.
func BenchmarkCreateRealization1000(b *testing.B) {
	benchStores(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		names := createNodes(b, db, "n", 1000)
		i := 0
		for b.Loop() {
			r := &domain.Realization{
				ID: fmt.Sprintf("r%d", i), Experiment: "alice:big", Project: "lab", Owner: "alice",
				State: domain.RealizationAllocated, LeaseExpires: time.Now().Add(time.Hour), CreatedAt: time.Now(),
			}
			for j, n := range names {
				r.Bindings = append(r.Bindings, domain.Binding{Element: fmt.Sprintf("node%d", j), Resource: n})
			}
			if err := db.Update(ctx, func(tx store.Tx) error { return tx.Realizations().Create(ctx, r) }); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := db.Update(ctx, func(tx store.Tx) error {
				return tx.Realizations().End(ctx, r.ID, domain.RealizationReleased, time.Now())
			}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			i++
		}
	})
}

// BenchmarkAvailable10000 lists the free nodes of a 10,000-node inventory
// of which 1,000 are bound.
func BenchmarkAvailable10000(b *testing.B) {
	benchStores(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		names := createNodes(b, db, "n", 10000)
		r := &domain.Realization{ID: "r", Experiment: "alice:big", Project: "lab", Owner: "alice",
			State: domain.RealizationActive, CreatedAt: time.Now()}
		for j, n := range names[:1000] {
			r.Bindings = append(r.Bindings, domain.Binding{Element: fmt.Sprintf("node%d", j), Resource: n})
		}
		if err := db.Update(ctx, func(tx store.Tx) error { return tx.Realizations().Create(ctx, r) }); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			err := db.View(ctx, func(tx store.Tx) error {
				free, err := tx.Resources().Available(ctx, domain.KindNode)
				if err == nil && len(free) != 9000 {
					err = fmt.Errorf("%d available, want 9000", len(free))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProfileDescription is what the service pays per request to read
// a profile description from the store instead of caching it: the user
// kind's 14 seeded definitions, read in their own transaction and compiled.
// The service caches the result (service/attributes.go); this is the miss.
func BenchmarkProfileDescription(b *testing.B) {
	benchStores(b, func(b *testing.B, db *sqlstore.DB) {
		ctx := context.Background()
		b.Run("view", func(b *testing.B) {
			for b.Loop() {
				err := db.View(ctx, func(tx store.Tx) error {
					attrs, err := tx.Profiles().Attributes(ctx, store.ProfileUser)
					if err != nil {
						return err
					}
					_, err = domain.BuildProfileDescription(attrs)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("compile", func(b *testing.B) {
			var attrs []domain.Attribute
			err := db.View(ctx, func(tx store.Tx) (err error) {
				attrs, err = tx.Profiles().Attributes(ctx, store.ProfileUser)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := domain.BuildProfileDescription(attrs); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
