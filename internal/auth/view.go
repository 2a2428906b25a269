package auth

import "sync/atomic"

// view is one of the authenticator's in-memory copies of store rows
// (sessions, accounts, API tokens, services, certificate bindings), keyed by
// id and bounded in size. When it is full, a new entry replaces one not read
// recently, chosen with the CLOCK algorithm (second chance): an
// approximation of LRU whose hits only set a flag, so that lookups run in
// parallel under a read lock and only misses take the write lock. (Dropping
// the whole view when full, as it once did, sent every request back to the
// store whenever a replica saw more distinct sessions than the bound.)
//
// A view does no locking of its own: get runs under its owner's read (or
// write) lock, every other method under the write lock.
type view[V any] struct {
	limit int
	m     map[string]*viewEntry[V]
	ring  []*viewEntry[V] // every entry once, in no order; the hand sweeps it
	hand  int
}

type viewEntry[V any] struct {
	key  string
	val  V
	pos  int         // index in ring
	used atomic.Bool // read since the hand last passed
}

func newView[V any](limit int) *view[V] {
	return &view[V]{limit: max(1, limit), m: map[string]*viewEntry[V]{}}
}

func (v *view[V]) get(key string) (V, bool) {
	e, ok := v.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	// Load before Store: a hot entry's flag is set already, and writing it
	// on every hit would bounce its cache line between cores.
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e.val, true
}

// put adds or replaces key. A new entry starts unread, so that a burst of
// keys read once (a scan) replaces each other before it replaces the
// entries that requests keep reading.
func (v *view[V]) put(key string, val V) {
	if e, ok := v.m[key]; ok {
		e.val = val
		return
	}
	e := &viewEntry[V]{key: key, val: val}
	if len(v.ring) < v.limit {
		e.pos = len(v.ring)
		v.ring = append(v.ring, e)
	} else {
		// Entries read since the hand last passed lose their flag and
		// stay; the first one without it goes. At most one full turn.
		for v.ring[v.hand].used.Load() {
			v.ring[v.hand].used.Store(false)
			v.hand = (v.hand + 1) % len(v.ring)
		}
		delete(v.m, v.ring[v.hand].key)
		e.pos = v.hand
		v.ring[v.hand] = e
		v.hand = (v.hand + 1) % len(v.ring)
	}
	v.m[key] = e
}

// remove drops key, moving the ring's last entry into its place.
func (v *view[V]) remove(key string) {
	e, ok := v.m[key]
	if !ok {
		return
	}
	delete(v.m, key)
	last := len(v.ring) - 1
	moved := v.ring[last]
	v.ring[e.pos], moved.pos = moved, e.pos
	v.ring[last] = nil
	v.ring = v.ring[:last]
	if v.hand >= len(v.ring) {
		v.hand = 0
	}
}

func (v *view[V]) clear() {
	clear(v.m)
	clear(v.ring)
	v.ring = v.ring[:0]
	v.hand = 0
}

func (v *view[V]) len() int { return len(v.m) }
