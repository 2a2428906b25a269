package storetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

const hour = time.Hour

func newSession(id, uid string, expires time.Time) *domain.Session {
	return &domain.Session{
		ID: id, UID: uid, CreatedAt: t0, ExpiresAt: expires,
		RefreshHash: []byte("refresh-" + id),
	}
}

func newToken(hash, uid, purpose string) *store.OneTimeToken {
	return &store.OneTimeToken{
		Hash: []byte(hash), Purpose: purpose, UID: uid, Data: "data-" + hash,
		CreatedAt: t0, ExpiresAt: at(2 * hour),
	}
}

func getSession(t *testing.T, s store.Store, id string) *domain.Session {
	t.Helper()
	var ss *domain.Session
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		ss, err = tx.Sessions().Get(ctx, id)
		return err
	})
	return ss
}

var sessionTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		want := &domain.Session{
			ID: "s1", UID: "alice", CreatedAt: t0, ExpiresAt: at(24 * hour),
			RefreshHash: []byte{0, 1, 2, 255}, LastSeenAt: at(time.Minute),
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Sessions().Create(ctx, want)
		})
		if got := getSession(t, s, "s1"); !reflect.DeepEqual(got, want) {
			t.Errorf("Get = %+v, want %+v", got, want)
		}
	}},
	{"CreateErrors", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Sessions().Create(ctx, newSession("s1", "alice", at(hour)))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			dup := newSession("s1", "alice", at(hour))
			dup.RefreshHash = []byte("other")
			wantCode(t, tx.Sessions().Create(ctx, dup), domain.CodeAlreadyExists, `"s1"`)
			wantCode(t, tx.Sessions().Create(ctx, newSession("s2", "ghost", at(hour))),
				domain.CodeNotFound, `user "ghost"`)
			_, err := tx.Sessions().Get(ctx, "nope")
			wantCode(t, err, domain.CodeNotFound, `session "nope" not found`)
			return nil
		})
	}},
	{"RefreshRotation", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		h1, h2, h3 := []byte("hash-1"), []byte("hash-2"), []byte("hash-3")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ss := newSession("s1", "alice", at(hour))
			ss.RefreshHash = h1
			ok(t, tx.Sessions().Create(ctx, ss))
			return tx.Sessions().Create(ctx, newSession("s2", "bob", at(hour))) // a bystander
		})
		byHash := func(tx store.Tx, ctx context.Context, h []byte) (*domain.Session, error) {
			return tx.Sessions().GetByRefreshHash(ctx, h)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := byHash(tx, ctx, h1)
			ok(t, err)
			if got.ID != "s1" {
				t.Errorf("GetByRefreshHash(h1) = %s", got.ID)
			}
			return tx.Sessions().RotateRefresh(ctx, "s1", h1, h2, at(time.Minute))
		})
		got := getSession(t, s, "s1")
		if !bytes.Equal(got.RefreshHash, h2) || !bytes.Equal(got.PrevRefreshHash, h1) || !got.LastSeenAt.Equal(at(time.Minute)) {
			t.Errorf("after rotation: refresh %q prev %q last seen %v", got.RefreshHash, got.PrevRefreshHash, got.LastSeenAt)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			// The new token finds the session, and so does the old one,
			// whose replay reveals a theft.
			for _, h := range [][]byte{h2, h1} {
				got, err := byHash(tx, ctx, h)
				ok(t, err)
				if got.ID != "s1" || !bytes.Equal(got.RefreshHash, h2) {
					t.Errorf("GetByRefreshHash(%s) = %s with refresh %q", h, got.ID, got.RefreshHash)
				}
			}
			// The old token cannot rotate again.
			err := tx.Sessions().RotateRefresh(ctx, "s1", h1, h3, at(2*time.Minute))
			wantCode(t, err, domain.CodeAborted)
			wantNoSecret(t, err, string(h1))
			wantNoSecret(t, err, hex.EncodeToString(h1))
			ok(t, tx.Sessions().RotateRefresh(ctx, "s1", h2, h3, at(2*time.Minute)))
			_, err = byHash(tx, ctx, h1) // two rotations ago: gone
			wantCode(t, err, domain.CodeNotFound)
			for _, h := range [][]byte{nil, {}, []byte("unknown")} {
				_, err = byHash(tx, ctx, h)
				wantCode(t, err, domain.CodeNotFound)
			}
			wantCode(t, tx.Sessions().RotateRefresh(ctx, "nope", h3, h1, t0), domain.CodeAborted)
			return nil
		})
	}},
	{"Revoke", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Sessions().Create(ctx, newSession("s1", "alice", at(24*hour)))
		})
		if !getSession(t, s, "s1").Live(at(hour)) {
			t.Fatal("a new session is not live")
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Sessions().Revoke(ctx, "s1", at(hour))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Sessions().Revoke(ctx, "s1", at(2*hour))) // twice: no error
			wantCode(t, tx.Sessions().Revoke(ctx, "nope", t0), domain.CodeNotFound, `"nope"`)
			return nil
		})
		got := getSession(t, s, "s1")
		if got.Live(at(hour)) || !got.RevokedAt.Equal(at(hour)) {
			t.Errorf("after Revoke: live %v, revoked at %v (want the first revocation, %v)",
				got.Live(at(hour)), got.RevokedAt, at(hour))
		}
	}},
	{"RevokeUser", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		now := at(2 * hour)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, ss := range []*domain.Session{
				newSession("live1", "alice", at(24*hour)),
				newSession("live2", "alice", at(3*hour)),
				newSession("revoked", "alice", at(24*hour)),
				newSession("expired", "alice", at(hour)),
				newSession("bobs", "bob", at(24*hour)),
			} {
				ok(t, tx.Sessions().Create(ctx, ss))
			}
			return tx.Sessions().Revoke(ctx, "revoked", at(hour))
		})
		var got []string
		update(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			got, err = tx.Sessions().RevokeUser(ctx, "alice", now)
			return err
		})
		slices.Sort(got)
		if want := []string{"live1", "live2"}; !slices.Equal(got, want) {
			t.Errorf("RevokeUser = %v, want %v", got, want)
		}
		for id, want := range map[string]time.Time{"live1": now, "revoked": at(hour), "expired": {}, "bobs": {}} {
			if got := getSession(t, s, id); !got.RevokedAt.Equal(want) {
				t.Errorf("%s revoked at %v, want %v", id, got.RevokedAt, want)
			}
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			again, err := tx.Sessions().RevokeUser(ctx, "alice", now)
			if len(again) != 0 {
				t.Errorf("second RevokeUser = %v", again)
			}
			return err
		})
	}},
	{"ListRevokedSince", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		since, now := at(hour), at(10*hour)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for id, v := range map[string]struct{ revoked, expires time.Time }{
				"before":  {at(30 * time.Minute), at(24 * hour)}, // revoked before since
				"atSince": {since, at(24 * hour)},                // at since: included
				"after":   {at(5 * hour), at(24 * hour)},
				"expired": {at(2 * hour), at(9 * hour)}, // no token of it is valid any more
				"live":    {time.Time{}, at(24 * hour)},
			} {
				ok(t, tx.Sessions().Create(ctx, newSession(id, "alice", v.expires)))
				if !v.revoked.IsZero() {
					ok(t, tx.Sessions().Revoke(ctx, id, v.revoked))
				}
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Sessions().ListRevokedSince(ctx, since, now)
			ok(t, err)
			slices.SortFunc(got, func(a, b *domain.Session) int { return a.RevokedAt.Compare(b.RevokedAt) })
			if ids := fmtList(got, func(s *domain.Session) string { return s.ID }); ids != "[atSince after]" {
				t.Errorf("ListRevokedSince = %s, want [atSince after]", ids)
			}
			return nil
		})
	}},
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i, id := range []string{"s1", "s2", "s3"} {
				ok(t, tx.Sessions().Create(ctx, newSession(id, "alice", at(time.Duration(i+1)*hour))))
			}
			n, err := tx.Sessions().DeleteExpired(ctx, at(2*hour))
			if n != 1 {
				t.Errorf("DeleteExpired = %d, want 1 (only sessions that expired before the cutoff)", n)
			}
			return err
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Sessions().Get(ctx, "s1")
			wantCode(t, err, domain.CodeNotFound)
			_, err = tx.Sessions().Get(ctx, "s2")
			return err
		})
	}},
}

var tokenTests = []test{
	{"CreateConsume", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		want := newToken("secret-tok-hash", "alice", store.PurposeResetPassword)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.OneTimeTokens().Create(ctx, want)
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			// Another purpose does not match, and does not use it up.
			_, err := tx.OneTimeTokens().Consume(ctx, want.Hash, store.PurposeConfirmEmail, t0)
			wantCode(t, err, domain.CodeNotFound)
			got, err := tx.OneTimeTokens().Consume(ctx, want.Hash, store.PurposeResetPassword, at(hour))
			ok(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Consume = %+v, want %+v", got, want)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.OneTimeTokens().Consume(ctx, want.Hash, store.PurposeResetPassword, at(hour))
			wantCode(t, err, domain.CodeNotFound)
			wantNoSecret(t, err, "secret-tok-hash")
			return nil
		})
	}},
	{"Expired", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		tok := newToken("tok", "alice", store.PurposeConfirmEmail)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.OneTimeTokens().Create(ctx, tok)
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.OneTimeTokens().Consume(ctx, tok.Hash, tok.Purpose, tok.ExpiresAt)
			wantCode(t, err, domain.CodeFailedPrecondition, "expired")
			// It was deleted: a transaction that commits after the
			// failed-precondition error leaves no stale token.
			_, err = tx.OneTimeTokens().Consume(ctx, tok.Hash, tok.Purpose, t0)
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.OneTimeTokens().Consume(ctx, tok.Hash, tok.Purpose, t0)
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"DeleteFor", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, tok := range []*store.OneTimeToken{
				newToken("a-reset-1", "alice", store.PurposeResetPassword),
				newToken("a-reset-2", "alice", store.PurposeResetPassword),
				newToken("a-confirm", "alice", store.PurposeConfirmEmail),
				newToken("b-reset", "bob", store.PurposeResetPassword),
			} {
				ok(t, tx.OneTimeTokens().Create(ctx, tok))
			}
			return tx.OneTimeTokens().DeleteFor(ctx, "alice", store.PurposeResetPassword)
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for hash, purpose := range map[string]string{
				"a-reset-1": store.PurposeResetPassword, "a-reset-2": store.PurposeResetPassword,
			} {
				_, err := tx.OneTimeTokens().Consume(ctx, []byte(hash), purpose, t0)
				wantCode(t, err, domain.CodeNotFound)
			}
			for hash, purpose := range map[string]string{
				"a-confirm": store.PurposeConfirmEmail, "b-reset": store.PurposeResetPassword,
			} {
				_, err := tx.OneTimeTokens().Consume(ctx, []byte(hash), purpose, t0)
				ok(t, err)
			}
			return nil
		})
	}},
	{"CreateErrors", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.OneTimeTokens().Create(ctx, newToken("secret-token-hash", "alice", store.PurposeConfirmEmail))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			err := tx.OneTimeTokens().Create(ctx, newToken("secret-token-hash", "alice", store.PurposeConfirmEmail))
			wantCode(t, err, domain.CodeAlreadyExists)
			wantNoSecret(t, err, "secret-token-hash")
			err = tx.OneTimeTokens().Create(ctx, newToken("other", "ghost", store.PurposeConfirmEmail))
			wantCode(t, err, domain.CodeNotFound, `"ghost"`)
			return nil
		})
	}},
}
