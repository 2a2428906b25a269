package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
)

// BackupSQLite writes a consistent copy of the SQLite database at path to
// dest, with VACUUM INTO, while a server may be using it: it reads through a
// read-only connection of its own and takes no lock that a server holds, so
// the copy is the database as of one transaction. dest must not exist; it
// is created with mode 0600 (it holds password hashes and keys).
func BackupSQLite(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	// VACUUM INTO writes into an empty file it finds, keeping its mode.
	fh, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	fh.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(dest)
		}
	}()
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return fmt.Errorf("sqlstore: backup %s: %w", path, err)
	}
	if err := syncFile(dest); err != nil {
		return err
	}
	ok = true
	return nil
}

// RestoreSQLite makes the SQLite database at path a copy of the backup src.
// It takes the store's lock, so it refuses while a server uses the store,
// and it refuses a store that holds any account: a restore fills a fresh
// store, it does not overwrite one in use. The backup is checked (integrity
// and a Trellis schema) before anything is replaced, and the database file
// is replaced in one rename.
func RestoreSQLite(ctx context.Context, src, path string) error {
	if err := checkSQLiteBackup(ctx, src); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	lock, _, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer lock.Close()
	if _, err := os.Stat(path); err == nil {
		db, err := openReadOnly(path)
		if err != nil {
			return err
		}
		n, err := countAccounts(ctx, db)
		db.Close()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("sqlstore: restore: the store %s holds %d accounts; restore into a fresh data directory", path, n)
		}
	}
	tmp := path + ".restore"
	if err := copyFile(src, tmp); err != nil {
		return err
	}
	// The write-ahead log of the database being replaced must not be
	// replayed onto the restored one.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			os.Remove(tmp)
			return fmt.Errorf("sqlstore: restore: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	return nil
}

func checkSQLiteBackup(ctx context.Context, src string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	db, err := openReadOnly(src)
	if err != nil {
		return err
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&verdict); err != nil {
		return fmt.Errorf("sqlstore: restore: %s is not a SQLite database: %w", src, err)
	}
	if verdict != "ok" {
		return fmt.Errorf("sqlstore: restore: %s fails its integrity check: %s", src, verdict)
	}
	var versions int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&versions); err != nil || versions == 0 {
		return fmt.Errorf("sqlstore: restore: %s is not a Trellis store backup (no schema_migrations)", src)
	}
	return nil
}

// countAccounts counts the users of a store (0 when it has no schema yet).
func countAccounts(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n)
	if err != nil {
		var tables int
		if err2 := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'").Scan(&tables); err2 == nil && tables == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("sqlstore: count accounts: %w", err)
	}
	return n, nil
}

func openReadOnly(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dest)
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dest)
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	return nil
}

// Accounts counts the store's users, 0 when it has no schema yet: a restore
// goes only into a store without accounts.
func (db *DB) Accounts(ctx context.Context) (int, error) {
	if db.f.name == "postgres" {
		var exists bool
		if err := db.reader.QueryRowContext(ctx, "SELECT to_regclass('users') IS NOT NULL").Scan(&exists); err != nil {
			return 0, fmt.Errorf("sqlstore: count accounts: %w", err)
		}
		if !exists {
			return 0, nil
		}
	}
	return countAccounts(ctx, db.reader)
}
