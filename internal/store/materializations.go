package store

import (
	"context"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Materializations holds realizations' materialization states and their
// elements (see domain.Materialization).
type Materializations interface {
	// Put writes a materialization's own fields (not its elements),
	// creating it if needed; domain not-found when the realization does
	// not exist.
	Put(ctx context.Context, m *domain.Materialization) error
	// Get returns a realization's materialization with its elements by
	// kind and name; domain not-found when it has none.
	Get(ctx context.Context, realization string) (*domain.Materialization, error)
	// ReplaceElements replaces the elements of one site's part of a
	// materialization with els.
	ReplaceElements(ctx context.Context, realization, provider string, els []domain.ElementState) error
	// Silent lists realizations whose materialization waits for a site
	// since before cutoff and is not suspect yet, at most limit.
	Silent(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
}
