// Package exclusive runs background work on one replica at a time: the one
// that holds the work's lease in the store. Replicas share nothing else, so
// when the holder dies another takes over once the lease expires.
package exclusive

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
)

// Job is a piece of recurring background work.
type Job struct {
	// Name is the lease's name, the same on every replica.
	Name string
	// Every is how often the holder works; the lease lasts three periods,
	// so a holder that misses one renewal keeps it.
	Every time.Duration
	Work  func(ctx context.Context) error
}

// Run works j every period while this replica (holder) has the lease, until
// ctx ends; it then releases the lease so another replica need not wait.
func Run(ctx context.Context, st store.Store, holder string, j Job, log *slog.Logger) {
	ttl := 3 * j.Every
	t := time.NewTicker(j.Every)
	defer t.Stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = st.Update(rctx, func(tx store.Tx) error { return tx.Leases().Release(rctx, j.Name, holder) })
	}()
	for {
		var mine bool
		err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			mine, err = tx.Leases().Acquire(ctx, j.Name, holder, time.Now(), ttl)
			return err
		})
		switch {
		case err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrUnavailable): // an outage is logged once, by the store's wrapper
			log.Warn("background job: lease failed", "job", j.Name, "err", err)
		case mine:
			if err := j.Work(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrUnavailable) {
				log.Warn("background job failed", "job", j.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
