package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
)

var leaseTests = []test{
	{"AcquireRenewExpire", func(t *testing.T, s store.Store) {
		acquire := func(holder string, now time.Time) bool {
			var got bool
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				var err error
				got, err = tx.Leases().Acquire(ctx, "reaper", holder, now, time.Minute)
				return err
			})
			return got
		}
		steps := []struct {
			holder string
			at     time.Duration
			want   bool
		}{
			{"a", 0, true},                  // free: a takes it
			{"b", 30 * time.Second, false},  // a's is live
			{"a", 50 * time.Second, true},   // a renews until 1m50s
			{"b", 90 * time.Second, false},  // still a's
			{"b", 110 * time.Second, true},  // expired: b takes over
			{"a", 120 * time.Second, false}, // now b's
		}
		for i, st := range steps {
			if got := acquire(st.holder, at(st.at)); got != st.want {
				t.Fatalf("step %d: %s at %v: got %v, want %v", i, st.holder, st.at, got, st.want)
			}
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Leases().Acquire(ctx, "mail", "a", at(120*time.Second), time.Minute)
			if err == nil && !got {
				t.Error("a different lease name is independent")
			}
			return err
		})
		// Release by a non-holder is a no-op; by the holder frees it.
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Leases().Release(ctx, "reaper", "a") })
		if acquire("a", at(121*time.Second)) {
			t.Fatal("release by a non-holder freed the lease")
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Leases().Release(ctx, "reaper", "b") })
		if !acquire("a", at(122*time.Second)) {
			t.Fatal("released lease not free")
		}
	}},
	{"OneHolderUnderContention", func(t *testing.T, s store.Store) {
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			holder := string(rune('a' + i))
			wg.Go(func() {
				err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
					got, err := tx.Leases().Acquire(ctx, "contended", holder, t0, time.Minute)
					if got {
						wins.Add(1)
					}
					return err
				})
				if err != nil {
					t.Errorf("%s: %v", holder, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d holders got the lease, want exactly 1", wins.Load())
		}
	}},
}

var pruneTests = []test{
	{"PruneByAge", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i := range 3 {
				if err := tx.Changes().Append(ctx, store.ChangeUser, string(rune('a'+i))); err != nil {
					return err
				}
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Changes().Prune(ctx, time.Now().Add(-time.Hour))
			if err == nil && n != 0 {
				t.Errorf("pruned %d recent changes", n)
			}
			n, err = tx.Changes().Prune(ctx, time.Now().Add(time.Hour))
			if err == nil && n != 3 {
				t.Errorf("pruned %d of 3 old changes", n)
			}
			return err
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			latest, err := tx.Changes().Latest(ctx)
			if err == nil && latest != 3 {
				t.Errorf("Latest after pruning = %d, want 3: the counter survives", latest)
			}
			return err
		})
	}},
}

var headTests = []test{
	{"HeadReaderAgrees", func(t *testing.T, s store.Store) {
		hr, isHR := s.(store.HeadReader)
		if !isHR {
			// Optional to the feed (it falls back to a transaction), but
			// every store Trellis ships has it.
			t.Fatal("the store has no one-statement head read (store.HeadReader)")
		}
		ctx := ctxFor(t)
		for i := range 3 {
			head, err := hr.ReadChangeHead(ctx)
			ok(t, err)
			if head != int64(i) {
				t.Fatalf("head %d, want %d", head, i)
			}
			update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Changes().Append(ctx, store.ChangeUser, "u") })
		}
	}},
}
