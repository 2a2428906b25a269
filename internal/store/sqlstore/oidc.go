package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type oidc struct{ *tx }

// words and fields store a list of space-free strings as one column.
func words(list []string) string { return strings.Join(list, " ") }

func fields(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// nilIfEmpty keeps an empty byte column empty, not a zero-length slice.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

const oidcClientColumns = "id, secret_hash, redirect_uris, created_at"

func scanOIDCClient(row scanner) (*domain.OIDCClient, error) {
	var c domain.OIDCClient
	var uris string
	var created int64
	if err := row.Scan(&c.ID, &c.SecretHash, &uris, &created); err != nil {
		return nil, err
	}
	c.SecretHash = nilIfEmpty(c.SecretHash)
	c.RedirectURIs = fields(uris)
	c.CreatedAt = fromMicros(created)
	return &c, nil
}

func (o oidc) CreateClient(ctx context.Context, c *domain.OIDCClient) error {
	err := o.guard(ctx, func() error {
		_, err := o.exec(ctx, "INSERT INTO oidc_clients ("+oidcClientColumns+") VALUES (?, ?, ?, ?)",
			c.ID, append([]byte{}, c.SecretHash...), words(c.RedirectURIs), micros(c.CreatedAt))
		return err
	})
	if _, dup := o.f.unique(err); err != nil && dup {
		desc := fmt.Sprintf("an OpenID Connect client named %q is registered already", c.ID)
		return &domain.Error{
			Code:       domain.CodeAlreadyExists,
			Message:    "name: " + desc,
			Violations: []domain.Violation{{Field: "name", Rule: "name.duplicate", Description: desc}},
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create oidc client: %w", err)
	}
	return nil
}

func (o oidc) GetClient(ctx context.Context, id string) (*domain.OIDCClient, error) {
	c, err := scanOIDCClient(o.queryRow(ctx, "SELECT "+oidcClientColumns+" FROM oidc_clients WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("OpenID Connect client %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get oidc client: %w", err)
	}
	return c, nil
}

func (o oidc) ListClients(ctx context.Context) ([]*domain.OIDCClient, error) {
	out, err := collect(ctx, o.tx, scanOIDCClient, "SELECT "+oidcClientColumns+" FROM oidc_clients ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list oidc clients: %w", err)
	}
	return out, nil
}

func (o oidc) DeleteClient(ctx context.Context, id string) error {
	// The foreign keys cascade to the client's requests and tokens.
	return o.execOne(ctx, "delete oidc client", domain.NotFound("OpenID Connect client %q not found", id), "DELETE FROM oidc_clients WHERE id = ?", id)
}

const oidcRequestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode,
	code_challenge, code_challenge_method, uid, auth_time, code_hash, created_at, expires_at`

func scanOIDCRequest(row scanner) (*store.OIDCAuthRequest, error) {
	var r store.OIDCAuthRequest
	var scopes string
	var uid sql.NullString
	var authTime, created, expires int64
	if err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.ResponseType, &r.ResponseMode,
		&r.CodeChallenge, &r.CodeChallengeMethod, &uid, &authTime, &r.CodeHash, &created, &expires); err != nil {
		return nil, err
	}
	r.Scopes = fields(scopes)
	r.UID = uid.String
	if authTime != 0 {
		r.AuthTime = fromMicros(authTime)
	}
	r.CodeHash = nilIfEmpty(r.CodeHash)
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &r, nil
}

func (o oidc) CreateAuthRequest(ctx context.Context, r *store.OIDCAuthRequest) error {
	var uid any
	if r.UID != "" {
		uid = r.UID
	}
	var authTime int64
	if !r.AuthTime.IsZero() {
		authTime = micros(r.AuthTime)
	}
	err := o.guard(ctx, func() error {
		_, err := o.exec(ctx, "INSERT INTO oidc_auth_requests ("+oidcRequestColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			r.ID, r.ClientID, r.RedirectURI, words(r.Scopes), r.State, r.Nonce, r.ResponseType, r.ResponseMode,
			r.CodeChallenge, r.CodeChallengeMethod, uid, authTime, nilIfEmpty(r.CodeHash), micros(r.CreatedAt), micros(r.ExpiresAt))
		return err
	})
	if err != nil && o.f.foreignKey(err) {
		return domain.NotFound("OpenID Connect client %q not found", r.ClientID)
	}
	if _, dup := o.f.unique(err); err != nil && dup {
		return domain.AlreadyExists("authorization request %q already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create oidc auth request: %w", err)
	}
	return nil
}

func (o oidc) GetAuthRequest(ctx context.Context, id string) (*store.OIDCAuthRequest, error) {
	r, err := scanOIDCRequest(o.queryRow(ctx, "SELECT "+oidcRequestColumns+" FROM oidc_auth_requests WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("authorization request not found (it expired, or was used)")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get oidc auth request: %w", err)
	}
	return r, nil
}

func (o oidc) CompleteAuthRequest(ctx context.Context, id, uid string, at time.Time) error {
	var n int64
	err := o.guard(ctx, func() error {
		var err error
		// Once: a second login on the same request (its id is in the
		// login page's address) must not change whom its code names.
		n, err = o.execAffected(ctx, "UPDATE oidc_auth_requests SET uid = ?, auth_time = ? WHERE id = ? AND uid IS NULL", uid, micros(at), id)
		return err
	})
	if err != nil && o.f.foreignKey(err) {
		return domain.NotFound("user %q not found", uid)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: complete oidc auth request: %w", err)
	}
	if n == 0 {
		if _, err := o.GetAuthRequest(ctx, id); err != nil {
			return err
		}
		return domain.AlreadyExists("this authorization request has a login already: start again from the application")
	}
	return nil
}

func (o oidc) SetCode(ctx context.Context, id string, codeHash []byte) error {
	return o.execOne(ctx, "set oidc code", domain.NotFound("authorization request not found (it expired, or was used)"), "UPDATE oidc_auth_requests SET code_hash = ? WHERE id = ?", codeHash, id)
}

func (o oidc) RedeemCode(ctx context.Context, codeHash []byte) (*store.OIDCAuthRequest, error) {
	// One statement forgets the code and returns the request: of two
	// concurrent redemptions, one updates the row and the other finds none.
	r, err := scanOIDCRequest(o.queryRow(ctx, "UPDATE oidc_auth_requests SET code_hash = NULL WHERE code_hash = ? RETURNING "+oidcRequestColumns, codeHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("authorization code not found (it expired, or was used)")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: redeem oidc code: %w", err)
	}
	r.CodeHash = append([]byte{}, codeHash...)
	return r, nil
}

func (o oidc) DeleteAuthRequest(ctx context.Context, id string) error {
	if _, err := o.exec(ctx, "DELETE FROM oidc_auth_requests WHERE id = ?", id); err != nil {
		return fmt.Errorf("sqlstore: delete oidc auth request: %w", err)
	}
	return nil
}

func (o oidc) CreateToken(ctx context.Context, t *store.OIDCToken) error {
	err := o.guard(ctx, func() error {
		_, err := o.exec(ctx, "INSERT INTO oidc_tokens (id, client_id, uid, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
			t.ID, t.ClientID, t.UID, words(t.Scopes), micros(t.CreatedAt), micros(t.ExpiresAt))
		return err
	})
	if err != nil && o.f.foreignKey(err) {
		return domain.NotFound("OpenID Connect client %q or user %q not found", t.ClientID, t.UID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create oidc token: %w", err)
	}
	return nil
}

func (o oidc) GetToken(ctx context.Context, id string) (*store.OIDCToken, error) {
	var t store.OIDCToken
	var scopes string
	var created, expires int64
	err := o.queryRow(ctx, "SELECT id, client_id, uid, scopes, created_at, expires_at FROM oidc_tokens WHERE id = ?", id).
		Scan(&t.ID, &t.ClientID, &t.UID, &scopes, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("access token not found (it expired, or was revoked)")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get oidc token: %w", err)
	}
	t.Scopes = fields(scopes)
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &t, nil
}

func (o oidc) DeleteToken(ctx context.Context, id string) error {
	if _, err := o.exec(ctx, "DELETE FROM oidc_tokens WHERE id = ?", id); err != nil {
		return fmt.Errorf("sqlstore: delete oidc token: %w", err)
	}
	return nil
}

func (o oidc) DeleteUserTokens(ctx context.Context, uid, clientID string) (int, error) {
	n, err := o.execAffected(ctx, "DELETE FROM oidc_tokens WHERE uid = ? AND client_id = ?", uid, clientID)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete oidc tokens: %w", err)
	}
	return int(n), nil
}

func (o oidc) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	a, err := o.execAffected(ctx, "DELETE FROM oidc_auth_requests WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired oidc auth requests: %w", err)
	}
	b, err := o.execAffected(ctx, "DELETE FROM oidc_tokens WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired oidc tokens: %w", err)
	}
	return int(a + b), nil
}
