package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newChallenge(id, uid string, created time.Duration) *store.Challenge {
	return &store.Challenge{
		ID: id, UID: uid, Type: "scram-argon2id", Data: `{"nonce":"` + id + `"}`,
		CreatedAt: at(created), ExpiresAt: at(created + 2*time.Minute),
	}
}

// liveChallenges consumes (in a transaction that rolls back) each id and
// returns those that exist.
func liveChallenges(t *testing.T, s store.Store, ids ...string) []string {
	t.Helper()
	var live []string
	err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			_, err := tx.Challenges().Consume(ctx, id)
			switch {
			case err == nil:
				live = append(live, id)
			case !domain.HasCode(err, domain.CodeNotFound):
				return err
			}
		}
		return errSentinel
	})
	if err != errSentinel {
		t.Fatal(err)
	}
	return live
}

var challengeTests = []test{
	{"CreateConsume", func(t *testing.T, s store.Store) {
		want := newChallenge("c1", "alice", 0)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Challenges().Create(ctx, want)
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			wantCode(t, tx.Challenges().Create(ctx, newChallenge("c1", "bob", 0)), domain.CodeAlreadyExists, `"c1"`)
			got, err := tx.Challenges().Consume(ctx, "c1")
			ok(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Consume = %+v, want %+v", got, want)
			}
			// Used: gone, within the transaction and after it.
			_, err = tx.Challenges().Consume(ctx, "c1")
			wantCode(t, err, domain.CodeNotFound, `"c1"`)
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Challenges().Consume(ctx, "c1")
			wantCode(t, err, domain.CodeNotFound)
			_, err = tx.Challenges().Consume(ctx, "never")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"NoAccountNeeded", func(t *testing.T, s store.Store) {
		// A challenge for a uid without an account is stored like any
		// other: its answer must not tell the difference.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Challenges().Create(ctx, newChallenge("c1", "ghost", 0))
		})
		if live := liveChallenges(t, s, "c1"); len(live) != 1 {
			t.Fatal("a challenge for a uid without an account was not kept")
		}
	}},
	{"ConsumeExpired", func(t *testing.T, s store.Store) {
		c := newChallenge("c1", "alice", 0)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Challenges().Create(ctx, c)
		})
		// The store returns it whatever the time; the caller judges.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Challenges().Consume(ctx, "c1")
			ok(t, err)
			if !got.ExpiresAt.Equal(c.ExpiresAt) {
				t.Errorf("expires at %v, want %v", got.ExpiresAt, c.ExpiresAt)
			}
			return nil
		})
		if live := liveChallenges(t, s, "c1"); len(live) != 0 {
			t.Error("a consumed expired challenge is still there")
		}
	}},
	{"RollbackKeepsIt", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Challenges().Create(ctx, newChallenge("c1", "alice", 0))
		})
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.Challenges().Consume(ctx, "c1"); err != nil {
				return err
			}
			return errSentinel
		})
		if err != errSentinel {
			t.Fatal(err)
		}
		if live := liveChallenges(t, s, "c1"); len(live) != 1 {
			t.Error("a consumption that rolled back used the challenge up")
		}
	}},
	{"Trim", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i := range 5 {
				ok(t, tx.Challenges().Create(ctx, newChallenge(fmt.Sprintf("a%d", i), "alice", time.Duration(i)*time.Second)))
			}
			return tx.Challenges().Create(ctx, newChallenge("b0", "bob", 0))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Challenges().Trim(ctx, "alice", 2)
			ok(t, err)
			if n != 3 {
				t.Errorf("Trim removed %d, want 3", n)
			}
			n, err = tx.Challenges().Trim(ctx, "alice", 2)
			if n != 0 {
				t.Errorf("a second Trim removed %d", n)
			}
			return err
		})
		live := liveChallenges(t, s, "a0", "a1", "a2", "a3", "a4", "b0")
		if want := []string{"a3", "a4", "b0"}; !slices.Equal(live, want) {
			t.Errorf("after Trim: %v, want %v (the newest two of alice's, bob's untouched)", live, want)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Challenges().Trim(ctx, "alice", 0)
			if n != 2 {
				t.Errorf("Trim(keep 0) removed %d, want 2", n)
			}
			return err
		})
	}},
	{"DeleteExpired", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i, id := range []string{"c0", "c1", "c2"} {
				ok(t, tx.Challenges().Create(ctx, newChallenge(id, "alice", time.Duration(i)*time.Minute)))
			}
			// c0 expired at 2m, c1 at 3m, c2 at 4m.
			n, err := tx.Challenges().DeleteExpired(ctx, at(3*time.Minute))
			if n != 1 {
				t.Errorf("DeleteExpired = %d, want 1 (only what expired before the cutoff)", n)
			}
			return err
		})
		if live := liveChallenges(t, s, "c0", "c1", "c2"); !slices.Equal(live, []string{"c1", "c2"}) {
			t.Errorf("after DeleteExpired: %v", live)
		}
	}},
	{"ConsumeOnce", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Challenges().Create(ctx, newChallenge("c1", "alice", 0))
		})
		var got atomic.Pointer[store.Challenge]
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			c, err := tx.Challenges().Consume(ctx, "c1")
			if err == nil {
				got.Store(c)
			}
			return err
		})
		exactlyOne(t, errs, domain.CodeNotFound)
		if c := got.Load(); c == nil || c.UID != "alice" {
			t.Errorf("the winner got %+v", c)
		}
	}},
	{"Secret", func(t *testing.T, s store.Store) {
		var first, again, other []byte
		update(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			first, err = tx.Challenges().Secret(ctx, "decoy", []byte("candidate-1"))
			return err
		})
		update(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			if again, err = tx.Challenges().Secret(ctx, "decoy", []byte("candidate-2")); err != nil {
				return err
			}
			other, err = tx.Challenges().Secret(ctx, "other", []byte("candidate-3"))
			return err
		})
		if string(first) != "candidate-1" || string(again) != "candidate-1" || string(other) != "candidate-3" {
			t.Errorf("Secret = %q, then %q, other %q", first, again, other)
		}
		// A secret stored in a transaction that rolled back is not kept.
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.Challenges().Secret(ctx, "rolled", []byte("lost")); err != nil {
				return err
			}
			return errSentinel
		})
		if err != errSentinel {
			t.Fatal(err)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			v, err := tx.Challenges().Secret(ctx, "rolled", []byte("kept"))
			if string(v) != "kept" {
				t.Errorf("Secret after a rollback = %q, want kept", v)
			}
			return err
		})
	}},
	{"SecretRace", func(t *testing.T, s store.Store) {
		got := make([][]byte, workers)
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) (err error) {
			got[i], err = tx.Challenges().Secret(ctx, "decoy", fmt.Appendf(nil, "candidate-%d", i))
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("worker %d: %v", i, err)
			}
		}
		for i := range got {
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("replicas got different secrets: %q", got)
			}
		}
	}},
	{"UserVerifier", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Users().ScramVerifier(ctx, "alice")
			ok(t, err)
			if got != "" {
				t.Errorf("a new account's verifier is %q, want none", got)
			}
			ok(t, tx.Users().SetScramVerifier(ctx, "alice", "$scram-argon2id$alice"))
			wantCode(t, tx.Users().SetScramVerifier(ctx, "ghost", "x"), domain.CodeNotFound, `"ghost"`)
			_, err = tx.Users().ScramVerifier(ctx, "ghost")
			wantCode(t, err, domain.CodeNotFound, `"ghost"`)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			a, err := tx.Users().ScramVerifier(ctx, "alice")
			ok(t, err)
			b, err := tx.Users().ScramVerifier(ctx, "bob")
			ok(t, err)
			if a != "$scram-argon2id$alice" || b != "" {
				t.Errorf("verifiers: alice %q, bob %q", a, b)
			}
			// The password hash is a separate thing.
			h, err := tx.Users().PasswordHash(ctx, "alice")
			if h != "hash-alice" {
				t.Errorf("password hash %q changed", h)
			}
			return err
		})
	}},
}
