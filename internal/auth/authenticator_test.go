package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// sessionStore is a store of sessions only, in memory, that counts the
// reads of each one. Everything else of store.Store is left nil: the
// authenticator's session check must not need it.
type sessionStore struct {
	store.Store
	mu       sync.Mutex
	sessions map[string]*domain.Session
	reads    map[string]int
	during   func(id string) // runs inside a read, as a concurrent change would
}

func newSessionStore() *sessionStore {
	return &sessionStore{sessions: map[string]*domain.Session{}, reads: map[string]int{}}
}

func (s *sessionStore) View(_ context.Context, fn func(store.Tx) error) error {
	return fn(sessionTx{s: s})
}

func (s *sessionStore) set(sess *domain.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *sess
	s.sessions[sess.ID] = &cp
}

func (s *sessionStore) readsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[id]
}

type sessionTx struct {
	store.Tx
	s *sessionStore
}

func (t sessionTx) Sessions() store.Sessions { return sessionRows{s: t.s} }

type sessionRows struct {
	store.Sessions
	s *sessionStore
}

func (r sessionRows) Get(_ context.Context, id string) (*domain.Session, error) {
	r.s.mu.Lock()
	r.s.reads[id]++
	sess, ok := r.s.sessions[id]
	during := r.s.during
	r.s.mu.Unlock()
	if during != nil {
		during(id)
	}
	if !ok {
		return nil, domain.NotFound("session %q", id)
	}
	cp := *sess
	return &cp, nil
}

// TestSessionViewKeepsWhatIsUsed: a replica that sees more distinct sessions
// than the view holds keeps the ones that requests keep presenting, instead
// of dropping them all whenever the view fills.
func TestSessionViewKeepsWhatIsUsed(t *testing.T) {
	ctx := context.Background()
	st := newSessionStore()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	st.set(&domain.Session{ID: "hot", UID: "ann", ExpiresAt: now.Add(time.Hour)})
	a := NewAuthenticator(nil, st, func() time.Time { return now })
	// A small view, to be quick; maxCached behaves the same.
	const limit = 256
	a.sessions = newView[*domain.Session](limit)
	// Sessions read once each (unknown ids here, remembered as nil, which
	// costs the view the same), with the hot one between them.
	for i := range 10 * limit {
		if _, err := a.session(ctx, fmt.Sprint("cold-", i)); err != nil {
			t.Fatal(err)
		}
		if i%(limit/4) == 0 {
			s, err := a.session(ctx, "hot")
			if err != nil || s == nil || s.UID != "ann" {
				t.Fatalf("hot session = %v, %v", s, err)
			}
		}
	}
	if n := st.readsOf("hot"); n != 1 {
		t.Errorf("the hot session was read from the store %d times, want once", n)
	}
	if n := a.sessions.len(); n != limit {
		t.Errorf("the view holds %d sessions, want its limit %d", n, limit)
	}
}

// TestSessionViewFollowsChanges: what the view keeps is dropped by an
// invalidation (the change feed's), and a value read while an invalidation
// happened is used once but not kept, since it may predate the change.
func TestSessionViewFollowsChanges(t *testing.T) {
	ctx := context.Background()
	st := newSessionStore()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	live := &domain.Session{ID: "s1", UID: "ann", ExpiresAt: now.Add(time.Hour)}
	st.set(live)
	a := NewAuthenticator(nil, st, func() time.Time { return now })
	check := func(wantLive bool, wantReads int) {
		t.Helper()
		s, err := a.session(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if got := s != nil && s.Live(now); got != wantLive {
			t.Errorf("live = %v, want %v", got, wantLive)
		}
		if n := st.readsOf("s1"); n != wantReads {
			t.Errorf("store reads = %d, want %d", n, wantReads)
		}
	}
	check(true, 1)
	check(true, 1) // kept

	revoked := *live
	revoked.RevokedAt = now
	st.set(&revoked)
	a.InvalidateSession("s1")
	check(false, 2)
	check(false, 2) // the revoked row is kept too

	// Revoked while being read: the reader may hold the old row.
	st.set(live)
	a.InvalidateSession("s1")
	st.during = func(string) {
		st.during = nil
		st.set(&revoked)
		a.InvalidateSession("s1")
	}
	check(true, 3)  // the row read before the change, for this request only
	check(false, 4) // not kept: read again

	a.Reset()
	check(false, 5)
}
