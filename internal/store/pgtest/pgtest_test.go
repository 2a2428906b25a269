package pgtest

import (
	"context"
	"errors"
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

func TestTemplate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prepared := 0
	tmpl := NewTemplate(func(ctx context.Context, url string) error {
		prepared++
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE t (x INT); INSERT INTO t VALUES (1)")
		return err
	})
	count := func(url string, write bool) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if write {
			if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := tmpl.NewDatabase(t)
	if n := count(a, true); n != 2 {
		t.Fatalf("the first copy holds %d rows after an insert, want 2", n)
	}
	b := tmpl.NewDatabase(t)
	if a == b {
		t.Fatalf("two copies at the same URL %s", a)
	}
	if n := count(b, false); n != 1 {
		t.Fatalf("the second copy holds %d rows, want the template's 1", n)
	}
	if prepared != 1 {
		t.Fatalf("the template was prepared %d times, want once", prepared)
	}

	failing := NewTemplate(func(context.Context, string) error { return errors.New("broken migration") })
	for range 2 {
		f := &fakeTB{}
		if failing.NewDatabase(f) != "" || !f.failed {
			t.Fatal("a template that fails to prepare did not fail the test")
		}
	}
}
