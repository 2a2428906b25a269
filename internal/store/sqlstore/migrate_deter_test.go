package sqlstore

import (
	"context"
	"testing"
)

// TestMigrateNamesAndOwners runs migrations 0018 (the names table) and 0019
// (creators own what they made in projects) over a database that holds
// data from before them: every uid and project name is claimed (a clash
// made before keeps the user's claim), and experiments and libraries a
// project owned become their creators'.
func TestMigrateNamesAndOwners(t *testing.T) {
	onEachStore(t, func(t *testing.T, ctx context.Context, db *DB) {
		// Back to before 0018 and 0019, with rows of that time.
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.writer.ExecContext(ctx, db.f.rebind(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec("DROP TABLE names")
		exec("DELETE FROM schema_migrations WHERE version IN (18, 19)")
		for _, uid := range []string{"alice", "bob", "clash"} {
			exec("INSERT INTO users (uid, email, email_key, email_verified, state, admin, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, '', 0, 0)",
				uid, uid+"@example.org", uid+"@example.org", true, false)
		}
		for _, p := range []string{"lab", "clash"} {
			exec("INSERT INTO projects (name, owner, state, vetting, created_at, approved_at) VALUES (?, 'alice', 'approved', ?, 0, 0)", p, false)
		}
		exec("INSERT INTO experiments (id, owner, name, creator, created_at) VALUES ('lab:e', 'lab', 'e', 'bob', 0)")
		exec("INSERT INTO experiments (id, owner, name, creator, created_at) VALUES ('alice:e', 'alice', 'e', 'alice', 0)")
		exec("INSERT INTO libraries (id, owner, name, creator, created_at) VALUES ('lab:l', 'lab', 'l', 'alice', 0)")
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("migrating old rows: %v", err)
		}
		claims := map[string]string{}
		rows, err := db.writer.QueryContext(ctx, "SELECT name, kind FROM names")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, k string
			if err := rows.Scan(&n, &k); err != nil {
				t.Fatal(err)
			}
			claims[n] = k
		}
		rows.Close()
		want := map[string]string{"alice": "user", "bob": "user", "clash": "user", "lab": "project"}
		if len(claims) != len(want) {
			t.Errorf("names = %v, want %v", claims, want)
		}
		for n, k := range want {
			if claims[n] != k {
				t.Errorf("names[%s] = %q, want %q", n, claims[n], k)
			}
		}
		for _, c := range []struct{ table, id, owner string }{
			{"experiments", "lab:e", "bob"}, {"experiments", "alice:e", "alice"}, {"libraries", "lab:l", "alice"},
		} {
			var owner string
			if err := db.writer.QueryRowContext(ctx, db.f.rebind("SELECT owner FROM "+c.table+" WHERE id = ?"), c.id).Scan(&owner); err != nil {
				t.Fatal(err)
			}
			if owner != c.owner {
				t.Errorf("%s %s owner = %q, want %q", c.table, c.id, owner, c.owner)
			}
		}
	})
}
