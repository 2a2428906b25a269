package store

import (
	"context"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// ChangeDelivery is the change a delivery's enqueuing appends (key: the
// site), so that dispatchers hear of new work when it commits.
const ChangeDelivery = "delivery"

// DeliveryFilter selects deliveries for a listing, in Seq order.
type DeliveryFilter struct {
	// Provider, when set, selects one site's.
	Provider string
	// IncludeDone lists delivered and failed ones too.
	IncludeDone bool
	AfterSeq    int64
	Limit       int
}

// Deliveries is the queue of work for sites (see domain.Delivery).
type Deliveries interface {
	// Enqueue appends d and sets its Seq; domain already-exists when the
	// site has a delivery with d's Key (the caller's operation is then a
	// repeat).
	Enqueue(ctx context.Context, d *domain.Delivery) error
	// Get returns a delivery by id, or domain not-found.
	Get(ctx context.Context, id string) (*domain.Delivery, error)
	// List returns deliveries by Seq, Seq > AfterSeq.
	List(ctx context.Context, f DeliveryFilter) ([]*domain.Delivery, error)
	// Heads returns, for each site with pending deliveries, the oldest
	// pending one, by site name, at most limit: a site gets its work in
	// order, so only a head may be sent.
	Heads(ctx context.Context, limit int) ([]*domain.Delivery, error)
	// Claim takes a pending delivery for a dispatcher until until, and
	// counts an attempt: false when it is done, not due at now (its next
	// attempt is later), or claimed by another whose claim has not ended at
	// now (of two concurrent claims one wins).
	Claim(ctx context.Context, id string, now, until time.Time) (bool, error)
	// Delivered marks a pending delivery delivered at.
	Delivered(ctx context.Context, id string, at time.Time) error
	// Retry releases a claimed delivery to be tried again at next,
	// recording why it failed.
	Retry(ctx context.Context, id string, next time.Time, lastError string) error
	// Fail gives up on a pending delivery at at, saying why.
	Fail(ctx context.Context, id string, at time.Time, reason string) error
	// FailPending gives up on every pending delivery of a site, saying
	// why, and returns how many there were.
	FailPending(ctx context.Context, provider string, at time.Time, reason string) (int, error)
	// Pending counts a site's pending deliveries.
	Pending(ctx context.Context, provider string) (int, error)
	// DeleteDone forgets deliveries delivered or failed before the
	// cutoff and returns how many.
	DeleteDone(ctx context.Context, before time.Time) (int, error)
}
