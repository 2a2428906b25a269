package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// staticKeys is a KeySource and SigningKeySource over a fixed map; signing
// names the key that signs.
type staticKeys struct {
	mu      sync.RWMutex
	keys    map[string]ed25519.PrivateKey
	signing string
}

func newStaticKeys(kids ...string) *staticKeys {
	s := &staticKeys{keys: map[string]ed25519.PrivateKey{}}
	for _, kid := range kids {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s.keys[kid] = priv
	}
	s.signing = kids[0]
	return s
}

func (s *staticKeys) Signer() (string, ed25519.PrivateKey) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signing, s.keys[s.signing]
}

func (s *staticKeys) PublicKey(kid string) (ed25519.PublicKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	if !ok {
		return nil, false
	}
	return k.Public().(ed25519.PublicKey), true
}

func (s *staticKeys) set(kid string, k ed25519.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k == nil {
		delete(s.keys, kid)
		return
	}
	s.keys[kid] = k
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openStore returns a real embedded store for the real keys.Manager.
func openStore(t testing.TB) store.Store {
	t.Helper()
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
