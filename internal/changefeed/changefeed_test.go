package changefeed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

func openStore(t *testing.T) store.Store {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func appendChanges(t *testing.T, st store.Store, kind string, keys ...string) {
	ctx := context.Background()
	if err := st.Update(ctx, func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.Changes().Append(ctx, kind, k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSyncDispatchesInOrder(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	appendChanges(t, st, store.ChangeUser, "before") // older than the follower: not dispatched
	f, err := New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var users, sessions, all []string
	f.On(store.ChangeUser, func(k string) { users = append(users, k) })
	f.On(store.ChangeSession, func(k string) { sessions = append(sessions, k) })
	f.OnAny(func(k string) { all = append(all, k) })
	resets := 0
	f.OnReset(func() { resets++ })

	appendChanges(t, st, store.ChangeUser, "alice", "bob")
	appendChanges(t, st, store.ChangeSession, "s1")
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(users, []string{"alice", "bob"}) || !slices.Equal(sessions, []string{"s1"}) {
		t.Fatalf("users %v sessions %v", users, sessions)
	}
	if !slices.Equal(all, []string{"user:alice", "user:bob", "session:s1"}) {
		t.Fatalf("all %v", all)
	}
	if f.Seen() != 4 || resets != 0 {
		t.Fatalf("seen %d resets %d", f.Seen(), resets)
	}
	// Nothing new: nothing dispatched.
	if err := f.Sync(ctx); err != nil || len(all) != 3 {
		t.Fatalf("idle sync dispatched %v (%v)", all, err)
	}
}

func TestGapResets(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	f, err := New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resets := 0
	var got []string
	f.OnReset(func() { resets++ })
	f.On(store.ChangeUser, func(k string) { got = append(got, k) })

	prune := func() {
		if err := st.Update(ctx, func(tx store.Tx) error {
			_, err := tx.Changes().Prune(ctx, time.Now().Add(time.Hour))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything the follower missed was pruned: reset, skip to the end.
	appendChanges(t, st, store.ChangeUser, "a", "b")
	prune()
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if resets != 1 || f.Seen() != 2 || len(got) != 0 {
		t.Fatalf("after full gap: resets %d seen %d got %v", resets, f.Seen(), got)
	}
	// Part pruned: reset, then the rest is dispatched.
	appendChanges(t, st, store.ChangeUser, "c")
	prune()
	appendChanges(t, st, store.ChangeUser, "d")
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if resets != 2 || f.Seen() != 4 || !slices.Equal(got, []string{"d"}) {
		t.Fatalf("after partial gap: resets %d seen %d got %v", resets, f.Seen(), got)
	}
}

// TestBarrier: after Barrier returns, every change committed before it was
// called has been dispatched, also under concurrent callers and writers.
func TestBarrier(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	f, err := New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	f.On(store.ChangeUser, func(k string) { mu.Lock(); seen[k] = true; mu.Unlock() })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				key := fmt.Sprintf("w%d-%d", w, i)
				appendChanges(t, st, store.ChangeUser, key)
				if err := f.Barrier(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok := seen[key]
				mu.Unlock()
				if !ok {
					t.Errorf("change %s committed before Barrier but not dispatched after it", key)
					return
				}
			}
		})
	}
	wg.Wait()
}
