package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var certBindingTests = []test{
	{"BindGetRebind", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Sessions().Create(ctx, newSession("s1", "alice", at(24*hour))))
			return tx.Sessions().Create(ctx, newSession("s2", "bob", at(24*hour)))
		})
		b := &store.CertBinding{Fingerprint: "ab01", SessionID: "s1", CreatedAt: at(0), ExpiresAt: at(24 * hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CertBindings().Bind(ctx, b) })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.CertBindings().Get(ctx, "ab01")
			ok(t, err)
			if !reflect.DeepEqual(got, b) {
				t.Errorf("Get = %+v, want %+v", got, b)
			}
			_, err = tx.CertBindings().Get(ctx, "AB01") // fingerprints are exact
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
		// A later login made with the certificate rebinds it.
		b2 := &store.CertBinding{Fingerprint: "ab01", SessionID: "s2", CreatedAt: at(hour), ExpiresAt: at(25 * hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CertBindings().Bind(ctx, b2) })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.CertBindings().Get(ctx, "ab01")
			ok(t, err)
			if !reflect.DeepEqual(got, b2) {
				t.Errorf("Get after rebinding = %+v, want %+v", got, b2)
			}
			return nil
		})
	}},
	{"BindUnknownSession", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Sessions().Create(ctx, newSession("s1", "alice", at(24*hour))))
			err := tx.CertBindings().Bind(ctx, &store.CertBinding{Fingerprint: "ab01", SessionID: "ghost", CreatedAt: at(0), ExpiresAt: at(hour)})
			wantCode(t, err, domain.CodeNotFound, "ghost")
			// The transaction goes on (PostgreSQL needs the savepoint).
			return tx.CertBindings().Bind(ctx, &store.CertBinding{Fingerprint: "ab02", SessionID: "s1", CreatedAt: at(0), ExpiresAt: at(hour)})
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CertBindings().Get(ctx, "ab01")
			wantCode(t, err, domain.CodeNotFound)
			_, err = tx.CertBindings().Get(ctx, "ab02")
			return err
		})
	}},
}
