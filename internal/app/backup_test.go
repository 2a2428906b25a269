package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
)

// storeConfig opens a fresh migrated store and returns it with the
// configuration an operator's command would name it by.
func storeConfig(t *testing.T, kind storeKind) (store.Store, app.StoreConfig) {
	t.Helper()
	var sc app.StoreConfig
	if kind == postgres {
		sc.Database = migrated.NewDatabase(t)
	} else {
		sc.DataDir = t.TempDir()
	}
	st, err := app.OpenStore(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, sc
}

// everyListing reads every page of every paged listing as the caller of
// tok: the listings' keys by operation.
func everyListing(t *testing.T, h *harness, tok string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range pagedListings {
		pt := ""
		for {
			rows, next, err := l.list(context.Background(), h, tok, pt)
			if err != nil {
				t.Fatalf("%s: %v", l.op, err)
			}
			out[l.op] = append(out[l.op], rows...)
			if pt = next; pt == "" {
				break
			}
		}
	}
	return out
}

// TestBackupRestore backs up a running server's store, restores the backup
// into a fresh store, starts a server there and expects every listing to
// answer as the original did, on both stores. Both servers have one public
// URL, so the original's login is valid at the restored one (signing keys
// and sessions are in the backup) and no new login changes the audit
// record being compared.
func TestBackupRestore(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testBackupRestore(t, kind) })
	}
}

func testBackupRestore(t *testing.T, kind storeKind) {
	ctx := context.Background()
	samePublicURL := func(c *app.Config) { c.PublicURL = "http://trellis.test" }
	st, sc := storeConfig(t, kind)
	first := newServer(t, st, samePublicURL)
	tok := first.bootstrapAdmin()
	at := time.Now().UTC().Truncate(time.Millisecond)
	err := st.Update(ctx, func(tx store.Tx) error {
		for _, l := range pagedListings {
			for i := range 3 {
				if l.add == nil {
					continue
				}
				if err := l.add(ctx, tx, i, at); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newServer(t, st, samePublicURL) // loads the rows, as a starting replica does
	want := everyListing(t, h, tok)
	for op, keys := range want {
		if len(keys) == 0 {
			t.Fatalf("%s lists nothing: the comparison would prove nothing", op)
		}
	}

	file := filepath.Join(t.TempDir(), "trellis.backup")
	if err := app.Backup(ctx, sc, file); err != nil { // the servers keep running
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	if err := app.Backup(ctx, sc, file); err == nil {
		t.Error("a backup overwrote an existing file")
	}
	// The embedded store is locked by its server; PostgreSQL's has accounts.
	if err := app.Restore(ctx, sc, file); err == nil || !strings.Contains(err.Error(), "accounts") && !strings.Contains(err.Error(), "another process") {
		t.Errorf("restoring over a store in use: %v, want a refusal", err)
	}

	var fresh app.StoreConfig
	if kind == postgres {
		fresh.Database = pgtest.NewDatabase(t) // empty: not even migrated
	} else {
		fresh.DataDir = t.TempDir()
	}
	if err := app.Restore(ctx, fresh, file); err != nil {
		t.Fatal(err)
	}
	restored, err := app.OpenStore(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close() })
	got := everyListing(t, newServer(t, restored, samePublicURL), tok)
	for _, l := range pagedListings {
		if !slices.Equal(got[l.op], want[l.op]) {
			t.Errorf("%s after restore:\n got %v\nwant %v", l.op, got[l.op], want[l.op])
		}
	}
}
