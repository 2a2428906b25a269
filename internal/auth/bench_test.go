package auth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// BenchmarkRevocationCheck measures the check every request with an access
// token makes (liveSession: is its session live, not revoked, the user's)
// on a replica whose store holds 1,000,000 live and 100,000 revoked
// sessions (SQLite, written once, which takes a while).
//
// Requests come from an active set of sessions, a tenth of them revoked
// (their tokens still presented after a logout), and one request in a
// hundred from any session of the store (one not seen for a while, which
// over the run are many more than the view holds). The view is warmed with
// the active set first. The cost stays flat while the active set fits the
// view (maxCached entries); past that, misses read the store.
//
//	go test -run '^$' -bench RevocationCheck -benchtime 2000000x ./internal/auth/
func BenchmarkRevocationCheck(b *testing.B) {
	const live, revoked = 1_000_000, 100_000
	ctx := context.Background()
	now := time.Now()
	st, ids, uids := revocationStore(b, live, revoked, now)
	total := len(ids)
	// The active sets are prefixes of one random order of all sessions,
	// so each holds revoked ones in the store's proportion.
	order := rand.New(rand.NewPCG(1, 1)).Perm(total)
	isRevoked := func(i int) bool { return i < revoked }

	for _, active := range []int{10_000, 90_000, 200_000, total} {
		b.Run(fmt.Sprintf("active=%d", active), func(b *testing.B) {
			a := NewAuthenticator(nil, st, nil)
			check := func(i int) {
				_, err := a.liveSession(ctx, ids[i], uids[i], now)
				if (err != nil) != isRevoked(i) {
					b.Fatalf("session %s (revoked %v): %v", ids[i], isRevoked(i), err)
				}
			}
			for _, i := range order[:min(active, 2*maxCached)] {
				check(i)
			}
			r := rand.New(rand.NewPCG(2, uint64(active)))
			st.reads.Store(0)
			for b.Loop() {
				i := order[r.IntN(active)]
				if r.IntN(100) == 0 {
					i = r.IntN(total)
				}
				check(i)
			}
			b.ReportMetric(float64(st.reads.Load())/float64(b.N), "reads/op")
		})
	}
}

// countingStore counts read transactions.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	c.reads.Add(1)
	return c.Store.View(ctx, fn)
}

// revocationStore writes 10,000 users and their live and revoked sessions
// (the first revoked ids[i] are the revoked ones; uids[i] owns ids[i]).
func revocationStore(b *testing.B, live, revoked int, now time.Time) (*countingStore, []string, []string) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "trellis.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const users = 10_000
	err = db.Update(ctx, func(tx store.Tx) error {
		for i := range users {
			uid := fmt.Sprintf("u%05d", i)
			u := &domain.User{UID: uid, Email: uid + "@bench.example.org", EmailVerified: true, State: domain.UserActive, CreatedAt: now, UpdatedAt: now}
			if err := tx.Users().Create(ctx, u, "unusable"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	total := live + revoked
	ids, uids := make([]string, total), make([]string, total)
	const batch = 50_000
	for lo := 0; lo < total; lo += batch {
		err := db.Update(ctx, func(tx store.Tx) error {
			for i := lo; i < min(lo+batch, total); i++ {
				ids[i], uids[i] = fmt.Sprintf("s%07d", i), fmt.Sprintf("u%05d", i%users)
				s := &domain.Session{ID: ids[i], UID: uids[i], CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
				if i < revoked {
					s.RevokedAt = now
				}
				if err := tx.Sessions().Create(ctx, s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("wrote %d users, %d live and %d revoked sessions in %s", users, live, revoked, time.Since(start).Round(time.Second))
	return &countingStore{Store: db}, ids, uids
}
