package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type users struct{ *tx }

const userColumns = "uid, email, email_verified, state, admin, created_at, updated_at"

// emailKey is what e-mail uniqueness compares. It is computed here rather
// than with SQL lower(), which in SQLite folds ASCII only.
func emailKey(email string) string { return strings.ToLower(email) }

func scanUser(row interface{ Scan(...any) error }) (*domain.User, error) {
	var u domain.User
	var state string
	var created, updated int64
	if err := row.Scan(&u.UID, &u.Email, &u.EmailVerified, &state, &u.Admin, &created, &updated); err != nil {
		return nil, err
	}
	u.State = domain.UserState(state)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// duplicateUser names the field of a unique violation on users.
func (s users) duplicateUser(err error, u *domain.User) error {
	field, ok := s.f.duplicate(err)
	if !ok {
		return nil
	}
	if field == "email" {
		return domain.AlreadyExists("e-mail address %q is already registered", u.Email)
	}
	return domain.AlreadyExists("user %q already exists", u.UID)
}

func (s users) Create(ctx context.Context, u *domain.User, passwordHash string) error {
	var closed int
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM closed_accounts WHERE uid = ?", u.UID).Scan(&closed)
	if err != nil {
		return fmt.Errorf("sqlstore: create user: %w", err)
	}
	if closed > 0 {
		return domain.AlreadyExists("user %q existed and was closed; a uid is never given out again", u.UID)
	}
	if err := s.claimName(ctx, u.UID, nameUser); err != nil {
		return err
	}
	err = s.guard(ctx, func() error {
		_, err := s.exec(ctx, `INSERT INTO users (uid, email, email_key, email_verified, state, admin,
			password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.UID, u.Email, emailKey(u.Email), u.EmailVerified, string(u.State), u.Admin,
			passwordHash, micros(u.CreatedAt), micros(u.UpdatedAt))
		return err
	})
	if err != nil {
		// The caller's transaction may go on: the claim goes too.
		if rerr := s.releaseName(ctx, u.UID, nameUser); rerr != nil {
			return rerr
		}
		if derr := s.duplicateUser(err, u); derr != nil {
			return derr
		}
		return fmt.Errorf("sqlstore: create user: %w", err)
	}
	return nil
}

func (s users) Get(ctx context.Context, uid string) (*domain.User, error) {
	u, err := scanUser(s.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE uid = ?", uid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("user %q not found", uid)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get user: %w", err)
	}
	return u, nil
}

func (s users) GetByEmail(ctx context.Context, email string) (*domain.User, error) {
	u, err := scanUser(s.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE email_key = ?", emailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("no user has the e-mail address %q", email)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get user by e-mail: %w", err)
	}
	return u, nil
}

func (s users) List(ctx context.Context, prefix string, page store.Page) ([]*domain.User, error) {
	// A prefix is a range of uids, so the primary key serves it (LIKE
	// would not, and is case-insensitive on SQLite only).
	q := "SELECT " + userColumns + " FROM users WHERE uid > ?"
	args := []any{page.After}
	if prefix != "" {
		q += " AND uid >= ?"
		args = append(args, prefix)
		if end, ok := prefixEnd(prefix); ok {
			q += " AND uid < ?"
			args = append(args, end)
		}
	}
	q += " ORDER BY uid LIMIT ?"
	args = append(args, pageLimit(page.Limit))
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list users: %w", err)
	}
	defer rows.Close()
	var out []*domain.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list users: %w", err)
		}
		if !strings.HasPrefix(u.UID, prefix) {
			break // only when prefixEnd had no bound: past the range
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list users: %w", err)
	}
	return out, nil
}

// prefixEnd returns the least string greater than every string that starts
// with p, in bytewise order (which is code point order for UTF-8): p with its
// last character incremented. ok is false when there is none.
func prefixEnd(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		next := r + 1
		if next == 0xD800 { // skip the surrogates, which UTF-8 cannot hold
			next = 0xE000
		}
		if r != utf8.RuneError && next <= utf8.MaxRune {
			return p + string(next), true
		}
	}
	return "", false
}

func (s users) Update(ctx context.Context, u *domain.User) error {
	var n int64
	err := s.guard(ctx, func() (err error) {
		n, err = s.execAffected(ctx, `UPDATE users SET email = ?, email_key = ?, email_verified = ?,
			state = ?, admin = ?, updated_at = ? WHERE uid = ?`,
			u.Email, emailKey(u.Email), u.EmailVerified, string(u.State), u.Admin, micros(u.UpdatedAt), u.UID)
		return err
	})
	if err != nil {
		if derr := s.duplicateUser(err, u); derr != nil {
			return derr
		}
		return fmt.Errorf("sqlstore: update user: %w", err)
	}
	if n == 0 {
		return domain.NotFound("user %q not found", u.UID)
	}
	return nil
}

func (s users) PasswordHash(ctx context.Context, uid string) (string, error) {
	var h string
	err := s.queryRow(ctx, "SELECT password_hash FROM users WHERE uid = ?", uid).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", domain.NotFound("user %q not found", uid)
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: get password hash: %w", err)
	}
	return h, nil
}

func (s users) SetPasswordHash(ctx context.Context, uid, hash string) error {
	return s.execOne(ctx, "set password hash", domain.NotFound("user %q not found", uid), "UPDATE users SET password_hash = ? WHERE uid = ?", hash, uid)
}

func (s users) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM users WHERE admin").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count admins: %w", err)
	}
	return n, nil
}

func (s users) Holdings(ctx context.Context, uid string) (projects, realizations []string, err error) {
	if projects, err = s.names(ctx, "SELECT name FROM projects WHERE owner = ? ORDER BY name", uid); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: holdings: %w", err)
	}
	if realizations, err = s.names(ctx, "SELECT id FROM realizations WHERE owner = ? AND released_at = 0 AND state NOT IN (?, ?) ORDER BY id",
		uid, string(domain.RealizationReleased), string(domain.RealizationFailed)); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: holdings: %w", err)
	}
	return projects, realizations, nil
}

func (s users) names(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (s users) Close(ctx context.Context, uid, by string, at time.Time) error {
	// The account row first: its cascade erases what hangs on it, and a
	// uid with no account leaves nothing written.
	if err := s.execOne(ctx, "close user", domain.NotFound("user %q not found", uid), "DELETE FROM users WHERE uid = ?", uid); err != nil {
		return err
	}
	if _, err := s.exec(ctx, "DELETE FROM profiles WHERE kind = ? AND id = ?", store.ProfileUser, uid); err != nil {
		return fmt.Errorf("sqlstore: close user: %w", err)
	}
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE uid = ?", uid); err != nil {
		return fmt.Errorf("sqlstore: close user: %w", err)
	}
	if _, err := s.exec(ctx, "INSERT INTO closed_accounts (uid, closed_at, closed_by) VALUES (?, ?, ?)", uid, micros(at), by); err != nil {
		return fmt.Errorf("sqlstore: close user: %w", err)
	}
	return nil
}

func (s users) Taken(ctx context.Context, uid string) (bool, error) {
	var n int
	err := s.queryRow(ctx, "SELECT (SELECT COUNT(*) FROM users WHERE uid = ?) + (SELECT COUNT(*) FROM closed_accounts WHERE uid = ?)", uid, uid).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: uid taken: %w", err)
	}
	return n > 0, nil
}

type profiles struct{ *tx }

func (s profiles) Get(ctx context.Context, kind, id string) (map[string]string, error) {
	rows, err := s.query(ctx, "SELECT name, value FROM profiles WHERE kind = ? AND id = ?", kind, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get profile: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("sqlstore: get profile: %w", err)
		}
		out[name] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: get profile: %w", err)
	}
	return out, nil
}

func (s profiles) Values(ctx context.Context, kind, name string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	err := chunks(ids, func(part []string) error {
		var w where
		w.add("kind = ?", kind)
		w.add("name = ?", name)
		addIn(&w, "id", part)
		rows, err := s.query(ctx, "SELECT id, value FROM profiles"+w.String(), w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, value string
			if err := rows.Scan(&id, &value); err != nil {
				return err
			}
			out[id] = value
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: profile values: %w", err)
	}
	return out, nil
}

func (s profiles) Set(ctx context.Context, kind, id string, values map[string]string) error {
	if _, err := s.exec(ctx, "DELETE FROM profiles WHERE kind = ? AND id = ?", kind, id); err != nil {
		return fmt.Errorf("sqlstore: set profile: %w", err)
	}
	for name, value := range values {
		if _, err := s.exec(ctx, "INSERT INTO profiles (kind, id, name, value) VALUES (?, ?, ?, ?)",
			kind, id, name, value); err != nil {
			return fmt.Errorf("sqlstore: set profile: %w", err)
		}
	}
	return nil
}

type loginFailures struct{ *tx }

func (s loginFailures) Get(ctx context.Context, uid, client string) (int, time.Time, error) {
	var n int
	var last int64
	err := s.queryRow(ctx, "SELECT failures, last_at FROM login_failures WHERE uid = ? AND client = ?", uid, client).Scan(&n, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlstore: get login failures: %w", err)
	}
	return n, fromMicros(last), nil
}

func (s loginFailures) Record(ctx context.Context, uid, client string, at time.Time) (int, error) {
	var n int
	err := s.queryRow(ctx, `INSERT INTO login_failures (uid, client, failures, last_at) VALUES (?, ?, 1, ?)
		ON CONFLICT (uid, client) DO UPDATE SET failures = login_failures.failures + 1, last_at = excluded.last_at
		RETURNING failures`, uid, client, micros(at)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: record login failure: %w", err)
	}
	return n, nil
}

func (s loginFailures) Reset(ctx context.Context, uid, client string) error {
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE uid = ? AND client = ?", uid, client); err != nil {
		return fmt.Errorf("sqlstore: reset login failures: %w", err)
	}
	return nil
}

func (s loginFailures) ResetAll(ctx context.Context, uid string) error {
	if _, err := s.exec(ctx, "DELETE FROM login_failures WHERE uid = ?", uid); err != nil {
		return fmt.Errorf("sqlstore: reset login failures: %w", err)
	}
	return nil
}

func (s loginFailures) DeleteBefore(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM login_failures WHERE last_at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete old login failures: %w", err)
	}
	return int(n), nil
}
