package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// workers is how many goroutines race in each concurrency test.
const workers = 8

// race runs fn(i) for i in [0, workers) at once and returns the errors.
func race(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx, i int) error) []error {
	t.Helper()
	return raceN(t, s, workers, fn)
}

// exactlyOne checks that one call succeeded and all others failed with code.
func exactlyOne(t *testing.T, errs []error, code domain.Code) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case domain.CodeOf(err) != code:
			t.Errorf("worker %d: %v, want %v", i, err, code)
		}
	}
	if wins != 1 {
		t.Errorf("%d workers succeeded, want exactly 1", wins)
	}
}

var concurrencyTests = []test{
	{"CreateSameUID", func(t *testing.T, s store.Store) {
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			u := newUser("alice")
			u.Email = fmt.Sprintf("alice%d@example.org", i)
			return tx.Users().Create(ctx, u, "h")
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
	}},
	// Users and projects share one namespace: of a user and projects
	// claiming one name at once, exactly one gets it, whatever the kinds.
	{"SharedNamespace", func(t *testing.T, s store.Store) {
		createUsers(t, s, "owner")
		for round := range 4 {
			name := fmt.Sprintf("clash%d", round)
			errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
				if (i+round)%2 == 0 {
					u := newUser(name)
					u.Email = fmt.Sprintf("%s-%d@example.org", name, i)
					return tx.Users().Create(ctx, u, "h")
				}
				return tx.Projects().Create(ctx, newProject(name, "owner"))
			})
			exactlyOne(t, errs, domain.CodeAlreadyExists)
			var users, projects int
			view(t, s, func(ctx context.Context, tx store.Tx) error {
				if _, err := tx.Users().Get(ctx, name); err == nil {
					users++
				}
				if _, err := tx.Projects().Get(ctx, name); err == nil {
					projects++
				}
				return nil
			})
			if users+projects != 1 {
				t.Errorf("round %d: %d users and %d projects named %s, want one of them", round, users, projects, name)
			}
		}
	}},
	{"ConsumeOneToken", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		tok := newToken("tok", "alice", store.PurposeResetPassword)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.OneTimeTokens().Create(ctx, tok)
		})
		var got atomic.Pointer[store.OneTimeToken]
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			tk, err := tx.OneTimeTokens().Consume(ctx, tok.Hash, tok.Purpose, t0)
			if err == nil {
				got.Store(tk)
			}
			return err
		})
		exactlyOne(t, errs, domain.CodeNotFound)
		if tk := got.Load(); tk == nil || tk.UID != "alice" {
			t.Errorf("the winner got %+v", tk)
		}
	}},
	{"RotateRefreshOnce", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		old := []byte("old-hash")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ss := newSession("s1", "alice", at(hour))
			ss.RefreshHash = old
			return tx.Sessions().Create(ctx, ss)
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Sessions().RotateRefresh(ctx, "s1", old, fmt.Appendf(nil, "new-%d", i), t0)
		})
		exactlyOne(t, errs, domain.CodeAborted)
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		got := getSession(t, s, "s1")
		if want := fmt.Sprintf("new-%d", winner); string(got.RefreshHash) != want || string(got.PrevRefreshHash) != string(old) {
			t.Errorf("session refresh %q prev %q, want %q and %q", got.RefreshHash, got.PrevRefreshHash, want, old)
		}
	}},
	{"RecordLoginFailures", func(t *testing.T, s store.Store) {
		counts := make([]int, workers)
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) (err error) {
			counts[i], err = tx.LoginFailures().Record(ctx, "ghost", "192.0.2.1", t0)
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}
		slices.Sort(counts)
		for i, n := range counts {
			if n != i+1 {
				t.Fatalf("counts returned %v, want 1..%d: an update was lost", counts, workers)
			}
		}
	}},
	{"ReserveLoginAttempts", func(t *testing.T, s store.Store) {
		// The service's reservation: read the count and record the attempt
		// in one transaction. Concurrent attempts are admitted exactly up
		// to the limit, whatever their interleaving.
		const limit = 3
		errRefused := domain.ResourceExhausted("back-off")
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			n, _, err := tx.LoginFailures().Get(ctx, "alice", "192.0.2.1")
			if err != nil {
				return err
			}
			if n >= limit {
				return errRefused
			}
			_, err = tx.LoginFailures().Record(ctx, "alice", "192.0.2.1", t0)
			return err
		})
		admitted := 0
		for i, err := range errs {
			switch {
			case err == nil:
				admitted++
			case err != errRefused:
				t.Errorf("worker %d: %v", i, err)
			}
		}
		if admitted != limit {
			t.Errorf("%d of %d concurrent attempts admitted, want exactly %d", admitted, workers, limit)
		}
	}},
	{"ChangeFeedGapFree", func(t *testing.T, s store.Store) {
		const perWorker = 20
		const total = workers * perWorker
		ctx := ctxFor(t)

		// A reader runs alongside the writers: whenever it has seen
		// Latest() == n, every change up to n must be there.
		stop := make(chan struct{})
		readerDone := make(chan error, 1)
		go func() {
			readerDone <- func() error {
				for {
					select {
					case <-stop:
						return nil
					default:
					}
					var n int64
					if err := s.View(ctx, func(tx store.Tx) (err error) {
						n, err = tx.Changes().Latest(ctx)
						return err
					}); err != nil {
						return err
					}
					var seqs []int64
					if err := s.View(ctx, func(tx store.Tx) error {
						cs, err := tx.Changes().Since(ctx, 0, total)
						for _, c := range cs {
							seqs = append(seqs, c.Seq)
						}
						return err
					}); err != nil {
						return err
					}
					if int64(len(seqs)) < n {
						return fmt.Errorf("saw Latest %d, then only %d changes", n, len(seqs))
					}
					for i, seq := range seqs {
						if seq != int64(i+1) {
							return fmt.Errorf("changes %v are not 1..%d", seqs, len(seqs))
						}
					}
				}
			}()
		}()

		var wg sync.WaitGroup
		errs := make(chan error, total)
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					errs <- s.Update(ctx, func(tx store.Tx) error {
						return tx.Changes().Append(ctx, store.ChangeUser, fmt.Sprintf("w%d-%d", w, i))
					})
				}
			})
		}
		wg.Wait()
		close(stop)
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		if err := <-readerDone; err != nil {
			t.Fatalf("reader: %v", err)
		}

		view(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Changes().Latest(ctx)
			ok(t, err)
			if n != total {
				t.Errorf("Latest = %d, want %d", n, total)
			}
			cs, err := tx.Changes().Since(ctx, 0, total)
			ok(t, err)
			keys := map[string]bool{}
			for i, c := range cs {
				if c.Seq != int64(i+1) {
					t.Fatalf("change %d has seq %d: the feed has a gap or is out of order", i+1, c.Seq)
				}
				keys[c.Key] = true
			}
			if len(cs) != total || len(keys) != total {
				t.Errorf("%d changes, %d distinct keys, want %d", len(cs), len(keys), total)
			}
			return nil
		})
	}},
}
