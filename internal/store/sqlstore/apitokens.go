package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

type apiTokens struct{ *tx }

const apiTokenColumns = "id, uid, name, scopes, secret_hash, created_at, expires_at, last_used_at, revoked_at"

func scanAPIToken(row interface{ Scan(...any) error }) (*domain.APIToken, error) {
	var t domain.APIToken
	var created, expires, used, revoked int64
	if err := row.Scan(&t.ID, &t.UID, &t.Name, &t.Scopes, &t.SecretHash, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expires)
	t.LastUsedAt, t.RevokedAt = fromMicros(used), fromMicros(revoked)
	return &t, nil
}

func (s apiTokens) Create(ctx context.Context, t *domain.APIToken) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO api_tokens ("+apiTokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.UID, t.Name, t.Scopes, append([]byte{}, t.SecretHash...), micros(t.CreatedAt), micros(t.ExpiresAt),
			micros(t.LastUsedAt), micros(t.RevokedAt))
		return err
	})
	if err == nil {
		return nil
	}
	if name, dup := s.f.unique(err); dup {
		// The (uid, name) key: PostgreSQL names the constraint, SQLite
		// the columns. Anything else is the random id colliding.
		if name == "api_tokens_uid_name_key" || strings.Contains(name, "api_tokens.name") {
			desc := fmt.Sprintf("you already have an API token named %q (revoke does not free a name)", t.Name)
			return &domain.Error{
				Code:       domain.CodeAlreadyExists,
				Message:    "name: " + desc,
				Violations: []domain.Violation{{Field: "name", Rule: "name.duplicate", Description: desc}},
			}
		}
		return domain.AlreadyExists("API token id already exists")
	}
	if s.f.foreignKey(err) {
		return domain.NotFound("user %q not found", t.UID)
	}
	return fmt.Errorf("sqlstore: create api token: %w", err)
}

func (s apiTokens) Get(ctx context.Context, id string) (*domain.APIToken, error) {
	t, err := scanAPIToken(s.queryRow(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("API token not found")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get api token: %w", err)
	}
	return t, nil
}

func (s apiTokens) GetByName(ctx context.Context, uid, name string) (*domain.APIToken, error) {
	t, err := scanAPIToken(s.queryRow(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE uid = ? AND name = ?", uid, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("user %q has no API token named %q", uid, name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get api token: %w", err)
	}
	return t, nil
}

func (s apiTokens) List(ctx context.Context, uid string) ([]*domain.APIToken, error) {
	rows, err := s.query(ctx, "SELECT "+apiTokenColumns+" FROM api_tokens WHERE uid = ? ORDER BY created_at, name", uid)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list api tokens: %w", err)
	}
	defer rows.Close()
	var out []*domain.APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list api tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list api tokens: %w", err)
	}
	return out, nil
}

func (s apiTokens) Revoke(ctx context.Context, uid, name string, now time.Time) (*domain.APIToken, error) {
	if _, err := s.exec(ctx, "UPDATE api_tokens SET revoked_at = ? WHERE uid = ? AND name = ? AND revoked_at = 0",
		micros(now), uid, name); err != nil {
		return nil, fmt.Errorf("sqlstore: revoke api token: %w", err)
	}
	return s.GetByName(ctx, uid, name)
}

func (s apiTokens) Touch(ctx context.Context, id string, now time.Time) error {
	if _, err := s.exec(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?",
		micros(now), id, micros(now)); err != nil {
		return fmt.Errorf("sqlstore: touch api token: %w", err)
	}
	return nil
}
