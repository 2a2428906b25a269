package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newAPIToken(uid, id, name string, created int) *domain.APIToken {
	return &domain.APIToken{
		ID: id, UID: uid, Name: name, Scopes: "read",
		SecretHash: []byte("hash-of-" + id),
		CreatedAt:  at(time.Duration(created) * hour),
		ExpiresAt:  at(time.Duration(created)*hour + 30*24*hour),
	}
}

func getAPIToken(t *testing.T, s store.Store, id string) *domain.APIToken {
	t.Helper()
	var tok *domain.APIToken
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		tok, err = tx.APITokens().Get(ctx, id)
		return err
	})
	return tok
}

var apiTokenTests = []test{
	{"CreateGetList", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		a1, a2 := newAPIToken("alice", "id-a1", "ci", 0), newAPIToken("alice", "id-a2", "backup", 1)
		a2.Scopes = "trellis.v1.Experiments/*"
		b1 := newAPIToken("bob", "id-b1", "ci", 2) // names are per user
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, k := range []*domain.APIToken{a2, b1, a1} {
				ok(t, tx.APITokens().Create(ctx, k))
			}
			return nil
		})
		if got := getAPIToken(t, s, "id-a2"); !reflect.DeepEqual(got, a2) {
			t.Errorf("Get = %+v, want %+v", got, a2)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.APITokens().List(ctx, "alice")
			ok(t, err)
			if want := []*domain.APIToken{a1, a2}; !reflect.DeepEqual(got, want) {
				t.Errorf("List(alice) = %+v, want oldest first %+v", got, want)
			}
			got1, err := tx.APITokens().GetByName(ctx, "bob", "ci")
			ok(t, err)
			if !reflect.DeepEqual(got1, b1) {
				t.Errorf("GetByName(bob, ci) = %+v, want %+v", got1, b1)
			}
			_, err = tx.APITokens().GetByName(ctx, "bob", "backup")
			wantCode(t, err, domain.CodeNotFound)
			_, err = tx.APITokens().Get(ctx, "ID-A1") // ids are case-sensitive
			wantCode(t, err, domain.CodeNotFound)
			none, err := tx.APITokens().List(ctx, "ghost")
			ok(t, err)
			if len(none) != 0 {
				t.Errorf("List(ghost) = %+v", none)
			}
			return nil
		})
	}},
	{"CreateRefusals", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.APITokens().Create(ctx, newAPIToken("alice", "id-1", "ci", 0))
		})
		// A second token of the same name, and, after it, the same
		// transaction goes on (PostgreSQL needs the savepoint).
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			err := tx.APITokens().Create(ctx, newAPIToken("alice", "id-2", "ci", 1))
			wantCode(t, err, domain.CodeAlreadyExists, `"ci"`)
			wantField(t, err, "name", "name.duplicate")
			return tx.APITokens().Create(ctx, newAPIToken("alice", "id-3", "other", 1))
		})
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.APITokens().Create(ctx, newAPIToken("alice", "id-1", "third", 2))
		})
		wantCode(t, err, domain.CodeAlreadyExists)
		err = tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.APITokens().Create(ctx, newAPIToken("ghost", "id-9", "ci", 2))
		})
		wantCode(t, err, domain.CodeNotFound, `"ghost"`)
	}},
	{"RevokeAndTouch", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.APITokens().Create(ctx, newAPIToken("alice", "id-1", "ci", 0))
		})
		// Another user cannot revoke it, and learns only "not found".
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.APITokens().Revoke(ctx, "bob", "ci", at(hour))
			return err
		})
		wantCode(t, err, domain.CodeNotFound)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.APITokens().Revoke(ctx, "alice", "ci", at(2*hour))
			ok(t, err)
			if !got.RevokedAt.Equal(at(2 * hour)) {
				t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at(2*hour))
			}
			// Revoking again keeps the first time.
			got, err = tx.APITokens().Revoke(ctx, "alice", "ci", at(3*hour))
			ok(t, err)
			if !got.RevokedAt.Equal(at(2 * hour)) {
				t.Errorf("RevokedAt after a second revoke = %v, want %v", got.RevokedAt, at(2*hour))
			}
			// Uses are recorded, never backwards; a missing token is fine.
			ok(t, tx.APITokens().Touch(ctx, "id-1", at(5*hour)))
			ok(t, tx.APITokens().Touch(ctx, "id-1", at(4*hour)))
			return tx.APITokens().Touch(ctx, "missing", at(5*hour))
		})
		if got := getAPIToken(t, s, "id-1"); !got.LastUsedAt.Equal(at(5 * hour)) {
			t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, at(5*hour))
		}
	}},
}
