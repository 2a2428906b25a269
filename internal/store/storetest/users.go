package storetest

import (
	"context"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var userTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		want := &domain.User{
			UID: "alice", Email: "Alice@Example.org", EmailVerified: true,
			State: domain.UserPendingEmail, Admin: true, CreatedAt: t0, UpdatedAt: at(time.Minute),
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Users().Create(ctx, want, "argon2id-hash")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Users().Get(ctx, "alice")
			ok(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get = %+v, want %+v", got, want)
			}
			// E-mail lookup ignores case.
			got, err = tx.Users().GetByEmail(ctx, "ALICE@example.ORG")
			ok(t, err)
			if got.UID != "alice" {
				t.Errorf("GetByEmail = %s", got.UID)
			}
			h, err := tx.Users().PasswordHash(ctx, "alice")
			ok(t, err)
			if h != "argon2id-hash" {
				t.Errorf("PasswordHash = %q", h)
			}
			return nil
		})
	}},
	{"CreateDuplicateUID", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			u := newUser("alice")
			u.Email = "other@example.org"
			return tx.Users().Create(ctx, u, "secret-hash")
		})
		wantCode(t, err, domain.CodeAlreadyExists, `user "alice"`)
		wantNoSecret(t, err, "secret-hash")
	}},
	{"CreateDuplicateEmailIgnoresCase", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			u := newUser("bob")
			u.Email = "ALICE@example.org"
			return tx.Users().Create(ctx, u, "secret-hash")
		})
		wantCode(t, err, domain.CodeAlreadyExists, "e-mail", `"ALICE@example.org"`)
		wantNoSecret(t, err, "secret-hash")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "bob")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "bob")
			wantCode(t, err, domain.CodeNotFound, `user "bob" not found`)
			_, err = tx.Users().GetByEmail(ctx, "bob@example.org")
			wantCode(t, err, domain.CodeNotFound, "bob@example.org")
			_, err = tx.Users().PasswordHash(ctx, "bob")
			wantCode(t, err, domain.CodeNotFound, `"bob"`)
			err = tx.Users().SetPasswordHash(ctx, "bob", "secret-hash")
			wantCode(t, err, domain.CodeNotFound, `"bob"`)
			wantNoSecret(t, err, "secret-hash")
			err = tx.Users().Update(ctx, newUser("bob"))
			wantCode(t, err, domain.CodeNotFound, `"bob"`)
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		// Bytewise order: '_' sorts before letters, upper case before
		// lower case, whatever the database's locale.
		createUsers(t, s, "alice", "bob", "al_x", "alan", "albert", "carol", "b_", "am")
		cases := []struct {
			prefix string
			page   store.Page
			want   string
		}{
			{"", store.Page{}, "[al_x alan albert alice am b_ bob carol]"},
			{"al", store.Page{}, "[al_x alan albert alice]"},
			{"al", store.Page{Limit: 2}, "[al_x alan]"},
			{"al", store.Page{After: "alan", Limit: 2}, "[albert alice]"},
			{"al", store.Page{After: "alice"}, "[]"},
			{"", store.Page{After: "alice", Limit: 3}, "[am b_ bob]"},
			{"b", store.Page{}, "[b_ bob]"},
			{"bob", store.Page{}, "[bob]"},
			{"zed", store.Page{}, "[]"},
			{"", store.Page{After: "b"}, "[b_ bob carol]"},
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range cases {
				got, err := tx.Users().List(ctx, c.prefix, c.page)
				ok(t, err)
				if uids(got) != c.want {
					t.Errorf("List(%q, %+v) = %s, want %s", c.prefix, c.page, uids(got), c.want)
				}
			}
			return nil
		})
	}},
	{"Update", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		want := newUser("alice")
		want.Email, want.EmailVerified, want.State, want.Admin = "new@Example.org", true, domain.UserLocked, true
		want.UpdatedAt = at(time.Hour)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			u := *want
			u.CreatedAt = at(99 * time.Hour) // Update does not write CreatedAt
			return tx.Users().Update(ctx, &u)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Users().Get(ctx, "alice")
			ok(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after Update: %+v, want %+v", got, want)
			}
			_, err = tx.Users().GetByEmail(ctx, "alice@example.org")
			wantCode(t, err, domain.CodeNotFound)
			got, err = tx.Users().GetByEmail(ctx, "NEW@example.org")
			ok(t, err)
			if got.UID != "alice" {
				t.Errorf("GetByEmail(new) = %s", got.UID)
			}
			return nil
		})
		// Changing the case of one's own address is no conflict.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			want.Email = "NEW@example.org"
			return tx.Users().Update(ctx, want)
		})
	}},
	{"UpdateEmailTaken", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			u := newUser("bob")
			u.Email = "Alice@Example.org"
			return tx.Users().Update(ctx, u)
		})
		wantCode(t, err, domain.CodeAlreadyExists, "e-mail", `"Alice@Example.org"`)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Users().Get(ctx, "bob")
			ok(t, err)
			if got.Email != "bob@example.org" {
				t.Errorf("bob's e-mail is now %s", got.Email)
			}
			return nil
		})
	}},
	{"PasswordHash", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Users().SetPasswordHash(ctx, "alice", "new-hash")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for uid, want := range map[string]string{"alice": "new-hash", "bob": "hash-bob"} {
				h, err := tx.Users().PasswordHash(ctx, uid)
				ok(t, err)
				if h != want {
					t.Errorf("PasswordHash(%s) = %q, want %q", uid, h, want)
				}
			}
			return nil
		})
	}},
	{"CountAdmins", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Users().CountAdmins(ctx)
			ok(t, err)
			if n != 0 {
				t.Errorf("CountAdmins on an empty store = %d", n)
			}
			for i, uid := range []string{"root1", "root2", "alice"} {
				u := newUser(uid)
				u.Admin = i < 2
				if i == 1 {
					u.State = domain.UserDisabled // counted whatever the state
				}
				ok(t, tx.Users().Create(ctx, u, "h"))
			}
			n, err = tx.Users().CountAdmins(ctx)
			ok(t, err)
			if n != 2 {
				t.Errorf("CountAdmins = %d, want 2", n)
			}
			return nil
		})
	}},
	{"CloseKeepsTombstone", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Users().Create(ctx, newUser("alice"), "h"))
			ok(t, tx.Users().Create(ctx, newUser("bob"), "h"))
			ok(t, tx.Profiles().Set(ctx, store.ProfileUser, "alice", map[string]string{"name": "Alice"}))
			return nil
		})
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			projects, realizations, err := tx.Users().Holdings(ctx, "alice")
			ok(t, err)
			if len(projects)+len(realizations) != 0 {
				t.Errorf("Holdings of a new account = %v %v", projects, realizations)
			}
			return tx.Users().Close(ctx, "alice", "admin", at)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.Users().Get(ctx, "alice"); !domain.HasCode(err, domain.CodeNotFound) {
				t.Errorf("Get of a closed account: %v, want not found", err)
			}
			p, err := tx.Profiles().Get(ctx, store.ProfileUser, "alice")
			ok(t, err)
			if len(p) != 0 {
				t.Errorf("profile of a closed account kept: %v", p)
			}
			for uid, want := range map[string]bool{"alice": true, "bob": true, "carol": false} {
				got, err := tx.Users().Taken(ctx, uid)
				ok(t, err)
				if got != want {
					t.Errorf("Taken(%s) = %v, want %v", uid, got, want)
				}
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.Users().Create(ctx, newUser("alice"), "h"); !domain.HasCode(err, domain.CodeAlreadyExists) {
				t.Errorf("Create with a closed uid: %v, want already exists", err)
			}
			if err := tx.Users().Close(ctx, "carol", "admin", at); !domain.HasCode(err, domain.CodeNotFound) {
				t.Errorf("Close of no account: %v, want not found", err)
			}
			return nil
		})
	}},
}

var profileTests = []test{
	{"SetGetReplace", func(t *testing.T, s store.Store) {
		get := func(id string) map[string]string {
			var p map[string]string
			view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
				p, err = tx.Profiles().Get(ctx, store.ProfileUser, id)
				return err
			})
			return p
		}
		set := func(id string, p map[string]string) {
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				return tx.Profiles().Set(ctx, store.ProfileUser, id, p)
			})
		}
		if p := get("alice"); len(p) != 0 {
			t.Fatalf("empty store: profile %v", p)
		}
		set("alice", map[string]string{"name": "Alice", "org": "Lab"})
		set("bob", map[string]string{"name": "Bob"})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			// Same id, other kind: a separate profile.
			return tx.Profiles().Set(ctx, "project", "alice", map[string]string{"x": "y"})
		})
		// Set replaces: org goes, phone comes.
		set("alice", map[string]string{"name": "Alice A.", "phone": "+1 555"})
		for id, want := range map[string]map[string]string{
			"alice": {"name": "Alice A.", "phone": "+1 555"},
			"bob":   {"name": "Bob"},
		} {
			if got := get(id); !maps.Equal(got, want) {
				t.Errorf("profile of %s = %v, want %v", id, got, want)
			}
		}
		set("alice", nil)
		if p := get("alice"); len(p) != 0 {
			t.Errorf("after Set(nil): %v", p)
		}
	}},
}
