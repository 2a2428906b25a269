package storetest

import (
	"context"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var txTests = []test{
	{"PingKindMigrate", func(t *testing.T, s store.Store) {
		ctx := ctxFor(t)
		ok(t, s.Ping(ctx))
		if k := s.Kind(); k != "sqlite" && k != "postgres" {
			t.Errorf("Kind() = %q", k)
		}
		// Migrate is idempotent: Run migrated already.
		ok(t, s.Migrate(ctx))
		ok(t, s.Migrate(ctx))
	}},
	{"RollbackOnError", func(t *testing.T, s store.Store) {
		createUsers(t, s, "bob")
		// Write to every part, then fail: nothing may remain.
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Users().Create(ctx, newUser("alice"), "h"))
			ok(t, tx.Users().SetPasswordHash(ctx, "bob", "changed"))
			ok(t, tx.Profiles().Set(ctx, store.ProfileUser, "alice", map[string]string{"a": "1"}))
			ok(t, tx.Sessions().Create(ctx, newSession("s1", "alice", at(hour))))
			ok(t, tx.OneTimeTokens().Create(ctx, newToken("t1", "alice", store.PurposeConfirmEmail)))
			_, err := tx.LoginFailures().Record(ctx, "alice", "", t0)
			ok(t, err)
			ok(t, tx.SigningKeys().Create(ctx, newKey("k1", t0)))
			ok(t, tx.Audit().Append(ctx, &domain.AuditEvent{Time: t0, Actor: "alice", Operation: "op"}))
			ok(t, tx.Outbox().Append(ctx, &domain.Mail{CreatedAt: t0, To: "a@example.org"}))
			ok(t, tx.Changes().Append(ctx, store.ChangeUser, "alice"))
			return errSentinel
		})
		if err != errSentinel {
			t.Fatalf("Update returned %v, want fn's error unchanged", err)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "alice")
			wantCode(t, err, domain.CodeNotFound)
			h, err := tx.Users().PasswordHash(ctx, "bob")
			ok(t, err)
			if h != "hash-bob" {
				t.Errorf("bob's password hash changed by a rolled-back transaction")
			}
			p, err := tx.Profiles().Get(ctx, store.ProfileUser, "alice")
			ok(t, err)
			if len(p) != 0 {
				t.Errorf("profile %v survived", p)
			}
			_, err = tx.Sessions().Get(ctx, "s1")
			wantCode(t, err, domain.CodeNotFound)
			n, _, err := tx.LoginFailures().Get(ctx, "alice", "")
			ok(t, err)
			if n != 0 {
				t.Errorf("login failures = %d", n)
			}
			keys, err := tx.SigningKeys().List(ctx)
			ok(t, err)
			events, err := tx.Audit().List(ctx, store.AuditFilter{})
			ok(t, err)
			mail, err := tx.Outbox().List(ctx, store.OutboxFilter{})
			ok(t, err)
			latest, err := tx.Changes().Latest(ctx)
			ok(t, err)
			if len(keys)+len(events)+len(mail) != 0 || latest != 0 {
				t.Errorf("survived: %d keys, %d events, %d mails, latest change %d", len(keys), len(events), len(mail), latest)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.OneTimeTokens().Consume(ctx, []byte("t1"), store.PurposeConfirmEmail, t0)
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"DomainErrorPassesThrough", func(t *testing.T, s store.Store) {
		want := domain.PermissionDenied("nope")
		err := tryUpdate(t, s, func(context.Context, store.Tx) error { return want })
		if err != want {
			t.Fatalf("Update returned %v, want the same *domain.Error", err)
		}
		err = tryView(t, s, func(context.Context, store.Tx) error { return want })
		if err != want {
			t.Fatalf("View returned %v, want the same *domain.Error", err)
		}
	}},
	{"ViewIsReadOnly", func(t *testing.T, s store.Store) {
		err := tryView(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Users().Create(ctx, newUser("alice"), "h")
		})
		if err == nil {
			t.Fatal("a View wrote")
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "alice")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"PanicRollsBack", func(t *testing.T, s store.Store) {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the panic did not propagate")
				}
			}()
			tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
				ok(t, tx.Users().Create(ctx, newUser("alice"), "h"))
				panic("boom")
			})
		}()
		// The store is still usable (SQLite's writer is not stuck in the
		// abandoned transaction) and the write is gone.
		createUsers(t, s, "bob")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "alice")
			wantCode(t, err, domain.CodeNotFound)
			return nil
		})
	}},
	{"CanceledContext", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		ran := false
		err := s.Update(ctx, func(tx store.Tx) error {
			ran = true
			return tx.Users().Create(ctx, newUser("alice"), "h")
		})
		if err == nil {
			t.Fatalf("Update with a canceled context succeeded (fn ran: %v)", ran)
		}
	}},
	{"UsableAfterDomainError", func(t *testing.T, s store.Store) {
		// A constraint violation the store maps to a domain error spoils
		// nothing: the transaction goes on and commits (PostgreSQL would
		// abort the whole transaction without care).
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			wantCode(t, tx.Users().Create(ctx, newUser("alice"), "h"), domain.CodeAlreadyExists)
			wantCode(t, tx.Sessions().Create(ctx, newSession("s1", "ghost", at(hour))), domain.CodeNotFound)
			return tx.Users().Create(ctx, newUser("bob"), "h")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Users().Get(ctx, "bob")
			return err
		})
	}},
}
