package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// Backup writes a backup of the configured store to dest, which must not
// exist, while servers keep running. The embedded store is copied with
// SQLite's VACUUM INTO (a consistent snapshot, a SQLite database file);
// PostgreSQL is dumped by pg_dump (custom format, as `pg_dump -Fc` writes
// it), which must be on PATH and should be of the server's major version
// or newer. Either way the file holds password hashes and keys: it is
// created with mode 0600.
func Backup(ctx context.Context, c StoreConfig, dest string) error {
	if c.Database == "" {
		return sqlstore.BackupSQLite(ctx, c.Spec(), dest)
	}
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		return errors.New("backup: pg_dump is not on PATH: install PostgreSQL's client tools (of the server's major version or newer)")
	}
	fh, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fh.Close()
	if err := runTool(ctx, pgDump, "--format=custom", "--file="+dest, "--dbname="+c.Database); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Restore fills a fresh store (one without accounts; no server may use it)
// from a backup Backup wrote. The embedded store's database file is
// replaced by the checked backup; PostgreSQL gets the dump through
// pg_restore (on PATH), in one transaction, dropping the empty schema a
// server may have made first.
func Restore(ctx context.Context, c StoreConfig, src string) error {
	if c.Database == "" {
		return sqlstore.RestoreSQLite(ctx, src, c.Spec())
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	pgRestore, err := exec.LookPath("pg_restore")
	if err != nil {
		return errors.New("restore: pg_restore is not on PATH: install PostgreSQL's client tools (of the server's major version or newer)")
	}
	st, err := sqlstore.Open(ctx, c.Database)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	n, err := st.Accounts(ctx)
	st.Close()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("restore: the database holds %d accounts; restore into a fresh database", n)
	}
	if err := runTool(ctx, pgRestore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
		"--single-transaction", "--exit-on-error", "--dbname="+c.Database, src); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// runTool runs a PostgreSQL client tool; its complaints become the error.
func runTool(ctx context.Context, path string, args ...string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return fmt.Errorf("%s: %w", path, err)
		}
		return fmt.Errorf("%s: %w: %s", path, err, msg)
	}
	return nil
}

func backupCommand() *cobra.Command {
	var sc StoreConfig
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Back up the store to FILE while the server runs (works on the store directly)",
		Long: `Back up the store, with the same --data-dir/--database as serve, to FILE,
which must not exist. Servers keep running: the embedded store is copied
with SQLite's VACUUM INTO, a consistent snapshot that is itself a SQLite
database; PostgreSQL is dumped with pg_dump --format=custom (pg_dump on
PATH). FILE holds password hashes and keys: it is created with mode 0600.
Restore it with 'trellis admin restore'. See docs/operations.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := Backup(cmd.Context(), sc, args[0]); err != nil {
				return err
			}
			kind := "embedded (SQLite)"
			if sc.Database != "" {
				kind = "PostgreSQL"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backed up the %s store to %s.\n", kind, args[0])
			fmt.Fprintln(cmd.OutOrStdout(), "The backup does not hold the key-encryption key (--kek-file, by default trellis.kek in the data directory) that opens the keys in it: keep a copy of that file apart from the backups.")
			return nil
		},
	}
	storeFlags(cmd, &sc)
	return cmd
}

func restoreCommand() *cobra.Command {
	var sc StoreConfig
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into a fresh store (works on the store directly; no server running)",
		Long: `Restore FILE, written by 'trellis admin backup', into the store named by
--data-dir/--database. The store must be fresh (no accounts) and no server
may use it: for the embedded store the data directory is locked while it
works; stop every replica before restoring a PostgreSQL database. The
embedded store's database file is replaced by the checked backup;
PostgreSQL gets the dump through pg_restore (on PATH), in one transaction.
See docs/operations.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := Restore(cmd.Context(), sc, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s; start the server on it with the original's key-encryption key (copy its trellis.kek into the data directory, or give --kek-file).\n", args[0])
			return nil
		},
	}
	storeFlags(cmd, &sc)
	return cmd
}
