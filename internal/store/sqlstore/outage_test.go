package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// wantUnavailable fails t unless err is the store's outage: a domain
// unavailable error that errors.Is store.ErrUnavailable.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) || domain.CodeOf(err) != domain.CodeUnavailable {
		t.Fatalf("%s = %v (code %v), want the store unavailable", what, err, domain.CodeOf(err))
	}
}

// appendBig writes an audit event of a few kilobytes.
func appendBig(ctx context.Context, db store.Store, i int) error {
	return db.Update(ctx, func(tx store.Tx) error {
		return tx.Audit().Append(ctx, &domain.AuditEvent{Time: time.Now(), Actor: "filler", Operation: fmt.Sprint(i), Detail: strings.Repeat("x", 3000)})
	})
}

// fillUp bounds the database to its current size (SQLite never lowers the
// bound below it) and writes until it is full; it returns the error that
// said so.
func fillUp(t *testing.T, db *sqlstore.DB) error {
	t.Helper()
	ctx := context.Background()
	if _, err := db.SetMaxPageCount(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		if err := appendBig(ctx, db, i); err != nil {
			return err
		}
	}
	t.Fatal("10000 writes of 3 kB fit in a database bounded to its size")
	return nil
}

// TestSQLiteFullDisk: a full disk is an outage, not a bug. Writes and the
// readiness probe fail unavailable, reads go on, and once there is room
// again everything commits.
func TestSQLiteFullDisk(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "trellis.db"))
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Probe(ctx); err != nil {
		t.Fatalf("probe of a healthy store: %v", err)
	}
	wantUnavailable(t, "a write to a full database", fillUp(t, db))
	wantUnavailable(t, "the probe of a full database", db.Probe(ctx))
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping of a full database = %v: it answers, though it cannot commit", err)
	}
	if err := db.View(ctx, func(tx store.Tx) error { _, err := tx.Changes().Latest(ctx); return err }); err != nil {
		t.Errorf("a read of a full database: %v", err)
	}

	// Room again.
	if _, err := db.SetMaxPageCount(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := db.Probe(ctx); err != nil {
		t.Fatalf("probe after the disk was cleared: %v", err)
	}
	if err := appendBig(ctx, db, -1); err != nil {
		t.Fatalf("a write after the disk was cleared: %v", err)
	}
}

// TestPostgresOutage: with PostgreSQL stopped every call fails unavailable
// (not internal), and once it is back the same handle serves again.
func TestPostgresOutage(t *testing.T) {
	cl := pgtest.NewCluster(t)
	ctx := context.Background()
	db := open(t, cl.URL())
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Probe(ctx); err != nil {
		t.Fatal(err)
	}

	cl.Stop(t)
	wantUnavailable(t, "Update with the server stopped", appendBig(ctx, db, 1))
	wantUnavailable(t, "View with the server stopped", db.View(ctx, func(tx store.Tx) error { _, err := tx.Changes().Latest(ctx); return err }))
	wantUnavailable(t, "Probe with the server stopped", db.Probe(ctx))
	wantUnavailable(t, "Ping with the server stopped", db.Ping(ctx))
	_, err := db.ReadChangeHead(ctx)
	wantUnavailable(t, "ReadChangeHead with the server stopped", err)

	cl.Start(t)
	// The pool's connections died with the server; database/sql drops
	// them as they fail. A handful of calls at most, then it serves.
	var last error
	for range 25 {
		if last = db.Probe(ctx); last == nil {
			break
		}
		wantUnavailable(t, "Probe while the pool reconnects", last)
	}
	if last != nil {
		t.Fatalf("the store did not recover: %v", last)
	}
	if err := appendBig(ctx, db, 2); err != nil {
		t.Fatalf("a write after recovery: %v", err)
	}
}

// TestConflictsPastRetryAreUnavailable: a transaction that loses every
// retry is the store overloaded, to be tried again later, not a bug.
func TestConflictsPastRetryAreUnavailable(t *testing.T) {
	pgtest.Require(t)
	db := open(t, migrated.NewDatabase(t))
	attempts := 0
	err := db.Update(context.Background(), func(tx store.Tx) error {
		attempts++
		return fmt.Errorf("a write: %w", &pgconn.PgError{Code: "40001", Message: "could not serialize access"})
	})
	wantUnavailable(t, "Update conflicting every time", err)
	if attempts < 2 {
		t.Errorf("Update tried %d times, want retries first", attempts)
	}
}
