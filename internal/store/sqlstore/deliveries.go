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

type deliveries struct{ *tx }

const deliveryColumns = "seq, id, provider, kind, idem_key, payload, created_at, attempts, next_attempt, lease_until, delivered_at, failed_at, last_error"

// pendingDelivery is the condition of a delivery not yet done.
const pendingDelivery = "delivered_at = 0 AND failed_at = 0"

func scanDelivery(row interface{ Scan(...any) error }) (*domain.Delivery, error) {
	var d domain.Delivery
	var payload string
	var created, next, lease, delivered, failed int64
	if err := row.Scan(&d.Seq, &d.ID, &d.Provider, &d.Kind, &d.Key, &payload, &created, &d.Attempts, &next, &lease, &delivered, &failed, &d.LastError); err != nil {
		return nil, err
	}
	d.Payload = []byte(payload)
	d.CreatedAt, d.NextAttempt, d.LeaseUntil = fromMicros(created), fromMicros(next), fromMicros(lease)
	d.DeliveredAt, d.FailedAt = fromMicros(delivered), fromMicros(failed)
	return &d, nil
}

func (s deliveries) list(ctx context.Context, what, q string, args ...any) ([]*domain.Delivery, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	defer rows.Close()
	var out []*domain.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return out, nil
}

func (s deliveries) Enqueue(ctx context.Context, d *domain.Delivery) error {
	err := s.guard(ctx, func() error {
		return s.queryRow(ctx, `INSERT INTO deliveries (id, provider, kind, idem_key, payload, created_at, attempts, next_attempt, lease_until, delivered_at, failed_at, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			d.ID, d.Provider, d.Kind, d.Key, string(d.Payload), micros(d.CreatedAt), d.Attempts, micros(d.NextAttempt), micros(d.LeaseUntil),
			micros(d.DeliveredAt), micros(d.FailedAt), d.LastError).Scan(&d.Seq)
	})
	if err == nil {
		return nil
	}
	if _, dup := s.f.unique(err); dup {
		return domain.AlreadyExists("provider %q has a delivery with key %q already", d.Provider, d.Key)
	}
	return fmt.Errorf("sqlstore: enqueue delivery: %w", err)
}

func (s deliveries) Get(ctx context.Context, id string) (*domain.Delivery, error) {
	d, err := scanDelivery(s.queryRow(ctx, "SELECT "+deliveryColumns+" FROM deliveries WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("delivery %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get delivery: %w", err)
	}
	return d, nil
}

func (s deliveries) List(ctx context.Context, f store.DeliveryFilter) ([]*domain.Delivery, error) {
	q := "SELECT " + deliveryColumns + " FROM deliveries WHERE seq > ?"
	args := []any{f.AfterSeq}
	if f.Provider != "" {
		q += " AND provider = ?"
		args = append(args, f.Provider)
	}
	if !f.IncludeDone {
		q += " AND " + pendingDelivery
	}
	q += " ORDER BY seq LIMIT ?"
	args = append(args, pageLimit(f.Limit))
	return s.list(ctx, "list deliveries", q, args...)
}

func (s deliveries) Heads(ctx context.Context, limit int) ([]*domain.Delivery, error) {
	return s.list(ctx, "delivery heads", "SELECT "+deliveryColumns+" FROM deliveries d WHERE "+pendingDelivery+
		" AND seq = (SELECT MIN(e.seq) FROM deliveries e WHERE e.provider = d.provider AND e.delivered_at = 0 AND e.failed_at = 0)"+
		" ORDER BY provider LIMIT ?", pageLimit(limit))
}

func (s deliveries) Claim(ctx context.Context, id string, now, until time.Time) (bool, error) {
	n, err := s.execAffected(ctx, "UPDATE deliveries SET lease_until = ?, attempts = attempts + 1 WHERE id = ? AND "+pendingDelivery+" AND lease_until <= ? AND next_attempt <= ?",
		micros(until), id, micros(now), micros(now))
	if err != nil {
		return false, fmt.Errorf("sqlstore: claim delivery: %w", err)
	}
	return n == 1, nil
}

func (s deliveries) Delivered(ctx context.Context, id string, at time.Time) error {
	return s.execOne(ctx, "mark delivery delivered", domain.FailedPrecondition("delivery %q is not pending", id),
		"UPDATE deliveries SET delivered_at = ?, lease_until = 0, last_error = '' WHERE id = ? AND "+pendingDelivery, micros(at), id)
}

func (s deliveries) Retry(ctx context.Context, id string, next time.Time, lastError string) error {
	return s.execOne(ctx, "retry delivery", domain.FailedPrecondition("delivery %q is not pending", id),
		"UPDATE deliveries SET next_attempt = ?, lease_until = 0, last_error = ? WHERE id = ? AND "+pendingDelivery, micros(next), lastError, id)
}

func (s deliveries) Fail(ctx context.Context, id string, at time.Time, reason string) error {
	return s.execOne(ctx, "fail delivery", domain.FailedPrecondition("delivery %q is not pending", id),
		"UPDATE deliveries SET failed_at = ?, lease_until = 0, last_error = ? WHERE id = ? AND "+pendingDelivery, micros(at), reason, id)
}

func (s deliveries) FailPending(ctx context.Context, provider string, at time.Time, reason string) (int, error) {
	n, err := s.execAffected(ctx, "UPDATE deliveries SET failed_at = ?, lease_until = 0, last_error = ? WHERE provider = ? AND "+pendingDelivery, micros(at), reason, provider)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: fail pending deliveries: %w", err)
	}
	return int(n), nil
}

func (s deliveries) Pending(ctx context.Context, provider string) (int, error) {
	var n int
	if err := s.queryRow(ctx, "SELECT COUNT(*) FROM deliveries WHERE provider = ? AND "+pendingDelivery, provider).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count pending deliveries: %w", err)
	}
	return n, nil
}

func (s deliveries) DeleteDone(ctx context.Context, before time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM deliveries WHERE (delivered_at > 0 AND delivered_at < ?) OR (failed_at > 0 AND failed_at < ?)", micros(before), micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete done deliveries: %w", err)
	}
	return int(n), nil
}
