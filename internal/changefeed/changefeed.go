// Package changefeed follows the store's change feed so that what a replica
// keeps in memory (sessions, users, later the membership graph) is invalidated
// when any replica changes the underlying rows.
package changefeed

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
)

// Handler is told that the object of a kind with key changed.
type Handler func(key string)

// Follower reads the change feed from where it left off and dispatches each
// change to the handlers registered for its kind.
type Follower struct {
	st       store.Store
	log      *slog.Logger
	mu       sync.Mutex // serializes Sync so changes are dispatched in order
	seen     int64
	handlers map[string][]Handler
	all      []Handler
	resets   []func()
}

// New returns a follower that starts at the current end of the feed: what a
// replica loads afterwards is newer than anything before.
func New(ctx context.Context, st store.Store, log *slog.Logger) (*Follower, error) {
	f := &Follower{st: st, log: log, handlers: map[string][]Handler{}}
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		f.seen, err = tx.Changes().Latest(ctx)
		return err
	})
	return f, err
}

// On registers h for changes of kind. Register before Run.
func (f *Follower) On(kind string, h Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[kind] = append(f.handlers[kind], h)
}

// OnAny registers h for every change (the key is "kind:key").
func (f *Follower) OnAny(h Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = append(f.all, h)
}

// OnReset registers r to run when the follower finds a gap in the feed (it
// fell further behind than the feed keeps): whatever was kept may be stale
// in ways no longer recorded, so it must all be dropped.
func (f *Follower) OnReset(r func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets = append(f.resets, r)
}

// Seen returns the sequence number of the last change dispatched.
func (f *Follower) Seen() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

const batch = 500

// Sync dispatches every change committed so far. A writer calls it after its
// commit so that its own replica never serves what it just changed from a
// stale cache.
func (f *Follower) Sync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		var (
			changes []store.Change
			latest  int64
		)
		err := f.st.View(ctx, func(tx store.Tx) error {
			var err error
			if changes, err = tx.Changes().Since(ctx, f.seen, batch); err != nil {
				return err
			}
			latest, err = tx.Changes().Latest(ctx)
			return err
		})
		if err != nil {
			return err
		}
		if gap(f.seen, changes, latest) {
			for _, r := range f.resets {
				r()
			}
			if len(changes) == 0 {
				f.seen = latest
				return nil
			}
			// Skip to what is still recorded; the reset covered the rest.
			f.seen = changes[0].Seq - 1
		}
		for _, c := range changes {
			for _, h := range f.handlers[c.Kind] {
				h(c.Key)
			}
			for _, h := range f.all {
				h(c.Kind + ":" + c.Key)
			}
			f.seen = c.Seq
		}
		if len(changes) < batch {
			return nil
		}
	}
}

// gap reports whether changes after seen were pruned before this follower
// read them.
func gap(seen int64, changes []store.Change, latest int64) bool {
	if len(changes) > 0 {
		return changes[0].Seq > seen+1
	}
	return latest > seen
}

// Run polls the feed every interval until ctx ends; the interval bounds how
// long another replica's change takes to reach this one.
func (f *Follower) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("change feed poll failed", "err", err)
			}
		}
	}
}
