// Package sqlstore implements store.Store over database/sql, for SQLite (the
// embedded default, pure Go through modernc.org/sqlite) and PostgreSQL
// (through pgx). Both run the same queries on one code path; a small flavor
// value holds what differs: placeholders, a few column types, error codes
// and which errors mean "run the transaction again".
//
// Timestamps are stored as BIGINT microseconds since the Unix epoch, UTC, with
// 0 for the zero time, so both databases round-trip them identically.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// DB is a store.Store over SQLite or PostgreSQL.
type DB struct {
	f *flavor
	// writer runs Update and Migrate; reader runs View. On PostgreSQL they
	// are the same pool. On SQLite the writer has a single connection, so
	// writers queue in Go rather than fight over the file lock, while WAL
	// lets the reader pool's connections read concurrently.
	writer, reader *sql.DB

	// On SQLite this process holds an exclusive lock on the database (see
	// lockFile), so every change is committed here and head, the change
	// feed's head, is known without a query. lock is nil on PostgreSQL.
	lock      io.Closer
	exclusive bool // the lock is real: no other process writes
	head      atomic.Int64
	headKnown atomic.Bool
}

var (
	_ store.Store      = (*DB)(nil)
	_ store.LocalHead  = (*DB)(nil)
	_ store.HeadReader = (*DB)(nil)
)

// ChangeHead returns the change feed's head when this process is the
// store's only writer.
func (db *DB) ChangeHead() (int64, bool) {
	if !db.headKnown.Load() {
		return 0, false
	}
	return db.head.Load(), true
}

// ReadChangeHead reads the change feed's head in one autocommitted
// statement.
func (db *DB) ReadChangeHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.reader.QueryRowContext(ctx, "SELECT seq FROM change_counter WHERE id = 1").Scan(&seq); err != nil {
		return 0, db.classify(fmt.Errorf("sqlstore: read the change feed's head: %w", err))
	}
	return seq, nil
}

// advanceHead records a committed change sequence number.
func (db *DB) advanceHead(seq int64) {
	for {
		cur := db.head.Load()
		if seq <= cur || db.head.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// Retry policy of Update: enough attempts to ride out a burst of writers
// contending for one row, bounded so that a livelock surfaces as an error.
const (
	maxAttempts = 20
	baseBackoff = time.Millisecond
	maxBackoff  = 50 * time.Millisecond
)

// sqliteBusyTimeout is how long a SQLite statement waits for a lock held by
// another connection (or process) before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 5 * time.Second

// Open opens the store that spec names: a postgres:// or postgresql:// URL
// for PostgreSQL, anything else is the path of a SQLite database file.
// It does not migrate; call Migrate.
func Open(ctx context.Context, spec string) (*DB, error) {
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		return OpenPostgres(ctx, spec)
	}
	return OpenSQLite(ctx, spec)
}

// OpenSQLite opens (creating it and its directory if missing) the SQLite
// database file at path.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		// An in-memory database would differ per connection of our two
		// pools, and a URI would clash with the parameters we set.
		return nil, fmt.Errorf("sqlstore: %q is not a plain database file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlstore: create directory of %s: %w", path, err)
	}
	// Create the file ourselves so that it is private: it holds password
	// hashes and keys. SQLite gives the -wal and -shm files its mode.
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	fh.Close()
	// One process at a time: the embedded store serves one server (scale
	// out with PostgreSQL), which is what lets it know its feed's head.
	lock, exclusive, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			lock.Close()
		}
	}()

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")

	w := cloneValues(common)
	w.Add("_pragma", "journal_mode(WAL)")
	// BEGIN IMMEDIATE takes the write lock at once, so a transaction never
	// fails halfway when upgrading a read lock to a write lock.
	w.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	// The writer connects first: it switches the file to WAL before any
	// reader looks at it.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}

	r := cloneValues(common)
	r.Add("_pragma", "query_only(1)") // View must not write, even by mistake
	reader, err := sql.Open("sqlite", path+"?"+r.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(8)
	reader.SetMaxIdleConns(8)
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	opened = true
	return &DB{f: sqliteFlavor, writer: writer, reader: reader, lock: lock, exclusive: exclusive}, nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// OpenPostgres connects to the PostgreSQL database at the URL.
func OpenPostgres(ctx context.Context, dbURL string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, errors.New("sqlstore: open postgres: the database URL is not valid")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connect to postgres: %w", err)
	}
	return &DB{f: postgresFlavor, writer: db, reader: db}, nil
}

// Kind returns "sqlite" or "postgres".
func (db *DB) Kind() string { return db.f.name }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.writer.PingContext(ctx); err != nil {
		return db.classify(fmt.Errorf("sqlstore: ping: %w", err))
	}
	if db.reader != db.writer {
		if err := db.reader.PingContext(ctx); err != nil {
			return db.classify(fmt.Errorf("sqlstore: ping: %w", err))
		}
	}
	return nil
}

// Probe commits a write of a few pages (a row written and deleted again in
// one transaction): what a full disk or a read-only database refuses while
// Ping still answers.
func (db *DB) Probe(ctx context.Context) error {
	filler := make([]byte, db.f.probeBytes)
	// A row of its own, so that replicas probing at once do not contend.
	id := rand.Int32()
	return db.Update(ctx, func(stx store.Tx) error {
		t := stx.(*tx)
		if _, err := t.exec(ctx, "INSERT INTO store_probe (id, filler) VALUES (?, ?)", id, filler); err != nil {
			return fmt.Errorf("sqlstore: probe: %w", err)
		}
		if _, err := t.exec(ctx, "DELETE FROM store_probe WHERE id = ?", id); err != nil {
			return fmt.Errorf("sqlstore: probe: %w", err)
		}
		return nil
	})
}

// classify turns a failure of the database itself (see flavor.unavailable)
// into store.Unavailable; the operation's own answers (domain errors other
// than internal ones) and everything else pass unchanged.
func (db *DB) classify(err error) error {
	// A caller's deadline or cancellation is the caller's, not the store's
	// (context.DeadlineExceeded is a net.Error, so say so first).
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if c := domain.CodeOf(err); c != domain.CodeInternal {
		return err
	}
	if db.f.unavailable(err) {
		return store.Unavailable(err)
	}
	return err
}

// SetMaxPageCount bounds the embedded database's file to n pages (PRAGMA
// max_page_count on the writer connection, until it is reopened) and
// returns the bound in force; n <= 0 only reads it. Past the bound writes
// fail as on a full disk, which is how tests make one.
func (db *DB) SetMaxPageCount(ctx context.Context, n int64) (int64, error) {
	if db.f != sqliteFlavor {
		return 0, errors.New("sqlstore: max_page_count is SQLite's")
	}
	q := "PRAGMA max_page_count"
	if n > 0 {
		q = fmt.Sprintf("PRAGMA max_page_count = %d", n)
	}
	var got int64
	if err := db.writer.QueryRowContext(ctx, q).Scan(&got); err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", q, err)
	}
	return got, nil
}

// Close closes the connection pools.
func (db *DB) Close() error {
	err := db.writer.Close()
	if db.reader != db.writer {
		err = errors.Join(err, db.reader.Close())
	}
	if db.lock != nil {
		err = errors.Join(err, db.lock.Close())
	}
	return err
}

// Update runs fn in a read-write transaction and commits when it returns
// nil. When the transaction loses a race (PostgreSQL serialization failure
// or deadlock, SQLite busy), it is rolled back and fn runs again, a bounded
// number of times with jittered exponential backoff. fn's own errors are
// returned unchanged. fn must not open another transaction on db: on SQLite
// the one writer connection is taken, so a nested Update would wait forever.
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	backoff := baseBackoff
	for attempt := 1; ; attempt++ {
		err := db.run(ctx, db.writer, db.f.writeTx, fn)
		if err == nil || !db.f.retryable(err) {
			return db.classify(err)
		}
		if attempt == maxAttempts {
			// Contention this lasting is the store overloaded (or, on
			// SQLite, another process holding it): a later try may pass.
			return store.Unavailable(fmt.Errorf("the transaction conflicted with concurrent ones %d times: %w", attempt, err))
		}
		// Jitter spreads the losers out so that they do not collide again.
		sleep := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlstore: retrying transaction: %w", ctx.Err())
		case <-time.After(sleep):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// View runs fn in a read-only transaction that sees one snapshot.
func (db *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return db.classify(db.run(ctx, db.reader, db.f.readTx, fn))
}

// run is one attempt at a transaction.
func (db *DB) run(ctx context.Context, pool *sql.DB, opts sql.TxOptions, fn func(store.Tx) error) error {
	sqlTx, err := pool.BeginTx(ctx, &opts)
	if err != nil {
		return fmt.Errorf("sqlstore: begin transaction: %w", err)
	}
	done := false
	defer func() {
		// Roll back on error and on panic: a transaction left open would
		// hold SQLite's only writer connection forever.
		if !done {
			sqlTx.Rollback()
		}
	}()
	t := &tx{f: db.f, tx: sqlTx}
	if err := fn(t); err != nil {
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	if t.lastSeq > 0 {
		db.advanceHead(t.lastSeq)
	}
	return nil
}
