package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type sessions struct{ *tx }

const sessionColumns = "id, uid, created_at, expires_at, revoked_at, refresh_hash, prev_refresh_hash, last_seen_at"

func scanSession(row interface{ Scan(...any) error }) (*domain.Session, error) {
	var s domain.Session
	var created, expires, revoked, seen int64
	if err := row.Scan(&s.ID, &s.UID, &created, &expires, &revoked,
		&s.RefreshHash, &s.PrevRefreshHash, &seen); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	s.RevokedAt, s.LastSeenAt = fromMicros(revoked), fromMicros(seen)
	return &s, nil
}

func (s sessions) Create(ctx context.Context, ss *domain.Session) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO sessions ("+sessionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			ss.ID, ss.UID, micros(ss.CreatedAt), micros(ss.ExpiresAt), micros(ss.RevokedAt),
			nullBytes(ss.RefreshHash), nullBytes(ss.PrevRefreshHash), micros(ss.LastSeenAt))
		return err
	})
	switch field, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup && field == "refresh_hash":
		return domain.AlreadyExists("the refresh token of session %q is already in use", ss.ID)
	case dup:
		return domain.AlreadyExists("session %q already exists", ss.ID)
	case s.f.foreignKey(err):
		return domain.NotFound("user %q not found", ss.UID)
	}
	return fmt.Errorf("sqlstore: create session: %w", err)
}

func (s sessions) Get(ctx context.Context, id string) (*domain.Session, error) {
	ss, err := scanSession(s.queryRow(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("session %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get session: %w", err)
	}
	return ss, nil
}

func (s sessions) GetByRefreshHash(ctx context.Context, h []byte) (*domain.Session, error) {
	if len(h) == 0 {
		return nil, domain.NotFound("no session has this refresh token")
	}
	// Prefer the session whose current token it is; a previous one only
	// matters to detect a replayed (stolen) token.
	ss, err := scanSession(s.queryRow(ctx, "SELECT "+sessionColumns+` FROM sessions
		WHERE refresh_hash = ? OR prev_refresh_hash = ?
		ORDER BY CASE WHEN refresh_hash = ? THEN 0 ELSE 1 END LIMIT 1`, h, h, h))
	if errors.Is(err, sql.ErrNoRows) {
		// Never name the hash: it is as good as the token to an attacker
		// who can query by it.
		return nil, domain.NotFound("no session has this refresh token")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get session by refresh token: %w", err)
	}
	return ss, nil
}

func (s sessions) RotateRefresh(ctx context.Context, id string, old, new []byte, at time.Time) error {
	if len(old) == 0 {
		return domain.Aborted("session %q: no refresh token to rotate", id)
	}
	// Conditional on the old hash: of two refreshes with one token, the
	// second finds the hash changed and touches nothing.
	var n int64
	err := s.guard(ctx, func() (err error) {
		n, err = s.execAffected(ctx, `UPDATE sessions SET prev_refresh_hash = refresh_hash,
			refresh_hash = ?, last_seen_at = ? WHERE id = ? AND refresh_hash = ?`,
			nullBytes(new), micros(at), id, old)
		return err
	})
	if _, dup := s.f.duplicate(err); dup {
		return domain.AlreadyExists("the new refresh token of session %q is already in use", id)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: rotate refresh token: %w", err)
	}
	if n == 0 {
		return domain.Aborted("the refresh token of session %q was already used or the session does not exist", id)
	}
	return nil
}

func (s sessions) Revoke(ctx context.Context, id string, at time.Time) error {
	// Only a live row changes, so revoking twice keeps the first time.
	n, err := s.execAffected(ctx, "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at = 0",
		micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlstore: revoke session: %w", err)
	}
	if n > 0 {
		return nil
	}
	var one int
	err = s.queryRow(ctx, "SELECT 1 FROM sessions WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.NotFound("session %q not found", id)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: revoke session: %w", err)
	}
	return nil
}

func (s sessions) RevokeUser(ctx context.Context, uid string, at time.Time) ([]string, error) {
	rows, err := s.query(ctx, `UPDATE sessions SET revoked_at = ?
		WHERE uid = ? AND revoked_at = 0 AND expires_at > ? RETURNING id`, micros(at), uid, micros(at))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: revoke sessions of %s: %w", uid, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: revoke sessions of %s: %w", uid, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: revoke sessions of %s: %w", uid, err)
	}
	slices.Sort(ids) // RETURNING has no defined order
	return ids, nil
}

func (s sessions) ListRevokedSince(ctx context.Context, since, now time.Time) ([]*domain.Session, error) {
	// revoked_at <> 0 matches the partial index's predicate.
	rows, err := s.query(ctx, "SELECT "+sessionColumns+` FROM sessions
		WHERE revoked_at <> 0 AND revoked_at >= ? AND expires_at > ? ORDER BY revoked_at, id`,
		micros(since), micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list revoked sessions: %w", err)
	}
	defer rows.Close()
	var out []*domain.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list revoked sessions: %w", err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list revoked sessions: %w", err)
	}
	return out, nil
}

func (s sessions) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM sessions WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired sessions: %w", err)
	}
	return int(n), nil
}

type tokens struct{ *tx }

func (s tokens) Create(ctx context.Context, t *store.OneTimeToken) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, `INSERT INTO one_time_tokens (hash, purpose, uid, data, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			nullBytes(t.Hash), t.Purpose, t.UID, t.Data, micros(t.CreatedAt), micros(t.ExpiresAt))
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup:
		return domain.AlreadyExists("a %s token with this hash already exists", t.Purpose)
	case s.f.foreignKey(err):
		return domain.NotFound("user %q not found", t.UID)
	}
	return fmt.Errorf("sqlstore: create %s token: %w", t.Purpose, err)
}

func (s tokens) Consume(ctx context.Context, hash []byte, purpose string, now time.Time) (*store.OneTimeToken, error) {
	// DELETE … RETURNING takes the row in one statement: of two concurrent
	// consumers, one deletes it and the other finds nothing.
	t := store.OneTimeToken{Hash: hash}
	var created, expires int64
	err := s.queryRow(ctx, `DELETE FROM one_time_tokens WHERE hash = ? AND purpose = ?
		RETURNING purpose, uid, data, created_at, expires_at`, nullBytes(hash), purpose).
		Scan(&t.Purpose, &t.UID, &t.Data, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("no such %s token: it was never issued or is already used", purpose)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: consume %s token: %w", purpose, err)
	}
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expires)
	if !now.Before(t.ExpiresAt) {
		return nil, domain.FailedPrecondition("the %s token expired at %s; ask for a new one",
			purpose, t.ExpiresAt.Format(time.RFC3339))
	}
	return &t, nil
}

func (s tokens) DeleteFor(ctx context.Context, uid, purpose string) error {
	if _, err := s.exec(ctx, "DELETE FROM one_time_tokens WHERE uid = ? AND purpose = ?", uid, purpose); err != nil {
		return fmt.Errorf("sqlstore: delete %s tokens of %s: %w", purpose, uid, err)
	}
	return nil
}
