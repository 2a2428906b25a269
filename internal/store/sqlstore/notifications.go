package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type notifications struct{ *tx }

const notificationColumns = "id, recipient, sender, text, urgent, read, created_at, request_id"

func scanNotification(row scanner) (*domain.Notification, error) {
	var n domain.Notification
	var created int64
	if err := row.Scan(&n.ID, &n.Recipient, &n.Sender, &n.Text, &n.Urgent, &n.Read, &created, &n.RequestID); err != nil {
		return nil, err
	}
	n.CreatedAt = fromMicros(created)
	return &n, nil
}

func (s notifications) Create(ctx context.Context, n *domain.Notification) error {
	var id int64
	err := s.guard(ctx, func() error {
		return s.queryRow(ctx, `INSERT INTO notifications (recipient, sender, text, urgent, read, created_at, request_id)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			n.Recipient, n.Sender, n.Text, n.Urgent, n.Read, micros(n.CreatedAt), n.RequestID).Scan(&id)
	})
	switch {
	case err == nil:
		n.ID = id // only once it is certain
		return nil
	case s.f.foreignKey(err): // the recipient is the only reference
		return domain.NotFound("user %q not found", n.Recipient)
	}
	return fmt.Errorf("sqlstore: create notification: %w", err)
}

func (s notifications) List(ctx context.Context, recipient string, f store.NotificationFilter) ([]*domain.Notification, error) {
	var w where
	w.add("recipient = ?", recipient)
	if f.UnreadOnly {
		w.conds = append(w.conds, "NOT read")
	}
	if f.UrgentOnly {
		w.conds = append(w.conds, "urgent")
	}
	if !f.Since.IsZero() {
		w.add("created_at >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at < ?", micros(f.Until))
	}
	if f.BeforeID > 0 {
		w.add("id < ?", f.BeforeID)
	}
	// A stream (AfterID) reads forwards from where it was; a listing pages
	// backwards from the newest.
	order := " ORDER BY id DESC"
	if f.AfterID > 0 || f.Forward {
		w.add("id > ?", f.AfterID)
		order = " ORDER BY id"
	}
	out, err := collect(ctx, s.tx, scanNotification, "SELECT "+notificationColumns+" FROM notifications"+
		w.String()+order+" LIMIT ?", append(w.args, pageLimit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list notifications: %w", err)
	}
	return out, nil
}

// Mark touches only rows whose flags differ from what is asked, so the count
// is of notifications that changed, not of those named: marking read twice
// changes nothing the second time.
func (s notifications) Mark(ctx context.Context, recipient string, ids []int64, read, urgent *bool) (int, error) {
	if len(ids) == 0 || (read == nil && urgent == nil) {
		return 0, nil
	}
	var sets, differs []string
	var setArgs, differArgs []any
	for _, flag := range []struct {
		col string
		v   *bool
	}{{"read", read}, {"urgent", urgent}} {
		if flag.v != nil {
			sets = append(sets, flag.col+" = ?")
			setArgs = append(setArgs, *flag.v)
			differs = append(differs, flag.col+" <> ?")
			differArgs = append(differArgs, *flag.v)
		}
	}
	var w where
	w.add("recipient = ?", recipient)
	addIn(&w, "id", ids)
	w.conds = append(w.conds, "("+strings.Join(differs, " OR ")+")")
	w.args = append(w.args, differArgs...)
	n, err := s.execAffected(ctx, "UPDATE notifications SET "+strings.Join(sets, ", ")+w.String(), append(setArgs, w.args...)...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: mark notifications: %w", err)
	}
	return int(n), nil
}
