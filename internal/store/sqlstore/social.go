package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Helpers shared by projects.go, circles.go, requests.go and
// notifications.go.

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// collect runs a query and scans each of its rows with scan.
func collect[T any](ctx context.Context, t *tx, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		x, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// placeholders returns "?, ?, …" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// addIn adds "col IN (…)"; the caller handles an empty vals, which SQL
// cannot express.
func addIn[T any](w *where, col string, vals []T) {
	w.conds = append(w.conds, col+" IN ("+placeholders(len(vals))+")")
	for _, v := range vals {
		w.args = append(w.args, v)
	}
}

// exists reports whether the query (SELECT 1 … WHERE …) finds a row.
func (t *tx) exists(ctx context.Context, q string, args ...any) (bool, error) {
	var one int
	err := t.queryRow(ctx, q, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// missingRow is a thing a failed statement may have referred to: when the
// statement failed on a foreign key (or touched no row), the first missing
// one is what the caller is told about.
type missingRow struct {
	table, key, value string
	err               func() error
}

func userRow(uid string) missingRow {
	return missingRow{"users", "uid", uid, func() error { return domain.NotFound("user %q not found", uid) }}
}

func projectRow(name string) missingRow {
	return missingRow{"projects", "name", name, func() error { return domain.NotFound("project %q not found", name) }}
}

func circleRow(id string) missingRow {
	return missingRow{"circles", "id", id, func() error { return domain.NotFound("circle %q not found", id) }}
}

// firstMissing returns the not-found error of the first row of rows that
// does not exist, or nil when all do. SQLite does not say which foreign key
// failed, so this asks; it runs only on the error path.
func (t *tx) firstMissing(ctx context.Context, rows ...missingRow) error {
	for _, r := range rows {
		ok, err := t.exists(ctx, "SELECT 1 FROM "+r.table+" WHERE "+r.key+" = ?", r.value)
		if err != nil {
			return fmt.Errorf("sqlstore: look up %s: %w", r.table, err)
		}
		if !ok {
			return r.err()
		}
	}
	return nil
}

func scanMembership(row scanner) (*domain.Membership, error) {
	var m domain.Membership
	var rights string
	var added int64
	if err := row.Scan(&m.Group, &m.UID, &rights, &added); err != nil {
		return nil, err
	}
	m.Rights, m.AddedAt = domain.DecodeRights(rights), fromMicros(added)
	return &m, nil
}
