package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Helpers shared by experiments.go, libraries.go, grants.go, resources.go
// and realizations.go.

func experimentRow(id string) missingRow {
	return missingRow{"experiments", "id", id, func() error { return domain.NotFound("experiment %q not found", id) }}
}

func libraryRow(id string) missingRow {
	return missingRow{"libraries", "id", id, func() error { return domain.NotFound("library %q not found", id) }}
}

func resourceRow(name string) missingRow {
	return missingRow{"resources", "name", name, func() error { return domain.NotFound("resource %q not found", name) }}
}

func realizationRow(id string) missingRow {
	return missingRow{"realizations", "id", id, func() error { return domain.NotFound("realization %q not found", id) }}
}

// contains is a condition "col holds the argument as a substring". LIKE
// would do on PostgreSQL, but SQLite's LIKE ignores ASCII case and its
// wildcards would need escaping; both databases have a plain, case-sensitive
// search function, under different names.
func (f *flavor) contains(col string) string {
	if f == postgresFlavor {
		return "strpos(" + col + ", ?) > 0"
	}
	return "instr(" + col + ", ?) > 0"
}

// rowsPerInsert bounds a multi-row INSERT: few enough placeholders for
// either database (SQLite allows 32,766, PostgreSQL 65,535), many enough
// that 1,000 rows take five round trips rather than 1,000.
const rowsPerInsert = 200

// insertRows inserts len(args)/ncols rows with head ("INSERT INTO t (a, b)
// VALUES ") in statements of at most rowsPerInsert rows. args holds the
// rows' values one row after the other.
func (t *tx) insertRows(ctx context.Context, head string, ncols int, args []any) error {
	row := "(" + placeholders(ncols) + ")"
	full := "" // the statement for a full chunk, built once
	for start := 0; start < len(args); start += rowsPerInsert * ncols {
		end := min(start+rowsPerInsert*ncols, len(args))
		n := (end - start) / ncols
		q := full
		if n < rowsPerInsert || q == "" {
			q = head + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
			if n == rowsPerInsert {
				full = q
			}
		}
		if _, err := t.exec(ctx, q, args[start:end]...); err != nil {
			return err
		}
	}
	return nil
}

// chunks calls fn with consecutive slices of xs of at most rowsPerInsert
// elements, for IN lists that must stay under the placeholder limits.
func chunks[T any](xs []T, fn func([]T) error) error {
	for start := 0; start < len(xs); start += rowsPerInsert {
		if err := fn(xs[start:min(start+rowsPerInsert, len(xs))]); err != nil {
			return err
		}
	}
	return nil
}

// atomically runs fn, several statements that may fail on a constraint,
// under a savepoint on both databases: when one fails on a unique or
// foreign key, the ones before it are undone too, so nothing half-written
// stays in the transaction whatever the caller does next (guard only
// protects one statement, and only on PostgreSQL). Other errors are
// returned as they are: the transaction must not commit after them.
func (t *tx) atomically(ctx context.Context, fn func() error) error {
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT sqlstore_batch"); err != nil {
		return err
	}
	err := fn()
	if err != nil {
		if _, ok := t.f.unique(err); !ok && !t.f.foreignKey(err) {
			return err
		}
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sqlstore_batch"); rerr != nil {
			return fmt.Errorf("%w (and rolling back to the savepoint: %v)", err, rerr)
		}
	}
	if _, rerr := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT sqlstore_batch"); rerr != nil && err == nil {
		return rerr
	}
	return err
}

// pgKeyDetail reads PostgreSQL's detail of a unique violation, "Key
// (resource)=(n17) already exists.".
var pgKeyDetail = regexp.MustCompile(`^Key \(([^)]*)\)=\((.*)\) already exists\.?$`)

// conflictValue returns the key value a unique violation names, when the
// database says it (PostgreSQL does; SQLite names only the columns).
func conflictValue(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	m := pgKeyDetail.FindStringSubmatch(pe.Detail)
	if m == nil {
		return "", false
	}
	return m[2], true
}
