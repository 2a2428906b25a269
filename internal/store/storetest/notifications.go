package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func texts(ns []*domain.Notification) string {
	return fmtList(ns, func(n *domain.Notification) string { return n.Text })
}

func listNotifications(t *testing.T, s store.Store, uid string, f store.NotificationFilter) []*domain.Notification {
	t.Helper()
	var ns []*domain.Notification
	view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		ns, err = tx.Notifications().List(ctx, uid, f)
		return err
	})
	return ns
}

// seedNotifications gives alice n1…n6 (n1 oldest, one minute apart) and bob
// one in between; it returns them by text.
//
//	n1 read, n2 urgent, n3 plain, n4 urgent+read, n5 plain, n6 urgent
func seedNotifications(t *testing.T, s store.Store) map[string]*domain.Notification {
	t.Helper()
	createUsers(t, s, "alice", "bob")
	byText := map[string]*domain.Notification{}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, flags := range []struct{ urgent, read bool }{
			{false, true}, {true, false}, {false, false}, {true, true}, {false, false}, {true, false},
		} {
			n := &domain.Notification{
				Recipient: "alice", Sender: "bob", Text: fmt.Sprintf("n%d", i+1),
				Urgent: flags.urgent, Read: flags.read, CreatedAt: at(time.Duration(i) * time.Minute),
			}
			ok(t, tx.Notifications().Create(ctx, n))
			byText[n.Text] = n
			if i == 2 {
				b := &domain.Notification{Recipient: "bob", Text: "b1", CreatedAt: n.CreatedAt}
				ok(t, tx.Notifications().Create(ctx, b))
				byText[b.Text] = b
			}
		}
		return nil
	})
	return byText
}

var notificationTests = []test{
	{"CreateList", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		want := []*domain.Notification{
			{Recipient: "alice", Text: "from Trellis", CreatedAt: t0},
			{Recipient: "alice", Sender: "bob", Text: "join lab?", Urgent: true, CreatedAt: at(time.Second), RequestID: "r1"},
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, n := range want {
				ok(t, tx.Notifications().Create(ctx, n))
			}
			return nil
		})
		if want[0].ID <= 0 || want[1].ID <= want[0].ID {
			t.Fatalf("ids %d, %d: want positive and increasing", want[0].ID, want[1].ID)
		}
		got := listNotifications(t, s, "alice", store.NotificationFilter{})
		if !reflect.DeepEqual(got, []*domain.Notification{want[1], want[0]}) {
			t.Errorf("List = %+v, want newest first %+v", got, want)
		}
	}},
	{"CreateUnknownRecipient", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n := &domain.Notification{Recipient: "zed", Text: "hi", CreatedAt: t0}
			wantCode(t, tx.Notifications().Create(ctx, n), domain.CodeNotFound, `user "zed" not found`)
			if n.ID != 0 {
				t.Errorf("a failed Create set ID %d", n.ID)
			}
			// The transaction goes on.
			return tx.Notifications().Create(ctx, &domain.Notification{Recipient: "alice", Text: "hi", CreatedAt: t0})
		})
		if got := texts(listNotifications(t, s, "alice", store.NotificationFilter{})); got != "[hi]" {
			t.Errorf("List = %s", got)
		}
	}},
	{"ListFilters", func(t *testing.T, s store.Store) {
		ns := seedNotifications(t, s)
		id := func(text string) int64 { return ns[text].ID }
		for _, c := range []struct {
			name string
			uid  string
			f    store.NotificationFilter
			want string
		}{
			{"NewestFirst", "alice", store.NotificationFilter{}, "[n6 n5 n4 n3 n2 n1]"},
			{"Limit", "alice", store.NotificationFilter{Limit: 2}, "[n6 n5]"},
			{"BeforeID", "alice", store.NotificationFilter{BeforeID: id("n5"), Limit: 2}, "[n4 n3]"},
			{"BeforeFirst", "alice", store.NotificationFilter{BeforeID: id("n1")}, "[]"},
			{"AfterIDOldestFirst", "alice", store.NotificationFilter{AfterID: id("n3")}, "[n4 n5 n6]"},
			{"AfterIDLimit", "alice", store.NotificationFilter{AfterID: id("n1"), Limit: 2}, "[n2 n3]"},
			{"AfterLast", "alice", store.NotificationFilter{AfterID: id("n6")}, "[]"},
			{"ForwardFromStart", "alice", store.NotificationFilter{Forward: true, Limit: 2}, "[n1 n2]"},
			{"AfterAndBefore", "alice", store.NotificationFilter{AfterID: id("n2"), BeforeID: id("n5")}, "[n3 n4]"},
			{"UnreadOnly", "alice", store.NotificationFilter{UnreadOnly: true}, "[n6 n5 n3 n2]"},
			{"UrgentOnly", "alice", store.NotificationFilter{UrgentOnly: true}, "[n6 n4 n2]"},
			{"UnreadUrgent", "alice", store.NotificationFilter{UnreadOnly: true, UrgentOnly: true}, "[n6 n2]"},
			{"Since", "alice", store.NotificationFilter{Since: at(3 * time.Minute)}, "[n6 n5 n4]"},
			{"Until", "alice", store.NotificationFilter{Until: at(3 * time.Minute)}, "[n3 n2 n1]"},
			{"SinceUntil", "alice", store.NotificationFilter{Since: at(time.Minute), Until: at(4 * time.Minute)}, "[n4 n3 n2]"},
			{"UntilBeforeSince", "alice", store.NotificationFilter{Since: at(4 * time.Minute), Until: at(time.Minute)}, "[]"},
			{"SinceUnreadAfter", "alice", store.NotificationFilter{Since: at(time.Minute), UnreadOnly: true, AfterID: id("n2")}, "[n3 n5 n6]"},
			{"OtherRecipient", "bob", store.NotificationFilter{}, "[b1]"},
			{"NoRecipient", "ghost", store.NotificationFilter{}, "[]"},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got := texts(listNotifications(t, s, c.uid, c.f)); got != c.want {
					t.Errorf("List(%s, %+v) = %s, want %s", c.uid, c.f, got, c.want)
				}
			})
		}
	}},
	{"Mark", func(t *testing.T, s store.Store) {
		ns := seedNotifications(t, s)
		ids := func(texts ...string) []int64 {
			var out []int64
			for _, x := range texts {
				out = append(out, ns[x].ID)
			}
			return out
		}
		yes, no := true, false
		for _, c := range []struct {
			name         string
			ids          []int64
			read, urgent *bool
			want         int
			unread       string // alice's unread afterwards
			urgents      string // alice's urgent afterwards
		}{
			// n1 is read already: it does not count.
			{"Read", ids("n1", "n2", "n3"), &yes, nil, 2, "[n6 n5]", "[n6 n4 n2]"},
			{"ReadAgain", ids("n1", "n2", "n3"), &yes, nil, 0, "[n6 n5]", "[n6 n4 n2]"},
			// bob's notification and an unknown id are not alice's.
			{"OthersIgnored", append(ids("b1", "n5"), 1<<40), &yes, nil, 1, "[n6]", "[n6 n4 n2]"},
			{"Urgent", ids("n1", "n2", "n6"), nil, &no, 2, "[n6]", "[n4]"},
			// Both flags: a row counts once, if either flag changes.
			{"Both", ids("n4", "n5", "n6"), &no, &yes, 3, "[n6 n5 n4]", "[n6 n5 n4]"},
			{"BothNoChange", ids("n4", "n5"), &no, &yes, 0, "[n6 n5 n4]", "[n6 n5 n4]"},
			{"NoFlags", ids("n1", "n2"), nil, nil, 0, "[n6 n5 n4]", "[n6 n5 n4]"},
			{"NoIDs", nil, &yes, &yes, 0, "[n6 n5 n4]", "[n6 n5 n4]"},
		} {
			t.Run(c.name, func(t *testing.T) {
				update(t, s, func(ctx context.Context, tx store.Tx) error {
					n, err := tx.Notifications().Mark(ctx, "alice", c.ids, c.read, c.urgent)
					ok(t, err)
					if n != c.want {
						t.Errorf("Mark = %d, want %d", n, c.want)
					}
					return nil
				})
				if got := texts(listNotifications(t, s, "alice", store.NotificationFilter{UnreadOnly: true})); got != c.unread {
					t.Errorf("unread: %s, want %s", got, c.unread)
				}
				if got := texts(listNotifications(t, s, "alice", store.NotificationFilter{UrgentOnly: true})); got != c.urgents {
					t.Errorf("urgent: %s, want %s", got, c.urgents)
				}
			})
		}
		if b := listNotifications(t, s, "bob", store.NotificationFilter{}); len(b) != 1 || b[0].Read || b[0].Urgent {
			t.Errorf("alice's Mark changed bob's notification: %+v", b)
		}
	}},
	{"ConcurrentCreate", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		ids := make([]int64, workers)
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			n := &domain.Notification{Recipient: "alice", Text: fmt.Sprint(i), CreatedAt: t0}
			err := tx.Notifications().Create(ctx, n)
			ids[i] = n.ID
			return err
		})
		seen := map[int64]bool{}
		for i, err := range errs {
			ok(t, err)
			seen[ids[i]] = true
		}
		got := listNotifications(t, s, "alice", store.NotificationFilter{})
		if len(seen) != workers || len(got) != workers {
			t.Errorf("%d distinct ids, %d listed; want %d", len(seen), len(got), workers)
		}
		for _, n := range got {
			if !seen[n.ID] {
				t.Errorf("listed id %d was not returned by Create", n.ID)
			}
		}
	}},
	{"ConcurrentMarkCountsOnce", func(t *testing.T, s store.Store) {
		// Several sessions mark one notification read at once: one of them
		// changed it, the others changed nothing.
		createUsers(t, s, "alice")
		n := &domain.Notification{Recipient: "alice", Text: "hi", CreatedAt: t0}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Notifications().Create(ctx, n) })
		counts := make([]int, workers)
		yes := true
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) (err error) {
			counts[i], err = tx.Notifications().Mark(ctx, "alice", []int64{n.ID}, &yes, nil)
			return err
		})
		total := 0
		for i, err := range errs {
			ok(t, err)
			total += counts[i]
		}
		if total != 1 {
			t.Errorf("Mark counts %v add up to %d, want 1", counts, total)
		}
	}},
}
