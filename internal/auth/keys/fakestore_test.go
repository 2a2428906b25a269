package keys

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// memStore is the smallest store.Store the manager needs: signing keys only.
// Transactions are serialized by one mutex and roll back on error. Tx
// methods other than SigningKeys panic (the embedded nil interface).
type memStore struct {
	mu   sync.Mutex
	keys map[string]store.SigningKey
}

func newMemStore() *memStore { return &memStore{keys: map[string]store.SigningKey{}} }

type memTx struct {
	store.Tx
	s *memStore
}

func (t memTx) SigningKeys() store.SigningKeys { return memKeys{t.s} }

type memKeys struct{ s *memStore }

func (k memKeys) Create(_ context.Context, sk *store.SigningKey) error {
	if _, ok := k.s.keys[sk.ID]; ok {
		return domain.AlreadyExists("signing key %s exists", sk.ID)
	}
	c := *sk
	c.PublicKey = slices.Clone(sk.PublicKey)
	c.PrivateKey = slices.Clone(sk.PrivateKey)
	k.s.keys[sk.ID] = c
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
	if _, ok := k.s.keys[id]; !ok {
		return domain.NotFound("signing key %s", id)
	}
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
func (s *memStore) Probe(context.Context) error   { return nil }
func (s *memStore) Migrate(context.Context) error { return nil }
func (s *memStore) Kind() string                  { return "memory" }
func (s *memStore) Close() error                  { return nil }

// stored returns a copy of the stored keys.
func (s *memStore) stored() map[string]store.SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.keys)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

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
