package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Kinds of names in the shared namespace of users and projects.
const (
	nameUser    = "user"
	nameProject = "project"
)

// claimName takes name for a user or a project in the transaction that
// creates it. The names table's key makes the claim race-safe across
// replicas: of two transactions claiming one name, whatever their kinds,
// one gets already-exists (saying who holds the name) and the other
// commits.
func (t *tx) claimName(ctx context.Context, name, kind string) error {
	err := t.guard(ctx, func() error {
		_, err := t.exec(ctx, "INSERT INTO names (name, kind) VALUES (?, ?)", name, kind)
		return err
	})
	if err == nil {
		return nil
	}
	if _, dup := t.f.unique(err); !dup {
		return fmt.Errorf("sqlstore: claim name: %w", err)
	}
	var holder string
	err = t.queryRow(ctx, "SELECT kind FROM names WHERE name = ?", name).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		// Claimed by a transaction that committed after this one's
		// snapshot (PostgreSQL): taken, by whom this one cannot see.
		return domain.AlreadyExists("%q is taken; users and projects share one namespace", name)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: claim name: %w", err)
	}
	switch {
	case holder == kind && kind == nameUser:
		return domain.AlreadyExists("user %q already exists", name)
	case holder == kind:
		return domain.AlreadyExists("project %q already exists", name)
	case holder == nameProject:
		return domain.AlreadyExists("%q is a project's name; users and projects share one namespace", name)
	}
	return domain.AlreadyExists("%q is a user's uid; users and projects share one namespace", name)
}

// releaseName frees a project's name when the project goes (uids are
// permanent: users are never deleted).
func (t *tx) releaseName(ctx context.Context, name, kind string) error {
	if _, err := t.exec(ctx, "DELETE FROM names WHERE name = ? AND kind = ?", name, kind); err != nil {
		return fmt.Errorf("sqlstore: release name: %w", err)
	}
	return nil
}
