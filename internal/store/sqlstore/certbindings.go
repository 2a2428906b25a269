package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type certBindings struct{ *tx }

func (c certBindings) Bind(ctx context.Context, b *store.CertBinding) error {
	err := c.guard(ctx, func() error {
		_, err := c.exec(ctx, `INSERT INTO cert_bindings (fingerprint, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (fingerprint) DO UPDATE SET session_id = excluded.session_id, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			b.Fingerprint, b.SessionID, micros(b.CreatedAt), micros(b.ExpiresAt))
		return err
	})
	if err != nil && c.f.foreignKey(err) {
		return domain.NotFound("session %q not found", b.SessionID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: bind certificate: %w", err)
	}
	return nil
}

func (c certBindings) Get(ctx context.Context, fingerprint string) (*store.CertBinding, error) {
	var b store.CertBinding
	var created, expires int64
	err := c.queryRow(ctx, "SELECT fingerprint, session_id, created_at, expires_at FROM cert_bindings WHERE fingerprint = ?", fingerprint).
		Scan(&b.Fingerprint, &b.SessionID, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("no session is bound to certificate %s", fingerprint)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get certificate binding: %w", err)
	}
	b.CreatedAt, b.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &b, nil
}
