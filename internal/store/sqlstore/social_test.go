package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
)

// TestDeleteUserSocialRows pins what the social tables' foreign keys do
// when a user row goes (closing an account deletes it): a project owner
// cannot be deleted (NO ACTION, reported as a foreign-key
// violation on both databases), while the memberships, requests and
// notifications of any other user go with it (CASCADE).
func TestDeleteUserSocialRows(t *testing.T) {
	onEachStore(t, func(t *testing.T, ctx context.Context, db *DB) {
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		err := db.Update(ctx, func(tx store.Tx) error {
			for _, uid := range []string{"alice", "bob"} {
				u := &domain.User{UID: uid, Email: uid + "@example.org", State: domain.UserActive, CreatedAt: t0, UpdatedAt: t0}
				if err := tx.Users().Create(ctx, u, "h"); err != nil {
					return err
				}
			}
			return firstErr(
				tx.Projects().Create(ctx, &domain.Project{Name: "lab", Owner: "alice", State: domain.ProjectApproved, CreatedAt: t0}),
				tx.Projects().SetMember(ctx, &domain.Membership{Group: "lab", UID: "bob", AddedAt: t0}),
				tx.Circles().Create(ctx, &domain.Circle{ID: "alice:c", Owner: "alice", Name: "c", CreatedAt: t0}),
				tx.Circles().SetMember(ctx, &domain.Membership{Group: "alice:c", UID: "bob", AddedAt: t0}),
				tx.Requests().Create(ctx, &domain.PendingRequest{ID: "r1", Kind: domain.RequestProjectJoin,
					Object: "project:lab", Subject: "bob", Requester: "bob", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}),
				tx.Requests().Create(ctx, &domain.PendingRequest{ID: "r2", Kind: domain.RequestCircleAdd,
					Object: "circle:alice:c", Subject: "alice", Requester: "bob", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}),
				tx.Notifications().Create(ctx, &domain.Notification{Recipient: "bob", Text: "hi", CreatedAt: t0}),
			)
		})
		if err != nil {
			t.Fatal(err)
		}

		if _, err := db.writer.ExecContext(ctx, db.f.rebind("DELETE FROM users WHERE uid = ?"), "alice"); err == nil || !db.f.foreignKey(err) {
			t.Errorf("deleting a project's owner: %v, want a foreign-key violation", err)
		}
		if _, err := db.writer.ExecContext(ctx, db.f.rebind("DELETE FROM users WHERE uid = ?"), "bob"); err != nil {
			t.Fatalf("deleting a member: %v", err)
		}
		for _, table := range []string{"project_members", "circle_members", "requests", "notifications"} {
			var n int
			if err := db.writer.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s: %d rows outlived bob", table, n)
			}
		}
	})
}

// onEachStore runs fn on a freshly migrated database of each kind:
// SQLite in a temporary file and PostgreSQL (a throwaway database).
func onEachStore(t *testing.T, fn func(t *testing.T, ctx context.Context, db *DB)) {
	specs := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "trellis.db") },
		"postgres": func(t *testing.T) string {
			pgtest.Require(t)
			return pgtest.NewDatabase(t)
		},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			db, err := Open(ctx, spec(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			fn(t, ctx, db)
		})
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
