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

type providers struct{ *tx }

const providerColumns = "name, url, state, public_key, registered_at, created_at"

func scanProvider(row interface{ Scan(...any) error }) (*domain.Provider, error) {
	var p domain.Provider
	var reg, created int64
	if err := row.Scan(&p.Name, &p.URL, &p.State, &p.PublicKey, &reg, &created); err != nil {
		return nil, err
	}
	if len(p.PublicKey) == 0 {
		p.PublicKey = nil
	}
	p.RegisteredAt, p.CreatedAt = fromMicros(reg), fromMicros(created)
	return &p, nil
}

func (s providers) Create(ctx context.Context, p *domain.Provider) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO providers ("+providerColumns+") VALUES (?, ?, ?, ?, ?, ?)",
			p.Name, p.URL, p.State, append([]byte{}, p.PublicKey...), micros(p.RegisteredAt), micros(p.CreatedAt))
		return err
	})
	if err == nil {
		return nil
	}
	if _, dup := s.f.unique(err); dup {
		desc := fmt.Sprintf("a provider named %q exists already", p.Name)
		return &domain.Error{
			Code:       domain.CodeAlreadyExists,
			Message:    "name: " + desc,
			Violations: []domain.Violation{{Field: "name", Rule: "name.duplicate", Description: desc}},
		}
	}
	return fmt.Errorf("sqlstore: create provider: %w", err)
}

func (s providers) Get(ctx context.Context, name string) (*domain.Provider, error) {
	p, err := scanProvider(s.queryRow(ctx, "SELECT "+providerColumns+" FROM providers WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("provider %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get provider: %w", err)
	}
	return p, nil
}

func (s providers) List(ctx context.Context) ([]*domain.Provider, error) {
	rows, err := s.query(ctx, "SELECT "+providerColumns+" FROM providers ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list providers: %w", err)
	}
	defer rows.Close()
	var out []*domain.Provider
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list providers: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list providers: %w", err)
	}
	return out, nil
}

func (s providers) Update(ctx context.Context, p *domain.Provider) error {
	return s.execOne(ctx, "update provider", domain.NotFound("provider %q not found", p.Name),
		"UPDATE providers SET url = ?, state = ?, public_key = ?, registered_at = ? WHERE name = ?",
		p.URL, p.State, append([]byte{}, p.PublicKey...), micros(p.RegisteredAt), p.Name)
}

func (s providers) Delete(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete provider", domain.NotFound("provider %q not found", name),
		"DELETE FROM providers WHERE name = ?", name)
}

func (s providers) CreateRegistration(ctx context.Context, r *domain.ProviderRegistration) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO provider_registrations (token_hash, provider, expires_at) VALUES (?, ?, ?)",
			r.TokenHash, r.Provider, micros(r.ExpiresAt))
		return err
	})
	if err != nil && s.f.foreignKey(err) {
		return domain.NotFound("provider %q not found", r.Provider)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create provider registration: %w", err)
	}
	return nil
}

func (s providers) ClaimRegistration(ctx context.Context, hash []byte) (*domain.ProviderRegistration, error) {
	var r domain.ProviderRegistration
	var exp int64
	err := s.queryRow(ctx, "SELECT token_hash, provider, expires_at FROM provider_registrations WHERE token_hash = ?", hash).Scan(&r.TokenHash, &r.Provider, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("registration token not valid: used, expired or never issued")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim provider registration: %w", err)
	}
	r.ExpiresAt = fromMicros(exp)
	// The delete decides between concurrent claims: only one removes it.
	if err := s.execOne(ctx, "claim provider registration", domain.NotFound("registration token not valid: used, expired or never issued"),
		"DELETE FROM provider_registrations WHERE token_hash = ?", hash); err != nil {
		return nil, err
	}
	return &r, nil
}

func (s providers) CreateTicket(ctx context.Context, t *domain.ProviderTicket) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO provider_tickets (id, provider, uid, expires_at, used_at) VALUES (?, ?, ?, ?, ?)",
			t.ID, t.Provider, t.UID, micros(t.ExpiresAt), micros(t.UsedAt))
		return err
	})
	if err != nil && s.f.foreignKey(err) {
		return domain.NotFound("provider %q or user %q not found", t.Provider, t.UID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create provider ticket: %w", err)
	}
	return nil
}

func (s providers) UseTicket(ctx context.Context, id string, now time.Time) (*domain.ProviderTicket, error) {
	var t domain.ProviderTicket
	var exp, used int64
	err := s.queryRow(ctx, "SELECT id, provider, uid, expires_at, used_at FROM provider_tickets WHERE id = ?", id).
		Scan(&t.ID, &t.Provider, &t.UID, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("ticket %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: use provider ticket: %w", err)
	}
	t.ExpiresAt, t.UsedAt = fromMicros(exp), fromMicros(used)
	n, err := s.execAffected(ctx, "UPDATE provider_tickets SET used_at = ? WHERE id = ? AND used_at = 0", micros(now), id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: use provider ticket: %w", err)
	}
	if n == 0 {
		return nil, domain.FailedPrecondition("ticket %q was used already", id)
	}
	return &t, nil
}

func (s providers) DeleteExpiredTickets(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM provider_tickets WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired provider tickets: %w", err)
	}
	return int(n), nil
}

func (s providers) PutConnection(ctx context.Context, c *domain.ProviderConnection) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, `INSERT INTO provider_connections (provider, uid, local_account, user_key_fingerprint, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (provider, uid) DO UPDATE SET local_account = excluded.local_account,
			user_key_fingerprint = excluded.user_key_fingerprint, created_at = excluded.created_at`,
			c.Provider, c.UID, c.LocalAccount, c.UserKeyFingerprint, micros(c.CreatedAt))
		return err
	})
	if err != nil && s.f.foreignKey(err) {
		return domain.NotFound("provider %q or user %q not found", c.Provider, c.UID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: put provider connection: %w", err)
	}
	return nil
}

func (s providers) ListConnections(ctx context.Context, uid string) ([]*domain.ProviderConnection, error) {
	rows, err := s.query(ctx, "SELECT provider, uid, local_account, user_key_fingerprint, created_at FROM provider_connections WHERE uid = ? ORDER BY provider", uid)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list provider connections: %w", err)
	}
	defer rows.Close()
	var out []*domain.ProviderConnection
	for rows.Next() {
		var c domain.ProviderConnection
		var created int64
		if err := rows.Scan(&c.Provider, &c.UID, &c.LocalAccount, &c.UserKeyFingerprint, &created); err != nil {
			return nil, fmt.Errorf("sqlstore: list provider connections: %w", err)
		}
		c.CreatedAt = fromMicros(created)
		out = append(out, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list provider connections: %w", err)
	}
	return out, nil
}

func (s providers) DeleteConnection(ctx context.Context, provider, uid string) error {
	return s.execOne(ctx, "delete provider connection", domain.NotFound("no connection of %q to provider %q", uid, provider),
		"DELETE FROM provider_connections WHERE provider = ? AND uid = ?", provider, uid)
}

var _ store.Providers = providers{}
