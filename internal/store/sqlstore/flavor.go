package sqlstore

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// flavor holds everything that differs between SQLite and PostgreSQL, so
// that the queries and the code path stay shared (the Dex storage/sql way).
// Queries are written with '?' placeholders and in the SQL both accept.
type flavor struct {
	name string
	// dollar rebinds '?' placeholders to PostgreSQL's $1, $2, ….
	dollar bool
	// ddl substitutes the column types the two disagree on in migrations.
	ddl *strings.Replacer
	// writeTx and readTx are the options of Update and View transactions.
	writeTx, readTx sql.TxOptions
	// migrateTx are the options of the migration transaction, and
	// lockMigrations, when set, is its first statement: it makes
	// replicas that migrate at once take turns.
	migrateTx      sql.TxOptions
	lockMigrations string
	// savepoints: a failed statement aborts a PostgreSQL transaction, so a
	// statement whose failure is an expected domain error runs under a
	// savepoint there, leaving the transaction usable as it is on SQLite.
	savepoints bool
	// unique returns the name of the unique constraint err violated.
	unique func(err error) (string, bool)
	// foreignKey reports whether err is a foreign-key violation.
	foreignKey func(err error) bool
	// retryable reports whether the whole transaction should be run again.
	retryable func(err error) bool
	// unavailable reports whether err is the database failing to serve
	// (unreachable, out of space, shutting down) rather than a bug or the
	// operation's own answer: the request may succeed later.
	unavailable func(err error) bool
	// probeBytes is how much the readiness probe writes: on SQLite more
	// than a page, so that it needs pages a full disk cannot give.
	probeBytes int
}

var sqliteFlavor = &flavor{
	name: "sqlite",
	ddl: strings.NewReplacer(
		"{{autoid}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{blob}}", "BLOB",
		// SQLite compares TEXT bytewise (BINARY) by default.
		"{{bytewise}}", "",
	),
	// SQLite transactions are serializable whatever we ask; read-only
	// makes the driver issue a plain BEGIN rather than BEGIN IMMEDIATE.
	readTx: sql.TxOptions{ReadOnly: true},
	// No lockMigrations: the writer's BEGIN IMMEDIATE already excludes
	// other migrators, in this process and in others.
	unique: func(err error) (string, bool) {
		code, ok := sqliteCode(err)
		if !ok || (code != sqliteConstraintUnique && code != sqliteConstraintPrimaryKey) {
			return "", false
		}
		// SQLite names the columns, not the index: "UNIQUE constraint
		// failed: users.email_key".
		m := sqliteUniqueColumns.FindStringSubmatch(err.Error())
		if m == nil {
			return "", true
		}
		return m[1], true
	},
	foreignKey: func(err error) bool {
		code, ok := sqliteCode(err)
		return ok && code == sqliteConstraintForeignKey
	},
	retryable: func(err error) bool {
		// With one writer connection and BEGIN IMMEDIATE, SQLITE_BUSY only
		// comes from another process holding the lock past busy_timeout.
		code, ok := sqliteCode(err)
		return ok && code&0xff == sqliteBusy
	},
	unavailable: func(err error) bool {
		code, ok := sqliteCode(err)
		if !ok {
			return false
		}
		// Not SQLITE_READONLY: View's connections refuse writes with it,
		// and a write there is a bug to see, not an outage.
		switch code & 0xff {
		case sqliteFull, sqliteIOErr, sqliteCantOpen, sqliteNoMem:
			return true
		}
		return false
	},
	probeBytes: 4 * 4096,
}

var postgresFlavor = &flavor{
	name:   "postgres",
	dollar: true,
	ddl: strings.NewReplacer(
		"{{autoid}}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		"{{blob}}", "BYTEA",
		// Order and compare keys bytewise whatever the database's locale,
		// as SQLite does, so that listings page identically on both.
		"{{bytewise}}", `COLLATE "C"`,
	),
	// SERIALIZABLE makes every transaction behave as if run alone; the
	// price is serialization failures, which Update retries.
	writeTx: sql.TxOptions{Isolation: sql.LevelSerializable},
	readTx:  sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	// READ COMMITTED: after waiting for the lock, the next statements must
	// see what the replica that held it committed. A snapshot taken before
	// the wait would not.
	migrateTx:      sql.TxOptions{Isolation: sql.LevelReadCommitted},
	lockMigrations: "SELECT pg_advisory_xact_lock(8390880572094378798)", // "trellis." in ASCII
	savepoints:     true,
	unique: func(err error) (string, bool) {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return pe.ConstraintName, true
		}
		return "", false
	},
	foreignKey: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23503"
	},
	retryable: func(err error) bool {
		var pe *pgconn.PgError
		// serialization_failure, deadlock_detected
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
	unavailable: func(err error) bool {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch {
			case strings.HasPrefix(pe.Code, "08"), // connection exception
				strings.HasPrefix(pe.Code, "53"),  // insufficient resources: disk full, out of memory, too many connections
				strings.HasPrefix(pe.Code, "57P"), // operator intervention: shutting down, cannot connect now
				pe.Code == "25006":                // read-only transaction: a standby, after a failover
				return true
			}
			return false
		}
		// No answer from the server at all: it cannot be reached, or the
		// connection broke.
		var ce *pgconn.ConnectError
		var ne net.Error
		return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
			errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
			pgconn.SafeToRetry(err)
	},
	probeBytes: 1,
}

// SQLite result codes (extended result codes are on: see the driver).
const (
	sqliteNoMem                = 7
	sqliteIOErr                = 10
	sqliteFull                 = 13
	sqliteCantOpen             = 14
	sqliteBusy                 = 5
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

var sqliteUniqueColumns = regexp.MustCompile(`UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)`)

func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}

// uniqueFields maps how each flavor names a unique constraint (PostgreSQL:
// the constraint or index name; SQLite: the columns) to the field it guards,
// so that an already-exists error can say which field is taken.
var uniqueFields = map[string]string{
	"users_pkey":            "uid",
	"users.uid":             "uid",
	"users_email_key":       "email",
	"users.email_key":       "email",
	"sessions_pkey":         "id",
	"sessions.id":           "id",
	"sessions_refresh_hash": "refresh_hash",
	"sessions.refresh_hash": "refresh_hash",
	"one_time_tokens_pkey":  "hash",
	"one_time_tokens.hash":  "hash",
	"signing_keys_pkey":     "id",
	"signing_keys.id":       "id",
}

// duplicate reports whether err is a unique violation and which field it
// concerns ("" when the constraint is not one we know).
func (f *flavor) duplicate(err error) (field string, ok bool) {
	name, ok := f.unique(err)
	if !ok {
		return "", false
	}
	return uniqueFields[name], true
}

// rebind turns '?' placeholders into $n for PostgreSQL. Our queries hold no
// '?' inside string literals, but skip quoted text anyway to stay safe.
func (f *flavor) rebind(q string) string {
	if !f.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
