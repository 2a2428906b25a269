package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newProvider(name string) *domain.Provider {
	return &domain.Provider{Name: name, URL: "https://" + name + ".example.org", State: domain.ProviderActive, CreatedAt: at(0)}
}

var providerTests = []test{
	{"CreateGetListUpdateDelete", func(t *testing.T, s store.Store) {
		a, b := newProvider("site1"), newProvider("alpha")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().Create(ctx, a))
			err := tx.Providers().Create(ctx, newProvider("site1"))
			wantCode(t, err, domain.CodeAlreadyExists, `"site1"`)
			wantField(t, err, "name", "name.duplicate")
			return tx.Providers().Create(ctx, b)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Providers().Get(ctx, "site1")
			ok(t, err)
			if !reflect.DeepEqual(got, a) {
				t.Errorf("Get = %+v, want %+v (no key yet: nil)", got, a)
			}
			_, err = tx.Providers().Get(ctx, "ghost")
			wantCode(t, err, domain.CodeNotFound, `"ghost"`)
			all, err := tx.Providers().List(ctx)
			ok(t, err)
			if want := []*domain.Provider{b, a}; !reflect.DeepEqual(all, want) {
				t.Errorf("List = %+v, want by name %+v", all, want)
			}
			return nil
		})
		a.PublicKey, a.RegisteredAt, a.State = []byte("0123456789abcdef0123456789abcdef"), at(hour), domain.ProviderDisabled
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().Update(ctx, a))
			wantCode(t, tx.Providers().Update(ctx, newProvider("ghost")), domain.CodeNotFound)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Providers().Get(ctx, "site1")
			ok(t, err)
			if !reflect.DeepEqual(got, a) {
				t.Errorf("after Update = %+v, want %+v", got, a)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().Delete(ctx, "alpha"))
			wantCode(t, tx.Providers().Delete(ctx, "alpha"), domain.CodeNotFound)
			return nil
		})
	}},
	{"RegistrationClaimedOnce", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().Create(ctx, newProvider("site1")))
			ok(t, tx.Providers().CreateRegistration(ctx, &domain.ProviderRegistration{TokenHash: []byte("h1"), Provider: "site1", ExpiresAt: at(hour)}))
			ok(t, tx.Providers().CreateRegistration(ctx, &domain.ProviderRegistration{TokenHash: []byte("h2"), Provider: "site1", ExpiresAt: at(hour)}))
			wantCode(t, tx.Providers().CreateRegistration(ctx, &domain.ProviderRegistration{TokenHash: []byte("h3"), Provider: "ghost", ExpiresAt: at(hour)}), domain.CodeNotFound)
			r, err := tx.Providers().ClaimRegistration(ctx, []byte("h1"))
			ok(t, err)
			if r.Provider != "site1" || !r.ExpiresAt.Equal(at(hour)) {
				t.Errorf("claimed %+v", r)
			}
			_, err = tx.Providers().ClaimRegistration(ctx, []byte("h1"))
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			_, err := tx.Providers().ClaimRegistration(ctx, []byte("h2"))
			return err
		})
		exactlyOne(t, errs, domain.CodeNotFound)
	}},
	{"TicketsUsedOnce", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().Create(ctx, newProvider("site1")))
			for _, id := range []string{"t1", "t2", "old"} {
				ok(t, tx.Providers().CreateTicket(ctx, &domain.ProviderTicket{ID: id, Provider: "site1", UID: "alice", ExpiresAt: at(10 * minute)}))
			}
			wantCode(t, tx.Providers().CreateTicket(ctx, &domain.ProviderTicket{ID: "t3", Provider: "site1", UID: "ghost", ExpiresAt: at(hour)}), domain.CodeNotFound)
			got, err := tx.Providers().UseTicket(ctx, "t1", at(minute))
			ok(t, err)
			if got.UID != "alice" || got.Provider != "site1" || !got.UsedAt.IsZero() {
				t.Errorf("UseTicket = %+v, want alice's unused ticket", got)
			}
			_, err = tx.Providers().UseTicket(ctx, "t1", at(minute))
			wantCode(t, err, domain.CodeFailedPrecondition, "used")
			_, err = tx.Providers().UseTicket(ctx, "ghost", at(minute))
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			_, err := tx.Providers().UseTicket(ctx, "t2", at(minute))
			return err
		})
		exactlyOne(t, errs, domain.CodeFailedPrecondition)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Providers().DeleteExpiredTickets(ctx, at(hour))
			ok(t, err)
			if n != 3 {
				t.Errorf("DeleteExpiredTickets = %d, want 3", n)
			}
			return nil
		})
	}},
	{"Connections", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		c1 := &domain.ProviderConnection{Provider: "site1", UID: "alice", LocalAccount: "tb_alice", UserKeyFingerprint: "SHA256:a", CreatedAt: at(0)}
		c2 := &domain.ProviderConnection{Provider: "alpha", UID: "alice", LocalAccount: "alice", UserKeyFingerprint: "SHA256:b", CreatedAt: at(0)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().Create(ctx, newProvider("site1")))
			ok(t, tx.Providers().Create(ctx, newProvider("alpha")))
			ok(t, tx.Providers().PutConnection(ctx, &domain.ProviderConnection{Provider: "site1", UID: "alice", LocalAccount: "old", UserKeyFingerprint: "SHA256:old", CreatedAt: at(0)}))
			ok(t, tx.Providers().PutConnection(ctx, c1)) // replaces
			ok(t, tx.Providers().PutConnection(ctx, c2))
			ok(t, tx.Providers().PutConnection(ctx, &domain.ProviderConnection{Provider: "site1", UID: "bob", LocalAccount: "tb_bob", CreatedAt: at(0)}))
			wantCode(t, tx.Providers().PutConnection(ctx, &domain.ProviderConnection{Provider: "ghost", UID: "alice", LocalAccount: "x", CreatedAt: at(0)}), domain.CodeNotFound)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Providers().ListConnections(ctx, "alice")
			ok(t, err)
			if want := []*domain.ProviderConnection{c2, c1}; !reflect.DeepEqual(got, want) {
				t.Errorf("ListConnections = %+v, want %+v", got, want)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Providers().DeleteConnection(ctx, "site1", "alice"))
			wantCode(t, tx.Providers().DeleteConnection(ctx, "site1", "alice"), domain.CodeNotFound)
			// Removing a provider removes its connections.
			ok(t, tx.Providers().Delete(ctx, "site1"))
			got, err := tx.Providers().ListConnections(ctx, "bob")
			ok(t, err)
			if len(got) != 0 {
				t.Errorf("bob's connections after the provider went: %+v", got)
			}
			return nil
		})
	}},
}
