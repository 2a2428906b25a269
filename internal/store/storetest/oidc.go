package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func oidcClient(id string, secret bool) *domain.OIDCClient {
	c := &domain.OIDCClient{ID: id, RedirectURIs: []string{"https://" + id + ".example/callback", "http://127.0.0.1:8000/cb"}, CreatedAt: at(0)}
	if secret {
		c.SecretHash = []byte("hash-of-" + id)
	}
	return c
}

func oidcRequest(id, client string) *store.OIDCAuthRequest {
	return &store.OIDCAuthRequest{
		ID: id, ClientID: client, RedirectURI: "https://" + client + ".example/callback",
		Scopes: []string{"openid", "email", "profile"}, State: "st-" + id, Nonce: "n-" + id,
		ResponseType: "code", ResponseMode: "query", CodeChallenge: "chal-" + id, CodeChallengeMethod: "S256",
		CreatedAt: at(0), ExpiresAt: at(10 * minute),
	}
}

const minute = hour / 60

var oidcTests = []test{
	{"Clients", func(t *testing.T, s store.Store) {
		web, native := oidcClient("notebooks", true), oidcClient("cli-app", false)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.OIDC().CreateClient(ctx, web))
			return tx.OIDC().CreateClient(ctx, native)
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			err := tx.OIDC().CreateClient(ctx, oidcClient("notebooks", false))
			wantCode(t, err, domain.CodeAlreadyExists, `"notebooks"`)
			wantField(t, err, "name", "name.duplicate")
			return nil // the transaction goes on after the refusal
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.OIDC().GetClient(ctx, "notebooks")
			ok(t, err)
			if !reflect.DeepEqual(got, web) {
				t.Errorf("GetClient = %+v, want %+v", got, web)
			}
			got, err = tx.OIDC().GetClient(ctx, "cli-app")
			ok(t, err)
			if got.SecretHash != nil {
				t.Errorf("public client's secret hash = %q, want nil", got.SecretHash)
			}
			_, err = tx.OIDC().GetClient(ctx, "Notebooks")
			wantCode(t, err, domain.CodeNotFound)
			all, err := tx.OIDC().ListClients(ctx)
			ok(t, err)
			if want := []*domain.OIDCClient{native, web}; !reflect.DeepEqual(all, want) {
				t.Errorf("ListClients = %+v, want by id %+v", all, want)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.OIDC().DeleteClient(ctx, "cli-app"))
			wantCode(t, tx.OIDC().DeleteClient(ctx, "cli-app"), domain.CodeNotFound)
			return nil
		})
	}},
	{"AuthRequestLifecycle", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		r := oidcRequest("r1", "notebooks")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			wantCode(t, tx.OIDC().CreateAuthRequest(ctx, r), domain.CodeNotFound, "notebooks")
			ok(t, tx.OIDC().CreateClient(ctx, oidcClient("notebooks", true)))
			return tx.OIDC().CreateAuthRequest(ctx, r)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.OIDC().GetAuthRequest(ctx, "r1")
			ok(t, err)
			if !reflect.DeepEqual(got, r) {
				t.Errorf("GetAuthRequest = %+v, want %+v", got, r)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			wantCode(t, tx.OIDC().CompleteAuthRequest(ctx, "r1", "ghost", at(minute)), domain.CodeNotFound, "ghost")
			wantCode(t, tx.OIDC().CompleteAuthRequest(ctx, "nope", "alice", at(minute)), domain.CodeNotFound)
			ok(t, tx.OIDC().CompleteAuthRequest(ctx, "r1", "alice", at(minute)))
			wantCode(t, tx.OIDC().CompleteAuthRequest(ctx, "r1", "alice", at(2*minute)), domain.CodeAlreadyExists, "already")
			return tx.OIDC().SetCode(ctx, "r1", []byte("code-hash"))
		})
		var redeemed *store.OIDCAuthRequest
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			redeemed, err = tx.OIDC().RedeemCode(ctx, []byte("code-hash"))
			return err
		})
		want := *r
		want.UID, want.AuthTime, want.CodeHash = "alice", at(minute), []byte("code-hash")
		if !reflect.DeepEqual(redeemed, &want) {
			t.Errorf("RedeemCode = %+v, want %+v", redeemed, &want)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.OIDC().RedeemCode(ctx, []byte("code-hash"))
			wantCode(t, err, domain.CodeNotFound, "used")
			got, err := tx.OIDC().GetAuthRequest(ctx, "r1")
			ok(t, err)
			if got.CodeHash != nil {
				t.Errorf("code hash after redemption = %q, want nil", got.CodeHash)
			}
			ok(t, tx.OIDC().DeleteAuthRequest(ctx, "r1"))
			ok(t, tx.OIDC().DeleteAuthRequest(ctx, "r1"))
			_, err = tx.OIDC().GetAuthRequest(ctx, "r1")
			wantCode(t, err, domain.CodeNotFound)
			wantCode(t, tx.OIDC().SetCode(ctx, "r1", []byte("x")), domain.CodeNotFound)
			return nil
		})
	}},
	{"CodeRedeemedOnce", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.OIDC().CreateClient(ctx, oidcClient("notebooks", true)))
			ok(t, tx.OIDC().CreateAuthRequest(ctx, oidcRequest("r1", "notebooks")))
			ok(t, tx.OIDC().CompleteAuthRequest(ctx, "r1", "alice", at(0)))
			return tx.OIDC().SetCode(ctx, "r1", []byte("the-code"))
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, _ int) error {
			_, err := tx.OIDC().RedeemCode(ctx, []byte("the-code"))
			return err
		})
		exactlyOne(t, errs, domain.CodeNotFound)
	}},
	{"TokensAndCascades", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		tok := &store.OIDCToken{ID: "t1", ClientID: "notebooks", UID: "alice", Scopes: []string{"openid"}, CreatedAt: at(0), ExpiresAt: at(hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.OIDC().CreateClient(ctx, oidcClient("notebooks", true)))
			ok(t, tx.OIDC().CreateClient(ctx, oidcClient("dash", true)))
			ok(t, tx.OIDC().CreateToken(ctx, tok))
			ok(t, tx.OIDC().CreateToken(ctx, &store.OIDCToken{ID: "t2", ClientID: "notebooks", UID: "alice", CreatedAt: at(0), ExpiresAt: at(2 * hour)}))
			ok(t, tx.OIDC().CreateToken(ctx, &store.OIDCToken{ID: "t3", ClientID: "dash", UID: "alice", CreatedAt: at(0), ExpiresAt: at(2 * hour)}))
			ok(t, tx.OIDC().CreateToken(ctx, &store.OIDCToken{ID: "t4", ClientID: "notebooks", UID: "bob", CreatedAt: at(0), ExpiresAt: at(2 * hour)}))
			wantCode(t, tx.OIDC().CreateToken(ctx, &store.OIDCToken{ID: "t5", ClientID: "ghost", UID: "bob", CreatedAt: at(0), ExpiresAt: at(hour)}), domain.CodeNotFound)
			return tx.OIDC().CreateAuthRequest(ctx, oidcRequest("r1", "dash"))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.OIDC().GetToken(ctx, "t1")
			ok(t, err)
			if !reflect.DeepEqual(got, tok) {
				t.Errorf("GetToken = %+v, want %+v", got, tok)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.OIDC().DeleteUserTokens(ctx, "alice", "notebooks")
			ok(t, err)
			if n != 2 {
				t.Errorf("DeleteUserTokens removed %d, want 2 (t1, t2)", n)
			}
			ok(t, tx.OIDC().DeleteToken(ctx, "t4"))
			ok(t, tx.OIDC().DeleteToken(ctx, "t4"))
			_, err = tx.OIDC().GetToken(ctx, "t4")
			wantCode(t, err, domain.CodeNotFound)
			// Removing a client takes its tokens and requests along.
			ok(t, tx.OIDC().DeleteClient(ctx, "dash"))
			_, err = tx.OIDC().GetToken(ctx, "t3")
			wantCode(t, err, domain.CodeNotFound)
			_, err = tx.OIDC().GetAuthRequest(ctx, "r1")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.OIDC().CreateClient(ctx, oidcClient("notebooks", true)))
			ok(t, tx.OIDC().CreateAuthRequest(ctx, oidcRequest("old", "notebooks"))) // expires at 10 min
			fresh := oidcRequest("fresh", "notebooks")
			fresh.ExpiresAt = at(2 * hour)
			ok(t, tx.OIDC().CreateAuthRequest(ctx, fresh))
			ok(t, tx.OIDC().CreateToken(ctx, &store.OIDCToken{ID: "old", ClientID: "notebooks", UID: "alice", CreatedAt: at(0), ExpiresAt: at(minute)}))
			return tx.OIDC().CreateToken(ctx, &store.OIDCToken{ID: "fresh", ClientID: "notebooks", UID: "alice", CreatedAt: at(0), ExpiresAt: at(2 * hour)})
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.OIDC().DeleteExpired(ctx, at(hour))
			ok(t, err)
			if n != 2 {
				t.Errorf("DeleteExpired = %d, want 2", n)
			}
			_, err = tx.OIDC().GetAuthRequest(ctx, "fresh")
			ok(t, err)
			_, err = tx.OIDC().GetToken(ctx, "fresh")
			ok(t, err)
			_, err = tx.OIDC().GetToken(ctx, "old")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
}
