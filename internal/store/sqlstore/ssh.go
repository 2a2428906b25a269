package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type sshKeys struct{ *tx }

const sshKeyColumns = "fingerprint, uid, key_type, bits, comment, public_key, created_at"

func scanSSHKey(row interface{ Scan(...any) error }) (*domain.SSHKey, error) {
	var k domain.SSHKey
	var created int64
	if err := row.Scan(&k.Fingerprint, &k.UID, &k.Type, &k.Bits, &k.Comment, &k.PublicKey, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(created)
	return &k, nil
}

// errSSHKeyTaken names the field, so that callers see which part of their
// request to change; it does not say who holds the key.
func errSSHKeyTaken(fingerprint string) error {
	desc := "an SSH key with fingerprint " + fingerprint + " is already registered"
	return &domain.Error{
		Code:       domain.CodeAlreadyExists,
		Message:    "public_key: " + desc,
		Violations: []domain.Violation{{Field: "public_key", Rule: "public_key.duplicate", Description: desc}},
	}
}

func (s sshKeys) Create(ctx context.Context, k *domain.SSHKey) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO ssh_keys ("+sshKeyColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
			k.Fingerprint, k.UID, k.Type, k.Bits, k.Comment, k.PublicKey, micros(k.CreatedAt))
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup: // the fingerprint is the table's only unique key
		return errSSHKeyTaken(k.Fingerprint)
	case s.f.foreignKey(err):
		return domain.NotFound("user %q not found", k.UID)
	}
	return fmt.Errorf("sqlstore: create ssh key: %w", err)
}

func (s sshKeys) Get(ctx context.Context, fingerprint string) (*domain.SSHKey, error) {
	k, err := scanSSHKey(s.queryRow(ctx, "SELECT "+sshKeyColumns+" FROM ssh_keys WHERE fingerprint = ?", fingerprint))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("SSH key %s not found", fingerprint)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get ssh key: %w", err)
	}
	return k, nil
}

func (s sshKeys) List(ctx context.Context, uid string) ([]*domain.SSHKey, error) {
	rows, err := s.query(ctx, "SELECT "+sshKeyColumns+" FROM ssh_keys WHERE uid = ? ORDER BY created_at, fingerprint", uid)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list ssh keys: %w", err)
	}
	defer rows.Close()
	var out []*domain.SSHKey
	for rows.Next() {
		k, err := scanSSHKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list ssh keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list ssh keys: %w", err)
	}
	return out, nil
}

func (s sshKeys) Delete(ctx context.Context, uid, fingerprint string) error {
	n, err := s.execAffected(ctx, "DELETE FROM ssh_keys WHERE uid = ? AND fingerprint = ?", uid, fingerprint)
	if err != nil {
		return fmt.Errorf("sqlstore: delete ssh key: %w", err)
	}
	if n == 0 {
		// Whether another user holds it is none of the caller's business.
		return domain.NotFound("user %q has no SSH key %s", uid, fingerprint)
	}
	return nil
}

type authorities struct{ *tx }

func (s authorities) Create(ctx context.Context, a *store.Authority) error {
	err := s.guard(ctx, func() error {
		// Key bytes are NOT NULL: pass non-nil slices even when empty.
		_, err := s.exec(ctx, `INSERT INTO authorities (name, algorithm, public_key, private_key, chain, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, a.Name, a.Algorithm, append([]byte{}, a.PublicKey...),
			append([]byte{}, a.PrivateKey...), append([]byte{}, a.Chain...), micros(a.CreatedAt))
		return err
	})
	if _, dup := s.f.duplicate(err); dup {
		return domain.AlreadyExists("authority %q already exists", a.Name)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create authority: %w", err)
	}
	return nil
}

func (s authorities) Get(ctx context.Context, name string) (*store.Authority, error) {
	var a store.Authority
	var created int64
	err := s.queryRow(ctx, "SELECT name, algorithm, public_key, private_key, chain, created_at FROM authorities WHERE name = ?", name).
		Scan(&a.Name, &a.Algorithm, &a.PublicKey, &a.PrivateKey, &a.Chain, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("authority %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get authority: %w", err)
	}
	a.CreatedAt = fromMicros(created)
	a.Chain = nilIfEmpty(a.Chain)
	return &a, nil
}

func (s authorities) SetPrivateKey(ctx context.Context, name string, sealed []byte) error {
	return s.execOne(ctx, "update authority", domain.NotFound("authority %q not found", name), "UPDATE authorities SET private_key = ? WHERE name = ?", append([]byte{}, sealed...), name)
}

func (s authorities) Replace(ctx context.Context, a *store.Authority) error {
	n, err := s.execAffected(ctx, "UPDATE authorities SET algorithm = ?, public_key = ?, private_key = ?, chain = ?, created_at = ? WHERE name = ?",
		a.Algorithm, append([]byte{}, a.PublicKey...), append([]byte{}, a.PrivateKey...), append([]byte{}, a.Chain...), micros(a.CreatedAt), a.Name)
	if err != nil {
		return fmt.Errorf("sqlstore: replace authority: %w", err)
	}
	if n == 0 {
		return domain.NotFound("authority %q not found", a.Name)
	}
	return nil
}
