package domain

import "time"

// Kinds of work the centre delivers to a site (Delivery.Kind). A site
// registers a handler for each kind it does.
const (
	DeliveryDisconnect    = "disconnect"    // a user's connection was removed at the centre
	DeliveryMaterialize   = "materialize"   // make a realization's environment
	DeliveryChange        = "change"        // bring it to new bindings
	DeliveryDematerialize = "dematerialize" // remove it
)

// Delivery states, as admins see them.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is a piece of work for a site, kept by the centre until the site
// acknowledges it: written in the transaction of the operation that causes
// it, so it is neither lost while the site is down nor sent for an
// operation that did not happen. The payload is JSON and holds no secret
// (the centre signs a short-lived token when it sends it).
type Delivery struct {
	// Seq orders deliveries: a site gets its deliveries in Seq order.
	Seq int64
	// ID is the site's idempotency key: the site does a delivery once.
	ID       string
	Provider string
	Kind     string
	// Key is the causing operation's idempotency key: enqueuing the same
	// key for the same site twice makes one delivery.
	Key         string
	Payload     []byte
	CreatedAt   time.Time
	Attempts    int
	NextAttempt time.Time
	// LeaseUntil is when a dispatcher's claim on it ends (zero: unclaimed).
	LeaseUntil  time.Time
	DeliveredAt time.Time
	FailedAt    time.Time
	LastError   string
}

// State is pending, delivered or failed.
func (d *Delivery) State() string {
	switch {
	case !d.DeliveredAt.IsZero():
		return DeliveryDelivered
	case !d.FailedAt.IsZero():
		return DeliveryFailed
	}
	return DeliveryPending
}
