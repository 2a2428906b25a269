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

type federation struct{ *tx }

// nullable stores "" as NULL, for optional foreign keys.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (f federation) CreateLink(ctx context.Context, l *store.IdentityLink) error {
	err := f.guard(ctx, func() error {
		_, err := f.exec(ctx, "INSERT INTO identity_links (issuer, subject, uid, email, created_at) VALUES (?, ?, ?, ?, ?)",
			l.Issuer, l.Subject, l.UID, l.Email, micros(l.CreatedAt))
		return err
	})
	if err == nil {
		return nil
	}
	if f.f.foreignKey(err) {
		return domain.NotFound("user %q not found", l.UID)
	}
	if _, dup := f.f.unique(err); dup {
		return domain.AlreadyExists("this identity at %s is linked to an account already", l.Issuer)
	}
	return fmt.Errorf("sqlstore: create identity link: %w", err)
}

func scanLink(row scanner) (*store.IdentityLink, error) {
	var l store.IdentityLink
	var created int64
	if err := row.Scan(&l.Issuer, &l.Subject, &l.UID, &l.Email, &created); err != nil {
		return nil, err
	}
	l.CreatedAt = fromMicros(created)
	return &l, nil
}

func (f federation) GetLink(ctx context.Context, issuer, subject string) (*store.IdentityLink, error) {
	l, err := scanLink(f.queryRow(ctx, "SELECT issuer, subject, uid, email, created_at FROM identity_links WHERE issuer = ? AND subject = ?", issuer, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("this identity at %s is linked to no account", issuer)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get identity link: %w", err)
	}
	return l, nil
}

func (f federation) ListLinks(ctx context.Context, uid string) ([]*store.IdentityLink, error) {
	out, err := collect(ctx, f.tx, scanLink, "SELECT issuer, subject, uid, email, created_at FROM identity_links WHERE uid = ? ORDER BY created_at, issuer, subject", uid)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list identity links: %w", err)
	}
	return out, nil
}

func (f federation) DeleteLink(ctx context.Context, uid, issuer, subject string) error {
	return f.execOne(ctx, "delete identity link", domain.NotFound("%s has no link to that identity at %s", uid, issuer), "DELETE FROM identity_links WHERE uid = ? AND issuer = ? AND subject = ?", uid, issuer, subject)
}

const externalLoginColumns = "id, state_hash, poll_hash, nonce, verifier, link_uid, issuer, subject, email, link_hash, return_to, finish_hash, uid, created_at, expires_at"

func scanExternalLogin(row scanner) (*store.ExternalLogin, error) {
	var l store.ExternalLogin
	var linkUID, uid sql.NullString
	var created, expires int64
	if err := row.Scan(&l.ID, &l.StateHash, &l.PollHash, &l.Nonce, &l.Verifier, &linkUID, &l.Issuer, &l.Subject, &l.Email, &l.LinkHash, &l.ReturnTo, &l.FinishHash, &uid, &created, &expires); err != nil {
		return nil, err
	}
	l.LinkUID, l.UID = linkUID.String, uid.String
	l.LinkHash, l.FinishHash = nilIfEmpty(l.LinkHash), nilIfEmpty(l.FinishHash)
	l.CreatedAt, l.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &l, nil
}

func (f federation) CreateLogin(ctx context.Context, l *store.ExternalLogin) error {
	err := f.guard(ctx, func() error {
		_, err := f.exec(ctx, "INSERT INTO external_logins ("+externalLoginColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			l.ID, l.StateHash, l.PollHash, l.Nonce, l.Verifier, nullable(l.LinkUID), l.Issuer, l.Subject, l.Email,
			nilIfEmpty(l.LinkHash), l.ReturnTo, nilIfEmpty(l.FinishHash), nullable(l.UID), micros(l.CreatedAt), micros(l.ExpiresAt))
		return err
	})
	if err != nil && f.f.foreignKey(err) {
		return domain.NotFound("user not found")
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create external login: %w", err)
	}
	return nil
}

func (f federation) getLogin(ctx context.Context, where string, arg any) (*store.ExternalLogin, error) {
	l, err := scanExternalLogin(f.queryRow(ctx, "SELECT "+externalLoginColumns+" FROM external_logins WHERE "+where+" = ?", arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("login not found (it expired, or was used): start again")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get external login: %w", err)
	}
	return l, nil
}

func (f federation) GetLogin(ctx context.Context, id string) (*store.ExternalLogin, error) {
	return f.getLogin(ctx, "id", id)
}

func (f federation) GetLoginByState(ctx context.Context, stateHash []byte) (*store.ExternalLogin, error) {
	return f.getLogin(ctx, "state_hash", stateHash)
}

func (f federation) ClaimCallback(ctx context.Context, id, issuer, subject, email string) error {
	// The guard on subject makes the claim atomic: of two callbacks, one
	// updates the row and the other finds it claimed.
	n, err := f.execAffected(ctx, "UPDATE external_logins SET issuer = ?, subject = ?, email = ? WHERE id = ? AND subject = ''", issuer, subject, email, id)
	if err != nil {
		return fmt.Errorf("sqlstore: claim external login: %w", err)
	}
	if n == 1 {
		return nil
	}
	if _, err := f.GetLogin(ctx, id); err != nil {
		return err
	}
	return domain.AlreadyExists("this login came back from the identity provider already: start again")
}

func (f federation) UpdateLogin(ctx context.Context, l *store.ExternalLogin) error {
	var n int64
	err := f.guard(ctx, func() error {
		var err error
		n, err = f.execAffected(ctx, "UPDATE external_logins SET link_hash = ?, finish_hash = ?, uid = ? WHERE id = ?",
			nilIfEmpty(l.LinkHash), nilIfEmpty(l.FinishHash), nullable(l.UID), l.ID)
		return err
	})
	if err != nil && f.f.foreignKey(err) {
		return domain.NotFound("user %q not found", l.UID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: update external login: %w", err)
	}
	if n == 0 {
		return domain.NotFound("login not found (it expired, or was used): start again")
	}
	return nil
}

func (f federation) DeleteLogin(ctx context.Context, id string) error {
	return f.execOne(ctx, "delete external login", domain.NotFound("login not found (it expired, or was used): start again"), "DELETE FROM external_logins WHERE id = ?", id)
}

func (f federation) DeleteExpiredLogins(ctx context.Context, before time.Time) (int, error) {
	n, err := f.execAffected(ctx, "DELETE FROM external_logins WHERE expires_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired external logins: %w", err)
	}
	return int(n), nil
}
