package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// healthTests: a healthy store commits the readiness probe, again and
// again, and an operation's own answer is never taken for an outage.
var healthTests = []test{
	{"ProbeCommits", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		for i := range 3 {
			if err := s.Probe(ctx); err != nil {
				t.Fatalf("probe %d: %v", i, err)
			}
		}
		ok(t, s.Ping(ctx))
	}},
	{"DomainErrorsAreNotOutages", func(t *testing.T, s store.Store) {
		ctx := context.Background()
		err := s.Update(ctx, func(tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "nobody")
			return err
		})
		if domain.CodeOf(err) != domain.CodeNotFound || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Update = %v, want not found, not an outage", err)
		}
		err = s.View(ctx, func(tx store.Tx) error { return domain.Invalid("x", "x.bad", "bad x") })
		if domain.CodeOf(err) != domain.CodeInvalidArgument || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("View = %v, want invalid argument, not an outage", err)
		}
	}},
}
