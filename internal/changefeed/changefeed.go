// Package changefeed follows the store's change feed so that what a replica
// keeps in memory (sessions, users, later the membership graph) is invalidated
// when any replica changes the underlying rows.
package changefeed

import (
	"context"
	"errors"
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

	// Barrier rounds: see Barrier.
	bmu     sync.Mutex
	next    *round
	running bool
}

type round struct {
	done chan struct{}
	err  error
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

// Barrier returns once every change committed before the call began has
// been dispatched, so a decision made afterwards from what the handlers keep
// is as fresh as the store: a membership removed on any replica cannot be
// used by this one a moment later.
//
// Callers that arrive together share one round: a round reads the feed's
// head (one cheap query) and syncs only when it moved. A caller joins the
// round that starts after it arrived, never one already under way, since
// that one may have read the head before the caller's predecessor change
// committed. So a busy replica pays about one query per round, not per call.
func (f *Follower) Barrier(ctx context.Context) error {
	// A store that is the only writer of its database knows the head: no
	// query, no round.
	if lh, ok := f.st.(store.LocalHead); ok {
		if head, known := lh.ChangeHead(); known {
			if head <= f.Seen() {
				return nil
			}
			return f.Sync(ctx)
		}
	}
	f.bmu.Lock()
	if f.next == nil {
		f.next = &round{done: make(chan struct{})}
	}
	r := f.next
	if !f.running {
		f.running = true
		go f.rounds(context.WithoutCancel(ctx))
	}
	f.bmu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rounds runs barrier rounds back to back while callers wait for them.
func (f *Follower) rounds(ctx context.Context) {
	for {
		f.bmu.Lock()
		r := f.next
		f.next = nil
		if r == nil {
			f.running = false
			f.bmu.Unlock()
			return
		}
		f.bmu.Unlock()
		r.err = f.catchUp(ctx)
		close(r.done)
	}
}

// catchUp syncs when the feed's head is past what was dispatched.
func (f *Follower) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var latest int64
	var err error
	if hr, ok := f.st.(store.HeadReader); ok {
		latest, err = hr.ReadChangeHead(ctx)
	} else {
		err = f.st.View(ctx, func(tx store.Tx) error {
			latest, err = tx.Changes().Latest(ctx)
			return err
		})
	}
	if err != nil {
		return err
	}
	if latest <= f.Seen() {
		return nil
	}
	return f.Sync(ctx)
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
			// An outage of the store is logged once by its wrapper, not
			// at every poll.
			if err := f.Sync(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrUnavailable) {
				f.log.Warn("change feed poll failed", "err", err)
			}
		}
	}
}
