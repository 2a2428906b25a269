package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
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

// memStore is a store.Store holding signing keys only, for running the
// real keys.Manager; other Tx methods panic (the embedded nil interface).
type memStore struct {
	mu   sync.Mutex
	keys map[string]store.SigningKey
}

type memTx struct {
	store.Tx
	s *memStore
}

func (t memTx) SigningKeys() store.SigningKeys { return memKeys(t) }

type memKeys memTx

func (k memKeys) Create(_ context.Context, sk *store.SigningKey) error {
	if _, ok := k.s.keys[sk.ID]; ok {
		return domain.AlreadyExists("signing key %s exists", sk.ID)
	}
	k.s.keys[sk.ID] = *sk
	return nil
}

func (k memKeys) List(context.Context) ([]*store.SigningKey, error) {
	var out []*store.SigningKey
	for _, sk := range k.s.keys {
		c := sk
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *store.SigningKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (k memKeys) Delete(_ context.Context, id string) error {
	delete(k.s.keys, id)
	return nil
}

func (s *memStore) Update(_ context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := maps.Clone(s.keys)
	if err := fn(memTx{s: s}); err != nil {
		s.keys = saved
		return err
	}
	return nil
}

func (s *memStore) View(_ context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(memTx{s: s})
}

func (s *memStore) Ping(context.Context) error    { return nil }
func (s *memStore) Migrate(context.Context) error { return nil }
func (s *memStore) Kind() string                  { return "memory" }
func (s *memStore) Close() error                  { return nil }
