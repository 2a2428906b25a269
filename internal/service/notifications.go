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
	pg, err := idPage(q.PageSize, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return nil, "", domain.Invalid("until", "until.before_since", "until must be later than since")
	}
	var ns []*domain.Notification
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		ns, next, err = readPage(pg, func(before int64, n int) ([]*domain.Notification, error) {
			f := q.NotificationFilter
			f.BeforeID, f.Limit, f.AfterID = before, n, 0
			return tx.Notifications().List(ctx, p.UID, f)
		}, func(n *domain.Notification) int64 { return n.ID }, nil)
		return err
	})
	if err != nil {
		return nil, "", err
	}
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

// WatchNotifications calls ready once the watch is established, with the id
// the stream starts after, then send with each notification for p newer
// than that, oldest first, until ctx ends or a call fails. With resumeAfter
// the stream starts after that id, so a client that lost its stream gets
// what it missed once; without it, after the newest notification there is.
func (s *Social) WatchNotifications(ctx context.Context, p *auth.Principal, resumeAfter *int64, ready func(afterID int64) error, send func(*domain.Notification) error) error {
	if err := s.authorize(ctx, p, opNotificationsWatch, policy.None); err != nil {
		return err
	}
	if resumeAfter != nil && *resumeAfter < 0 {
		return domain.Invalid("resume_after", "non_negative", "must be a notification id, 0 or more")
	}
	// Registered before the starting point is read, so nothing created in
	// between is missed.
	wake := s.watchers.add(p.UID)
	defer s.watchers.remove(p.UID, wake)
	var last int64
	if resumeAfter != nil {
		last = *resumeAfter
		select { // send the backlog at once
		case wake <- struct{}{}:
		default: // already woken
		}
	} else {
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
	}
	if err := ready(last); err != nil {
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
			ns, err = tx.Notifications().List(ctx, p.UID, store.NotificationFilter{AfterID: last, Forward: true, Limit: 100})
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
