package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var serviceTests = []test{
	{"CreateGetListSetStateDelete", func(t *testing.T, s store.Store) {
		keyed := &store.Service{Name: "runner", PublicKey: []byte("0123456789abcdef0123456789abcdef"), State: store.ServiceActive, CreatedAt: at(0)}
		secret := &store.Service{Name: "archiver", SecretHash: []byte("hash-of-secret"), State: store.ServiceActive, CreatedAt: at(hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Services().Create(ctx, keyed))
			return tx.Services().Create(ctx, secret)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Services().Get(ctx, "runner")
			ok(t, err)
			if !reflect.DeepEqual(got, keyed) {
				t.Errorf("Get(runner) = %+v, want %+v", got, keyed)
			}
			got, err = tx.Services().Get(ctx, "archiver")
			ok(t, err)
			if !reflect.DeepEqual(got, secret) {
				t.Errorf("Get(archiver) = %+v, want %+v (the unused credential nil)", got, secret)
			}
			_, err = tx.Services().Get(ctx, "Runner") // names are case-sensitive
			wantCode(t, err, domain.CodeNotFound, `"Runner"`)
			all, err := tx.Services().List(ctx)
			ok(t, err)
			if want := []*store.Service{secret, keyed}; !reflect.DeepEqual(all, want) {
				t.Errorf("List = %+v, want by name %+v", all, want)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Services().SetState(ctx, "runner", store.ServiceDisabled)
			ok(t, err)
			if got.State != store.ServiceDisabled {
				t.Errorf("state after SetState = %q", got.State)
			}
			_, err = tx.Services().SetState(ctx, "ghost", store.ServiceDisabled)
			wantCode(t, err, domain.CodeNotFound)
			ok(t, tx.Services().Delete(ctx, "archiver"))
			wantCode(t, tx.Services().Delete(ctx, "archiver"), domain.CodeNotFound)
			_, err = tx.Services().Get(ctx, "archiver")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"CreateDuplicate", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Services().Create(ctx, &store.Service{Name: "runner", SecretHash: []byte("h1"), State: store.ServiceActive, CreatedAt: at(0)})
		})
		// Refused, and the transaction goes on (PostgreSQL needs the
		// savepoint).
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			err := tx.Services().Create(ctx, &store.Service{Name: "runner", SecretHash: []byte("h2"), State: store.ServiceActive, CreatedAt: at(hour)})
			wantCode(t, err, domain.CodeAlreadyExists, `"runner"`)
			wantField(t, err, "name", "name.duplicate")
			return tx.Services().Create(ctx, &store.Service{Name: "other", SecretHash: []byte("h3"), State: store.ServiceActive, CreatedAt: at(hour)})
		})
	}},
	{"AssertionsUsedOnce", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Services().UseAssertion(ctx, "runner", "j1", at(5*minute)))
			err := tx.Services().UseAssertion(ctx, "runner", "j1", at(5*minute))
			wantCode(t, err, domain.CodeAlreadyExists, "j1")
			// A jti is the service's own: another service may use it.
			ok(t, tx.Services().UseAssertion(ctx, "archiver", "j1", at(hour)))
			return nil
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Services().UseAssertion(ctx, "runner", "j2", at(5*minute))
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Services().DeleteExpiredAssertions(ctx, at(10*minute))
			ok(t, err)
			if n != 2 {
				t.Errorf("DeleteExpiredAssertions = %d, want 2 (runner's)", n)
			}
			// Forgotten once expired (and then refused as expired anyway).
			return tx.Services().UseAssertion(ctx, "runner", "j1", at(20*minute))
		})
	}},
}
