package service

import (
	"context"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// NotificationQuery selects the caller's notifications.
type NotificationQuery struct {
	store.NotificationFilter
	PageSize  int32
	PageToken string
}

// ListNotifications pages through p's notifications, newest first.
func (s *Social) ListNotifications(ctx context.Context, p *auth.Principal, q NotificationQuery) ([]*domain.Notification, string, error) {
	if err := s.authorize(ctx, p, opNotificationsList, policy.None); err != nil {
		return nil, "", err
	}
	limit, err := pageLimit(q.PageSize)
	if err != nil {
		return nil, "", err
	}
	before, err := decodeIDToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	f := q.NotificationFilter
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, "", domain.Invalid("until", "until.before_since", "until must be later than since")
	}
	f.BeforeID, f.Limit, f.AfterID = before, limit+1, 0
	var ns []*domain.Notification
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		ns, err = tx.Notifications().List(ctx, p.UID, f)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	ns, next := trimPage(ns, limit, func(n *domain.Notification) string { return encodeIDToken(n.ID) })
	return ns, next, nil
}

// MarkNotifications sets or clears flags of p's own notifications.
func (s *Social) MarkNotifications(ctx context.Context, p *auth.Principal, ids []int64, read, urgent *bool) (int, error) {
	if err := s.authorize(ctx, p, opNotificationsMark, policy.None); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, domain.Invalid("ids", "ids.required", "name at least one notification")
	}
	if read == nil && urgent == nil {
		return 0, domain.Invalid("read", "flags.required", "say which flag to set: read or urgent")
	}
	var n int
	// Marking is the reader's own bookkeeping: no audit record, one
	// transaction.
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Notifications().Mark(ctx, p.UID, ids, read, urgent)
		return err
	})
	return n, err
}

// Target of a notification: exactly one of the three.
type Target struct {
	User, Project, Circle string
}

const (
	maxNotificationText = 2000
	targetOne           = "name exactly one of to_user, to_project, to_circle"
)

// SendNotification delivers a notification: admins to anyone; a project's
// owner to its members; a circle's owner to its members (the rule decides:
// a request that names no project or circle needs an admin).
func (s *Social) SendNotification(ctx context.Context, p *auth.Principal, to Target, text string, urgent bool) (int, error) {
	if err := s.authorize(ctx, p, opNotificationsSend, policy.On("to_project", to.Project).And("to_circle", to.Circle)); err != nil {
		return 0, err
	}
	var vs domain.Violations
	set := 0
	for _, t := range []string{to.User, to.Project, to.Circle} {
		if t != "" {
			set++
		}
	}
	if set != 1 {
		vs.Add("to_user", "target.one", targetOne)
	}
	if text == "" {
		vs.Add("text", "text.required", "a notification needs text")
	} else if utf8.RuneCountInString(text) > maxNotificationText {
		vs.Add("text", "text.too_long", fmt.Sprintf("a notification is at most %d characters", maxNotificationText))
	}
	if err := vs.Err(); err != nil {
		return 0, err
	}
	var recipients []string
	var object string
	switch {
	case to.User != "":
		object = "user:" + to.User
		recipients = []string{to.User}
	case to.Project != "":
		object = domain.ProjectObject(to.Project)
		ms, err := s.engine.ProjectMembers(ctx, to.Project, true)
		if err != nil {
			return 0, err
		}
		for _, m := range ms {
			recipients = append(recipients, m.UID)
		}
	default:
		object = domain.CircleObject(to.Circle)
		ms, err := s.engine.CircleMembers(ctx, to.Circle)
		if err != nil {
			return 0, err
		}
		for _, m := range ms {
			recipients = append(recipients, m.UID)
		}
	}
	err := s.update(ctx, &record{op: opNotificationsSend.Name, actor: p, object: object, detail: fmt.Sprintf("recipients=%d urgent=%t", len(recipients), urgent)}, func(tx store.Tx) error {
		for _, r := range recipients {
			if err := s.notify(ctx, tx, &domain.Notification{Recipient: r, Sender: p.UID, Text: text, Urgent: urgent}); err != nil {
				return err
			}
		}
		return nil
	})
	return len(recipients), err
}

// watchers wakes the Watch streams of a user when the change feed says a
// notification for it was written, on whichever replica.
type watchers struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]bool
}

func newWatchers() *watchers { return &watchers{m: map[string]map[chan struct{}]bool{}} }

func (w *watchers) add(uid string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[uid] == nil {
		w.m[uid] = map[chan struct{}]bool{}
	}
	w.m[uid][ch] = true
	return ch
}

func (w *watchers) remove(uid string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m[uid], ch)
	if len(w.m[uid]) == 0 {
		delete(w.m, uid)
	}
}

func (w *watchers) wake(uid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[uid] {
		select {
		case ch <- struct{}{}:
		default: // already due to wake
		}
	}
}

// WatchNotifications calls ready once the watch is established, then send
// with each notification for p that arrives from then on, until ctx ends or
// a call fails.
func (s *Social) WatchNotifications(ctx context.Context, p *auth.Principal, ready func() error, send func(*domain.Notification) error) error {
	if err := s.authorize(ctx, p, opNotificationsWatch, policy.None); err != nil {
		return err
	}
	wake := s.watchers.add(p.UID)
	defer s.watchers.remove(p.UID, wake)
	// Start after the newest notification there is now.
	var last int64
	err := s.view(ctx, func(tx store.Tx) error {
		ns, err := tx.Notifications().List(ctx, p.UID, store.NotificationFilter{Limit: 1})
		if len(ns) > 0 {
			last = ns[0].ID
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := ready(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
		var ns []*domain.Notification
		if err := s.view(ctx, func(tx store.Tx) error {
			var err error
			ns, err = tx.Notifications().List(ctx, p.UID, store.NotificationFilter{AfterID: last, Limit: 100})
			return err
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, n := range ns {
			if err := send(n); err != nil {
				return err
			}
			last = n.ID
		}
		if len(ns) == 100 {
			// More than a page arrived: look again without waiting.
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}
