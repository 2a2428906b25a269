package store

import (
	"context"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Providers holds the sites, their one-time registration tokens, the
// connection tickets issued for them and users' connections to them.
type Providers interface {
	// Create stores a provider; domain already-exists naming the field
	// "name" when the name is taken.
	Create(ctx context.Context, p *domain.Provider) error
	// Get returns the provider of that name, or domain not-found.
	Get(ctx context.Context, name string) (*domain.Provider, error)
	// List returns every provider, by name.
	List(ctx context.Context) ([]*domain.Provider, error)
	// Update writes a provider's state, key and registration time;
	// domain not-found when there is no such provider.
	Update(ctx context.Context, p *domain.Provider) error
	// Delete removes a provider with its registrations, tickets and
	// connections; domain not-found when there is none.
	Delete(ctx context.Context, name string) error

	// CreateRegistration stores a registration token's hash.
	CreateRegistration(ctx context.Context, r *domain.ProviderRegistration) error
	// ClaimRegistration removes and returns the registration whose token
	// hashes to hash, expired or not: domain not-found when there is none,
	// so of two that present one token exactly one gets it.
	ClaimRegistration(ctx context.Context, hash []byte) (*domain.ProviderRegistration, error)

	// CreateTicket stores an issued connection ticket.
	CreateTicket(ctx context.Context, t *domain.ProviderTicket) error
	// UseTicket marks a ticket used at now and returns it as it was:
	// domain not-found when there is none, failed-precondition when it was
	// used already (of two concurrent uses exactly one succeeds).
	UseTicket(ctx context.Context, id string, now time.Time) (*domain.ProviderTicket, error)
	// DeleteExpiredTickets forgets tickets that expired before the cutoff.
	DeleteExpiredTickets(ctx context.Context, before time.Time) (int, error)

	// PutConnection stores a connection, replacing the user's previous one
	// at the same provider; domain not-found when the user or the provider
	// does not exist.
	PutConnection(ctx context.Context, c *domain.ProviderConnection) error
	// ListConnections returns uid's connections, by provider.
	ListConnections(ctx context.Context, uid string) ([]*domain.ProviderConnection, error)
	// DeleteConnection removes uid's connection to provider; domain
	// not-found when there is none.
	DeleteConnection(ctx context.Context, provider, uid string) error
}

// Change kinds of sites, appended by the service where it changes them: a
// provider (its state, key, removal), keyed by its name, and a user's
// connections, keyed by the uid. Replicas cache who may send requests to
// which site by them.
const (
	ChangeProvider           = "provider"
	ChangeProviderConnection = "provider_connection"
)
