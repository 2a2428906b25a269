package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

const idp = "https://idp.uni.example.edu"

func externalLogin(id string) *store.ExternalLogin {
	return &store.ExternalLogin{ID: id, StateHash: []byte("state-" + id), PollHash: []byte("poll-" + id), Nonce: "n-" + id, Verifier: "v-" + id, ReturnTo: "http://127.0.0.1:8400/" + id, CreatedAt: at(0), ExpiresAt: at(10 * minute)}
}

var federationTests = []test{
	{"Links", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		a1 := &store.IdentityLink{Issuer: idp, Subject: "1234", UID: "alice", Email: "alice@uni.example.edu", CreatedAt: at(0)}
		a2 := &store.IdentityLink{Issuer: "https://other.example", Subject: "1234", UID: "alice", Email: "a@other.example", CreatedAt: at(hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Federation().CreateLink(ctx, a1))
			ok(t, tx.Federation().CreateLink(ctx, a2))
			// One identity, one account.
			err := tx.Federation().CreateLink(ctx, &store.IdentityLink{Issuer: idp, Subject: "1234", UID: "bob", CreatedAt: at(hour)})
			wantCode(t, err, domain.CodeAlreadyExists, "linked")
			err = tx.Federation().CreateLink(ctx, &store.IdentityLink{Issuer: idp, Subject: "9", UID: "ghost", CreatedAt: at(hour)})
			wantCode(t, err, domain.CodeNotFound, "ghost")
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Federation().GetLink(ctx, idp, "1234")
			ok(t, err)
			if !reflect.DeepEqual(got, a1) {
				t.Errorf("GetLink = %+v, want %+v", got, a1)
			}
			_, err = tx.Federation().GetLink(ctx, idp, "12345")
			wantCode(t, err, domain.CodeNotFound)
			list, err := tx.Federation().ListLinks(ctx, "alice")
			ok(t, err)
			if want := []*store.IdentityLink{a1, a2}; !reflect.DeepEqual(list, want) {
				t.Errorf("ListLinks = %+v, want %+v", list, want)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			wantCode(t, tx.Federation().DeleteLink(ctx, "bob", idp, "1234"), domain.CodeNotFound)
			ok(t, tx.Federation().DeleteLink(ctx, "alice", idp, "1234"))
			wantCode(t, tx.Federation().DeleteLink(ctx, "alice", idp, "1234"), domain.CodeNotFound)
			// Unlinked, the identity may be linked again, to anyone.
			return tx.Federation().CreateLink(ctx, &store.IdentityLink{Issuer: idp, Subject: "1234", UID: "bob", CreatedAt: at(2 * hour)})
		})
	}},
	{"LoginLifecycle", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		l := externalLogin("l1")
		linking := externalLogin("l2")
		linking.LinkUID = "alice"
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Federation().CreateLogin(ctx, l))
			bad := externalLogin("l3")
			bad.LinkUID = "ghost"
			wantCode(t, tx.Federation().CreateLogin(ctx, bad), domain.CodeNotFound)
			return tx.Federation().CreateLogin(ctx, linking)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Federation().GetLogin(ctx, "l1")
			ok(t, err)
			if !reflect.DeepEqual(got, l) {
				t.Errorf("GetLogin = %+v, want %+v", got, l)
			}
			got, err = tx.Federation().GetLoginByState(ctx, []byte("state-l2"))
			ok(t, err)
			if !reflect.DeepEqual(got, linking) {
				t.Errorf("GetLoginByState = %+v, want %+v", got, linking)
			}
			_, err = tx.Federation().GetLoginByState(ctx, []byte("state-l9"))
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
		l.Issuer, l.Subject, l.Email, l.LinkHash = idp, "1234", "alice@uni.example.edu", []byte("link-token-hash")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Federation().ClaimCallback(ctx, l.ID, l.Issuer, l.Subject, l.Email))
			// The provider's answer is taken once.
			wantCode(t, tx.Federation().ClaimCallback(ctx, l.ID, l.Issuer, "other", l.Email), domain.CodeAlreadyExists, "already")
			wantCode(t, tx.Federation().ClaimCallback(ctx, "ghost", l.Issuer, l.Subject, l.Email), domain.CodeNotFound)
			return tx.Federation().UpdateLogin(ctx, l)
		})
		l.LinkHash, l.UID, l.FinishHash = nil, "alice", []byte("finish-hash")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Federation().UpdateLogin(ctx, l))
			ghost := *l
			ghost.UID = "ghost"
			wantCode(t, tx.Federation().UpdateLogin(ctx, &ghost), domain.CodeNotFound, "ghost")
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Federation().GetLogin(ctx, "l1")
			ok(t, err)
			if !reflect.DeepEqual(got, l) {
				t.Errorf("after UpdateLogin = %+v, want %+v", got, l)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Federation().DeleteLogin(ctx, "l1"))
			wantCode(t, tx.Federation().DeleteLogin(ctx, "l1"), domain.CodeNotFound)
			wantCode(t, tx.Federation().UpdateLogin(ctx, l), domain.CodeNotFound)
			n, err := tx.Federation().DeleteExpiredLogins(ctx, at(hour))
			ok(t, err)
			if n != 1 {
				t.Errorf("DeleteExpiredLogins = %d, want 1 (l2)", n)
			}
			return nil
		})
	}},
	{"CallbackClaimedOnce", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Federation().CreateLogin(ctx, externalLogin("l1"))
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Federation().ClaimCallback(ctx, "l1", idp, fmt.Sprint(i), "")
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
	}},
	{"LoginEndedOnce", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Federation().CreateLogin(ctx, externalLogin("l1"))
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, _ int) error {
			if _, err := tx.Federation().GetLogin(ctx, "l1"); err != nil {
				return err
			}
			return tx.Federation().DeleteLogin(ctx, "l1")
		})
		exactlyOne(t, errs, domain.CodeNotFound)
	}},
}
