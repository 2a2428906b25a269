package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
	"github.com/trellis-testbed/trellis/internal/store/storetest"
)

// TestMain stops the throwaway PostgreSQL cluster, if pgtest started one.
func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, spec string) *sqlstore.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A directory that does not exist yet: Open creates it.
		return open(t, filepath.Join(t.TempDir(), "sub", "trellis.db"))
	})
}

func TestPostgres(t *testing.T) {
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.NewDatabase(t))
	})
}

// TestMigrateConcurrently has replicas migrate one fresh database at once:
// all succeed, and migrating again changes nothing.
func TestMigrateConcurrently(t *testing.T) {
	specs := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "trellis.db") },
		"postgres": func(t *testing.T) string {
			pgtest.Require(t)
			return pgtest.NewDatabase(t)
		},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s := spec(t)
			const replicas = 4
			dbs := make([]*sqlstore.DB, replicas)
			for i := range dbs {
				dbs[i] = open(t, s) // separate pools, as separate replicas have
			}
			var wg sync.WaitGroup
			errs := make([]error, replicas)
			for i, db := range dbs {
				wg.Go(func() { errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: Migrate: %v", i, err)
				}
			}
			for _, db := range dbs {
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("second Migrate: %v", err)
				}
			}
			// The schema works, and the counter row was inserted once.
			err := dbs[0].Update(ctx, func(tx store.Tx) error {
				return tx.Changes().Append(ctx, store.ChangeUser, "alice")
			})
			if err != nil {
				t.Fatal(err)
			}
			err = dbs[1].View(ctx, func(tx store.Tx) error {
				n, err := tx.Changes().Latest(ctx)
				if n != 1 {
					t.Errorf("Latest = %d, want 1", n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	for _, spec := range []string{"", ":memory:", "file:x.db?mode=memory", "x.db?_pragma=foo"} {
		if db, err := sqlstore.Open(t.Context(), spec); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", spec)
		}
	}
}
