package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func (s users) ScramVerifier(ctx context.Context, uid string) (string, error) {
	var v string
	err := s.queryRow(ctx, "SELECT scram_verifier FROM users WHERE uid = ?", uid).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", domain.NotFound("user %q not found", uid)
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: get scram verifier: %w", err)
	}
	return v, nil
}

func (s users) SetScramVerifier(ctx context.Context, uid, verifier string) error {
	return s.execOne(ctx, "set scram verifier", domain.NotFound("user %q not found", uid), "UPDATE users SET scram_verifier = ? WHERE uid = ?", verifier, uid)
}

type challenges struct{ *tx }

func (s challenges) Create(ctx context.Context, c *store.Challenge) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, `INSERT INTO challenges (id, uid, type, data, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, c.ID, c.UID, c.Type, c.Data, micros(c.CreatedAt), micros(c.ExpiresAt))
		return err
	})
	if _, dup := s.f.duplicate(err); dup {
		return domain.AlreadyExists("challenge %q already exists", c.ID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create challenge: %w", err)
	}
	return nil
}

func (s challenges) Consume(ctx context.Context, id string) (*store.Challenge, error) {
	// DELETE … RETURNING takes the row in one statement: of two concurrent
	// consumers, one deletes it and the other finds nothing.
	c := store.Challenge{ID: id}
	var created, expires int64
	err := s.queryRow(ctx, `DELETE FROM challenges WHERE id = ?
		RETURNING uid, type, data, created_at, expires_at`, id).
		Scan(&c.UID, &c.Type, &c.Data, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("challenge %q not found: it was never issued or is already used", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consume challenge: %w", err)
	}
	c.CreatedAt, c.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &c, nil
}

func (s challenges) Trim(ctx context.Context, uid string, keep int) (int, error) {
	n, err := s.execAffected(ctx, `DELETE FROM challenges WHERE uid = ? AND id NOT IN (
		SELECT id FROM challenges WHERE uid = ? ORDER BY created_at DESC, id DESC LIMIT ?)`,
		uid, uid, max(keep, 0))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: trim challenges: %w", err)
	}
	return int(n), nil
}

func (s challenges) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM challenges WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired challenges: %w", err)
	}
	return int(n), nil
}

func (s challenges) Secret(ctx context.Context, name string, candidate []byte) ([]byte, error) {
	get := func() ([]byte, error) {
		var v []byte
		err := s.queryRow(ctx, "SELECT value FROM server_secrets WHERE name = ?", name).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return v, err
	}
	v, err := get()
	if err == nil && v == nil {
		if len(candidate) == 0 {
			return nil, fmt.Errorf("sqlstore: server secret %q: no candidate to store", name)
		}
		// Another replica may store one first: keep whichever came first.
		if _, err = s.exec(ctx, `INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, candidate, time.Now().UnixMicro()); err == nil {
			v, err = get()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: server secret %q: %w", name, err)
	}
	return v, nil
}
