package sqlstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
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

// migrated is a PostgreSQL database migrated once per test process; tests
// get copies of it.
var migrated = pgtest.NewTemplate(func(ctx context.Context, url string) error {
	db, err := sqlstore.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx)
})

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
		return open(t, migrated.NewDatabase(t))
	})
}

// TestMigrateConcurrently has replicas migrate one fresh database at once:
// all succeed, and migrating again changes nothing.
func TestMigrateConcurrently(t *testing.T) {
	// SQLite serves one process (see TestSQLiteIsExclusive).
	specs := map[string]func(t *testing.T) string{
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

// TestSQLiteIsExclusive: the embedded store serves one process, which is
// what lets it know its change feed's head; a second opener is told why it
// cannot, and may open once the first closed.
func TestSQLiteIsExclusive(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trellis.db")
	first, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlstore.OpenSQLite(ctx, path); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second open: %v", err)
	}
	// The head follows commits without a query.
	head, ok := first.ChangeHead()
	if !ok || head != 0 {
		t.Fatalf("head %d %v", head, ok)
	}
	if err := first.Update(ctx, func(tx store.Tx) error { return tx.Changes().Append(ctx, store.ChangeUser, "a") }); err != nil {
		t.Fatal(err)
	}
	if head, _ := first.ChangeHead(); head != 1 {
		t.Fatalf("head after a commit: %d", head)
	}
	// A rolled-back append does not move it.
	_ = first.Update(ctx, func(tx store.Tx) error {
		if err := tx.Changes().Append(ctx, store.ChangeUser, "b"); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if head, _ := first.ChangeHead(); head != 1 {
		t.Fatalf("head after a rollback: %d", head)
	}
	first.Close()
	second, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	defer second.Close()
	if err := second.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if head, ok := second.ChangeHead(); !ok || head != 1 {
		t.Fatalf("head learnt at open: %d %v", head, ok)
	}
}
