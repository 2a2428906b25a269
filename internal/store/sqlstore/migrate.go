package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations are embedded SQL files named NNNN_what.sql, applied in order
// of NNNN and recorded in schema_migrations. A released migration is never
// edited: a schema change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s is not named NNNN_what.sql", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// Migrate applies the migrations the database lacks, all in one
// transaction (both databases have transactional DDL), so a failed migration
// leaves the schema as it was. It is idempotent, and replicas that run it at
// once take turns: PostgreSQL through an advisory lock held until commit,
// SQLite through the write lock BEGIN IMMEDIATE takes.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	sqlTx, err := db.writer.BeginTx(ctx, &db.f.migrateTx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: begin: %w", err)
	}
	defer sqlTx.Rollback() // no-op after Commit

	if db.f.lockMigrations != "" {
		if _, err := sqlTx.ExecContext(ctx, db.f.lockMigrations); err != nil {
			return fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
	}
	if _, err := sqlTx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlstore: migrate: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := sqlTx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("sqlstore: migrate: read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlstore: migrate: read schema_migrations: %w", err)
	}

	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		// No arguments: both drivers run the file's statements as a batch.
		if _, err := sqlTx.ExecContext(ctx, db.f.ddl.Replace(m.sql)); err != nil {
			return fmt.Errorf("sqlstore: migrate: apply %s: %w", m.name, err)
		}
		if _, err := sqlTx.ExecContext(ctx, db.f.rebind(
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.version, m.name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("sqlstore: migrate: record %s: %w", m.name, err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migrate: commit: %w", err)
	}
	return db.learnHead(ctx)
}

// learnHead reads the change feed's head once, when this process is the
// store's only writer; commits keep it current from then on.
func (db *DB) learnHead(ctx context.Context) error {
	if !db.exclusive || db.headKnown.Load() {
		return nil
	}
	var seq int64
	if err := db.writer.QueryRowContext(ctx, "SELECT seq FROM change_counter WHERE id = 1").Scan(&seq); err != nil {
		return fmt.Errorf("sqlstore: read the change feed's head: %w", err)
	}
	db.advanceHead(seq)
	db.headKnown.Store(true)
	return nil
}
