package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type signingKeys struct{ *tx }

func (s signingKeys) Create(ctx context.Context, k *store.SigningKey) error {
	err := s.guard(ctx, func() error {
		// Key bytes are NOT NULL: pass non-nil slices even when empty.
		_, err := s.exec(ctx, `INSERT INTO signing_keys (id, algorithm, public_key, private_key, created_at, not_after)
			VALUES (?, ?, ?, ?, ?, ?)`, k.ID, k.Algorithm, append([]byte{}, k.PublicKey...),
			append([]byte{}, k.PrivateKey...), micros(k.CreatedAt), micros(k.NotAfter))
		return err
	})
	if _, dup := s.f.duplicate(err); dup {
		return domain.AlreadyExists("signing key %q already exists", k.ID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create signing key: %w", err)
	}
	return nil
}

func (s signingKeys) List(ctx context.Context) ([]*store.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT id, algorithm, public_key, private_key, created_at, not_after
		FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list signing keys: %w", err)
	}
	defer rows.Close()
	var out []*store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created, notAfter int64
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PublicKey, &k.PrivateKey, &created, &notAfter); err != nil {
			return nil, fmt.Errorf("sqlstore: list signing keys: %w", err)
		}
		k.CreatedAt, k.NotAfter = fromMicros(created), fromMicros(notAfter)
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list signing keys: %w", err)
	}
	return out, nil
}

func (s signingKeys) Delete(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete signing key", domain.NotFound("signing key %q not found", id), "DELETE FROM signing_keys WHERE id = ?", id)
}

type audit struct{ *tx }

func (s audit) Append(ctx context.Context, e *domain.AuditEvent) error {
	err := s.queryRow(ctx, `INSERT INTO audit_events (at, actor, on_behalf_of, operation, object, outcome,
		request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		micros(e.Time), e.Actor, e.OnBehalfOf, e.Operation, e.Object, e.Outcome, e.RequestID, e.Detail).
		Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: append audit event: %w", err)
	}
	return nil
}

// where collects the conditions of a filtered listing.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, arg)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func (s audit) List(ctx context.Context, f store.AuditFilter) ([]*domain.AuditEvent, error) {
	var w where
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	if f.Object != "" {
		w.add("object = ?", f.Object)
	}
	if f.Operation != "" {
		w.add("operation = ?", f.Operation)
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("at < ?", micros(f.Until))
	}
	if f.BeforeID > 0 {
		w.add("id < ?", f.BeforeID)
	}
	rows, err := s.query(ctx, `SELECT id, at, actor, on_behalf_of, operation, object, outcome, request_id, detail
		FROM audit_events`+w.String()+" ORDER BY id DESC LIMIT ?", append(w.args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list audit events: %w", err)
	}
	defer rows.Close()
	var out []*domain.AuditEvent
	for rows.Next() {
		var e domain.AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.OnBehalfOf, &e.Operation, &e.Object, &e.Outcome,
			&e.RequestID, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlstore: list audit events: %w", err)
		}
		e.Time = fromMicros(at)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list audit events: %w", err)
	}
	return out, nil
}

type outbox struct{ *tx }

const mailColumns = "id, created_at, recipient, subject, body, secret, sent_at, last_error, attempts"

func (s outbox) Append(ctx context.Context, m *domain.Mail) error {
	err := s.queryRow(ctx, `INSERT INTO outbox (created_at, recipient, subject, body, secret, sent_at, last_error, attempts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		micros(m.CreatedAt), m.To, m.Subject, m.Body, nullBytes(m.SealedSecret), micros(m.SentAt), m.LastError, m.Attempts).Scan(&m.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: append mail: %w", err)
	}
	return nil
}

func (s outbox) list(ctx context.Context, q string, args ...any) ([]*domain.Mail, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*domain.Mail
	for rows.Next() {
		var m domain.Mail
		var created, sent int64
		if err := rows.Scan(&m.ID, &created, &m.To, &m.Subject, &m.Body, &m.SealedSecret, &sent, &m.LastError, &m.Attempts); err != nil {
			return nil, err
		}
		m.CreatedAt, m.SentAt = fromMicros(created), fromMicros(sent)
		out = append(out, &m)
	}
	return out, rows.Err()
}

func (s outbox) List(ctx context.Context, f store.OutboxFilter) ([]*domain.Mail, error) {
	var w where
	if f.To != "" {
		w.add("recipient = ?", f.To)
	}
	if f.Subject != "" {
		w.add("subject = ?", f.Subject)
	}
	if !f.Since.IsZero() {
		w.add("created_at >= ?", micros(f.Since))
	}
	if f.BeforeID > 0 {
		w.add("id < ?", f.BeforeID)
	}
	out, err := s.list(ctx, "SELECT "+mailColumns+" FROM outbox"+w.String()+" ORDER BY id DESC LIMIT ?",
		append(w.args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list mail: %w", err)
	}
	return out, nil
}

func (s outbox) Pending(ctx context.Context, limit int) ([]*domain.Mail, error) {
	out, err := s.list(ctx, "SELECT "+mailColumns+" FROM outbox WHERE sent_at = 0 ORDER BY id LIMIT ?",
		pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list pending mail: %w", err)
	}
	return out, nil
}

func (s outbox) MarkSent(ctx context.Context, id int64, at time.Time, keepBody bool) error {
	// last_error describes the last attempt, which succeeded. The secret
	// was for the recipient, who has it now.
	n, err := s.execAffected(ctx, `UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = '',
		secret = NULL, body = CASE WHEN ? THEN body ELSE '' END WHERE id = ?`, micros(at), keepBody, id)
	if err != nil {
		return fmt.Errorf("sqlstore: mark mail sent: %w", err)
	}
	if n == 0 {
		return domain.NotFound("mail %d not found", id)
	}
	return nil
}

func (s outbox) DropBodies(ctx context.Context, sentBefore time.Time) (int, error) {
	n, err := s.execAffected(ctx, `UPDATE outbox SET body = '', secret = NULL
		WHERE sent_at <> 0 AND sent_at < ? AND (body <> '' OR secret IS NOT NULL)`, micros(sentBefore))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: drop bodies of sent mail: %w", err)
	}
	return int(n), nil
}

func (s outbox) MarkFailed(ctx context.Context, id int64, errText string) error {
	n, err := s.execAffected(ctx, "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
		errText, id)
	if err != nil {
		return fmt.Errorf("sqlstore: mark mail failed: %w", err)
	}
	if n == 0 {
		return domain.NotFound("mail %d not found", id)
	}
	return nil
}

type changes struct{ *tx }

func (s changes) Append(ctx context.Context, kind, key string) error {
	// The counter row's lock is held until commit, so writers that append
	// changes take turns: a sequence number becomes visible only after
	// every smaller one has (SQLite has one writer anyway; on PostgreSQL a
	// writer that waited fails to serialize and Update runs it again).
	var seq int64
	if err := s.queryRow(ctx, "UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq").
		Scan(&seq); err != nil {
		return fmt.Errorf("sqlstore: append change: %w", err)
	}
	if _, err := s.exec(ctx, "INSERT INTO changes (seq, kind, object_key, at) VALUES (?, ?, ?, ?)",
		seq, kind, key, micros(time.Now())); err != nil {
		return fmt.Errorf("sqlstore: append change: %w", err)
	}
	s.lastSeq = seq
	return nil
}

func (s changes) Since(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	rows, err := s.query(ctx, "SELECT seq, kind, object_key, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
		after, pageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list changes: %w", err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var at int64
		if err := rows.Scan(&c.Seq, &c.Kind, &c.Key, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: list changes: %w", err)
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list changes: %w", err)
	}
	return out, nil
}

func (s changes) Prune(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM changes WHERE at < ?", micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	return int(n), nil
}

func (s changes) Latest(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.queryRow(ctx, "SELECT seq FROM change_counter WHERE id = 1").Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlstore: latest change: %w", err)
	}
	return seq, nil
}

type leases struct{ *tx }

func (s leases) Acquire(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	// One statement on both databases: insert, or take over the row when it
	// expired or is already ours. The row lock makes concurrent acquirers
	// take turns, and the WHERE lets exactly one of them through.
	n, err := s.execAffected(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= ? OR leases.holder = excluded.holder`,
		name, holder, micros(now.Add(ttl)), micros(now))
	if err != nil {
		return false, fmt.Errorf("sqlstore: acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

func (s leases) Release(ctx context.Context, name, holder string) error {
	if _, err := s.exec(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder); err != nil {
		return fmt.Errorf("sqlstore: release lease %s: %w", name, err)
	}
	return nil
}
