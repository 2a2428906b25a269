package token

import (
	"crypto/sha256"
	"sync"
	"time"
)

// The cache is split into shards, each with its own lock, so that parallel
// requests rarely wait for each other.
const cacheShards = 16

// evictProbe is how many entries a full shard looks at for an expired one
// before it evicts one at random.
const evictProbe = 8

type entry struct {
	claims *Claims // never handed out: Verify returns clones
	kid    string
}

type cache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*entry
}

func newCache(size int) *cache {
	c := &cache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*entry)
	}
	return c
}

// shard picks by the first byte of the hash: SHA-256 spreads them evenly.
func (c *cache) shard(k [sha256.Size]byte) *cacheShard {
	return &c.shards[int(k[0])%cacheShards]
}

func (c *cache) get(k [sha256.Size]byte) (*entry, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	return e, ok
}

func (c *cache) remove(k [sha256.Size]byte) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// put adds e. A full shard first drops an expired entry among the few it
// looks at, else one at random (map iteration order is random): cheap, and
// under a flood of distinct tokens the cache degrades to misses, never to
// unbounded memory.
func (c *cache) put(k [sha256.Size]byte, e *entry, now time.Time, leeway time.Duration) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		var victim [sha256.Size]byte
		n := 0
		for vk, ve := range s.m {
			if n == 0 {
				victim = vk
			}
			if !now.Before(ve.claims.Expiry.Add(leeway)) {
				victim = vk
				break
			}
			if n++; n == evictProbe {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[k] = e
}

// size counts the entries (for tests).
func (c *cache) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
