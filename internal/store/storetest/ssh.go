package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newSSHKey(uid, fp string, created int) *domain.SSHKey {
	return &domain.SSHKey{
		UID: uid, Fingerprint: "SHA256:" + fp, Type: "ssh-ed25519", Bits: 256, Comment: uid + "@laptop",
		PublicKey: "ssh-ed25519 AAAA" + fp, CreatedAt: at(time.Duration(created) * hour),
	}
}

func listSSHKeys(t *testing.T, s store.Store, uid string) []*domain.SSHKey {
	t.Helper()
	var ks []*domain.SSHKey
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		ks, err = tx.SSHKeys().List(ctx, uid)
		return err
	})
	return ks
}

// wantField checks that err carries a violation of field with rule.
func wantField(t *testing.T, err error, field, rule string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a domain error", err)
	}
	for _, v := range de.Violations {
		if v.Field == field && v.Rule == rule {
			return
		}
	}
	t.Errorf("error %v: violations %+v, want %s (%s)", err, de.Violations, field, rule)
}

var sshKeyTests = []test{
	{"CreateGetListDelete", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		a1, a2, b1 := newSSHKey("alice", "a1", 0), newSSHKey("alice", "a2", 1), newSSHKey("bob", "b1", 2)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, k := range []*domain.SSHKey{a2, b1, a1} {
				ok(t, tx.SSHKeys().Create(ctx, k))
			}
			return nil
		})
		if got, want := listSSHKeys(t, s, "alice"), []*domain.SSHKey{a1, a2}; !reflect.DeepEqual(got, want) {
			t.Errorf("List(alice) = %+v, want oldest first %+v", got, want)
		}
		if got := listSSHKeys(t, s, "ghost"); len(got) != 0 {
			t.Errorf("List(ghost) = %+v", got)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.SSHKeys().Get(ctx, b1.Fingerprint)
			ok(t, err)
			if !reflect.DeepEqual(got, b1) {
				t.Errorf("Get = %+v, want %+v", got, b1)
			}
			// Fingerprints are base64: case matters.
			_, err = tx.SSHKeys().Get(ctx, "SHA256:B1")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})

		// Nobody deletes another user's key, and learns only "not found".
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SSHKeys().Delete(ctx, "bob", a1.Fingerprint)
		})
		wantCode(t, err, domain.CodeNotFound, `"bob"`)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SSHKeys().Delete(ctx, "alice", a1.Fingerprint)
		})
		if got, want := listSSHKeys(t, s, "alice"), []*domain.SSHKey{a2}; !reflect.DeepEqual(got, want) {
			t.Errorf("after Delete: %+v, want %+v", got, want)
		}
		err = tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SSHKeys().Delete(ctx, "alice", a1.Fingerprint)
		})
		wantCode(t, err, domain.CodeNotFound, a1.Fingerprint)
	}},
	{"FingerprintUniqueAcrossUsers", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SSHKeys().Create(ctx, newSSHKey("alice", "k", 0))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, uid := range []string{"bob", "alice"} {
				err := tx.SSHKeys().Create(ctx, newSSHKey(uid, "k", 1))
				wantCode(t, err, domain.CodeAlreadyExists, "SHA256:k")
				wantField(t, err, "public_key", "public_key.duplicate")
			}
			// The transaction goes on after the refusal (PostgreSQL needs
			// a savepoint for that).
			return tx.SSHKeys().Create(ctx, newSSHKey("bob", "other", 2))
		})
		if got := listSSHKeys(t, s, "bob"); len(got) != 1 || got[0].Fingerprint != "SHA256:other" {
			t.Errorf("List(bob) = %+v", got)
		}
	}},
	{"UnknownUser", func(t *testing.T, s store.Store) {
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SSHKeys().Create(ctx, newSSHKey("ghost", "k", 0))
		})
		wantCode(t, err, domain.CodeNotFound, `"ghost"`)
	}},
	{"ConcurrentSameKey", func(t *testing.T, s store.Store) {
		uids := make([]string, workers)
		for i := range uids {
			uids[i] = fmt.Sprintf("user%d", i)
		}
		createUsers(t, s, uids...)
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.SSHKeys().Create(ctx, newSSHKey(uids[i], "contested", 0))
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
	}},
}

func newAuthority(name string) *store.Authority {
	return &store.Authority{
		Name: name, Algorithm: "ssh-ed25519", PublicKey: []byte("pub-" + name),
		PrivateKey: []byte("secret-priv-" + name), CreatedAt: t0,
	}
}

var authorityTests = []test{
	{"CreateGetSetPrivateKey", func(t *testing.T, s store.Store) {
		err := tryView(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Authorities().Get(ctx, store.AuthoritySSHUser)
			return err
		})
		wantCode(t, err, domain.CodeNotFound, store.AuthoritySSHUser)
		a := newAuthority(store.AuthoritySSHUser)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Authorities().Create(ctx, a))
			return tx.Authorities().Create(ctx, newAuthority("other"))
		})
		get := func(name string) *store.Authority {
			var got *store.Authority
			view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
				got, err = tx.Authorities().Get(ctx, name)
				return err
			})
			return got
		}
		if got := get(a.Name); !reflect.DeepEqual(got, a) {
			t.Errorf("Get = %+v, want %+v", got, a)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			err := tx.Authorities().Create(ctx, newAuthority(a.Name))
			wantCode(t, err, domain.CodeAlreadyExists, a.Name)
			wantNoSecret(t, err, "secret-priv")
			return tx.Authorities().SetPrivateKey(ctx, a.Name, []byte("resealed"))
		})
		want := *a
		want.PrivateKey = []byte("resealed")
		if got := get(a.Name); !reflect.DeepEqual(got, &want) {
			t.Errorf("after SetPrivateKey: %+v, want %+v", got, &want)
		}
		if got := get("other"); string(got.PrivateKey) != "secret-priv-other" {
			t.Errorf("SetPrivateKey touched another authority: %q", got.PrivateKey)
		}
		err = tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Authorities().SetPrivateKey(ctx, "ghost", []byte("x"))
		})
		wantCode(t, err, domain.CodeNotFound, `"ghost"`)

		// A rotation replaces it whole, chain included.
		rotated := &store.Authority{Name: a.Name, Algorithm: "alg-2", PublicKey: []byte("pub-2"), PrivateKey: []byte("priv-2"), Chain: []byte("cross-and-old-root"), CreatedAt: at(2 * hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Authorities().Replace(ctx, rotated) })
		if got := get(a.Name); !reflect.DeepEqual(got, rotated) {
			t.Errorf("after Replace: %+v, want %+v", got, rotated)
		}
		err = tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Authorities().Replace(ctx, newAuthority("ghost"))
		})
		wantCode(t, err, domain.CodeNotFound, `"ghost"`)
	}},
	{"ConcurrentCreate", func(t *testing.T, s store.Store) {
		// Replicas starting at once each try to create the authority; one
		// wins and the others read its key.
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Authorities().Create(ctx, newAuthority(store.AuthoritySSHUser))
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
	}},
}
