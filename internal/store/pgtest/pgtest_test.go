package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndSeparate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE t (x INT)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a new database holds %d tables, want 0", n)
	}
}

// fakeTB records what Require asks of a test instead of doing it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestRequireWithoutPostgres(t *testing.T) {
	mu.Lock()
	savedStarted, savedWhy := started, unavailable
	started, unavailable = true, "no initdb (simulated)"
	mu.Unlock()
	defer func() {
		mu.Lock()
		started, unavailable = savedStarted, savedWhy
		mu.Unlock()
	}()

	t.Setenv("CI", "")
	f := &fakeTB{}
	Require(f)
	if !f.skipped || f.failed {
		t.Errorf("outside CI: skipped %v, failed %v; want a skip", f.skipped, f.failed)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{}
	Require(f)
	if f.skipped || !f.failed {
		t.Errorf("with CI=true: skipped %v, failed %v; want a failure", f.skipped, f.failed)
	}
}
