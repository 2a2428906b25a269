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

var loginFailureTests = []test{
	{"RecordGetReset", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		const a, b = "192.0.2.1", "2001:db8::/64"
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			lf := tx.LoginFailures()
			n, last, err := lf.Get(ctx, "ghost", a)
			ok(t, err)
			if n != 0 || !last.IsZero() {
				t.Errorf("Get of an unknown uid = %d, %v", n, last)
			}
			// Counted for uids with and without an account alike, per
			// client.
			for i, c := range []struct {
				uid, client string
				want        int
			}{{"ghost", a, 1}, {"ghost", a, 2}, {"alice", a, 1}, {"ghost", b, 1}, {"ghost", a, 3}, {"ghost", "", 1}} {
				n, err := lf.Record(ctx, c.uid, c.client, at(time.Duration(i)*time.Minute))
				ok(t, err)
				if n != c.want {
					t.Errorf("Record #%d (%s from %q) = %d, want %d", i, c.uid, c.client, n, c.want)
				}
			}
			n, last, err = lf.Get(ctx, "ghost", a)
			ok(t, err)
			if n != 3 || !last.Equal(at(4*time.Minute)) {
				t.Errorf("Get(ghost, a) = %d, %v; want 3, %v", n, last, at(4*time.Minute))
			}
			ok(t, lf.Reset(ctx, "ghost", a))
			ok(t, lf.Reset(ctx, "ghost", a)) // resetting nothing is fine
			for _, c := range []struct {
				uid, client string
				want        int
			}{{"ghost", a, 0}, {"ghost", b, 1}, {"ghost", "", 1}, {"alice", a, 1}} {
				n, _, err = lf.Get(ctx, c.uid, c.client)
				ok(t, err)
				if n != c.want {
					t.Errorf("after Reset(ghost, a): Get(%s, %q) = %d, want %d", c.uid, c.client, n, c.want)
				}
			}
			ok(t, lf.ResetAll(ctx, "ghost"))
			for _, c := range []string{a, b, ""} {
				if n, _, err = lf.Get(ctx, "ghost", c); err != nil || n != 0 {
					t.Errorf("after ResetAll(ghost): Get(ghost, %q) = %d, %v", c, n, err)
				}
			}
			if n, _, err = lf.Get(ctx, "alice", a); err != nil || n != 1 {
				t.Errorf("after ResetAll(ghost): alice's count = %d, %v", n, err)
			}
			return nil
		})
	}},
	{"DeleteBefore", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			lf := tx.LoginFailures()
			for i, uid := range []string{"old", "mid", "new"} {
				_, err := lf.Record(ctx, uid, "192.0.2.1", at(time.Duration(i)*time.Hour))
				ok(t, err)
			}
			// A count is kept by its last failure, not its first.
			_, err := lf.Record(ctx, "old", "192.0.2.1", at(3*time.Hour))
			ok(t, err)
			n, err := lf.DeleteBefore(ctx, at(2*time.Hour))
			ok(t, err)
			if n != 1 {
				t.Errorf("DeleteBefore deleted %d, want 1 (mid)", n)
			}
			for uid, want := range map[string]int{"old": 2, "mid": 0, "new": 1} {
				if got, _, err := lf.Get(ctx, uid, "192.0.2.1"); err != nil || got != want {
					t.Errorf("after DeleteBefore: %s = %d, %v; want %d", uid, got, err, want)
				}
			}
			return nil
		})
	}},
}

func newKey(id string, created time.Time) *store.SigningKey {
	return &store.SigningKey{
		ID: id, Algorithm: "EdDSA", PublicKey: []byte("pub-" + id), PrivateKey: []byte("priv-" + id),
		CreatedAt: created, NotAfter: created.Add(24 * time.Hour),
	}
}

var signingKeyTests = []test{
	{"CreateListDelete", func(t *testing.T, s store.Store) {
		k1, k2, k3 := newKey("k1", t0), newKey("k2", at(hour)), newKey("k3", at(2*hour))
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, k := range []*store.SigningKey{k2, k1, k3} {
				ok(t, tx.SigningKeys().Create(ctx, k))
			}
			return nil
		})
		list := func() []*store.SigningKey {
			var ks []*store.SigningKey
			view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
				ks, err = tx.SigningKeys().List(ctx)
				return err
			})
			return ks
		}
		if got, want := list(), []*store.SigningKey{k3, k2, k1}; !reflect.DeepEqual(got, want) {
			t.Errorf("List = %+v, want newest first %+v", got, want)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			dup := newKey("k1", at(5*hour))
			dup.PrivateKey = []byte("secret-private")
			err := tx.SigningKeys().Create(ctx, dup)
			wantCode(t, err, domain.CodeAlreadyExists, `"k1"`)
			wantNoSecret(t, err, "secret-private")
			return tx.SigningKeys().Delete(ctx, "k2")
		})
		if got, want := list(), []*store.SigningKey{k3, k1}; !reflect.DeepEqual(got, want) {
			t.Errorf("after Delete: %+v, want %+v", got, want)
		}
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SigningKeys().Delete(ctx, "k2")
		})
		wantCode(t, err, domain.CodeNotFound, `"k2"`)
	}},
}

var auditTests = []test{
	{"AppendListFilters", func(t *testing.T, s store.Store) {
		events := []*domain.AuditEvent{
			{Time: at(0), Actor: "alice", Operation: "Users/Register", Object: "user:alice", Outcome: domain.OutcomeOK, RequestID: "r1"},
			{Time: at(1 * time.Minute), Actor: "bob", Operation: "Users/GetUser", Object: "user:alice", Outcome: "permission_denied", RequestID: "r2"},
			{Time: at(2 * time.Minute), Actor: "alice", OnBehalfOf: "svc", Operation: "Users/GetUser", Object: "user:bob", Outcome: domain.OutcomeOK, Detail: "d"},
			{Time: at(3 * time.Minute), Actor: "", Operation: "Auth/Login", Object: "user:carol", Outcome: "unauthenticated"},
			{Time: at(4 * time.Minute), Actor: "alice", Operation: "Users/GetUser", Object: "user:alice", Outcome: domain.OutcomeOK},
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i, e := range events {
				ok(t, tx.Audit().Append(ctx, e))
				if e.ID <= 0 || (i > 0 && e.ID <= events[i-1].ID) {
					t.Errorf("event %d got id %d after %d", i, e.ID, events[max(i-1, 0)].ID)
				}
			}
			return nil
		})
		// want lists indexes into events, newest first.
		want := func(idx ...int) string {
			var es []*domain.AuditEvent
			for _, i := range idx {
				es = append(es, events[i])
			}
			return auditIDs(es)
		}
		cases := []struct {
			f    store.AuditFilter
			want string
		}{
			{store.AuditFilter{}, want(4, 3, 2, 1, 0)},
			{store.AuditFilter{Actor: "alice"}, want(4, 2, 0)},
			{store.AuditFilter{Object: "user:alice"}, want(4, 1, 0)},
			{store.AuditFilter{Operation: "Users/GetUser"}, want(4, 2, 1)},
			{store.AuditFilter{Actor: "alice", Operation: "Users/GetUser"}, want(4, 2)},
			{store.AuditFilter{Since: at(2 * time.Minute)}, want(4, 3, 2)},
			{store.AuditFilter{Until: at(2 * time.Minute)}, want(1, 0)},
			{store.AuditFilter{Since: at(time.Minute), Until: at(3 * time.Minute)}, want(2, 1)},
			{store.AuditFilter{Limit: 2}, want(4, 3)},
			{store.AuditFilter{BeforeID: events[3].ID, Limit: 2}, want(2, 1)},
			{store.AuditFilter{BeforeID: events[1].ID, Limit: 2}, want(0)},
			{store.AuditFilter{Actor: "alice", BeforeID: events[4].ID}, want(2, 0)},
			{store.AuditFilter{Actor: "nobody"}, want()},
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range cases {
				got, err := tx.Audit().List(ctx, c.f)
				ok(t, err)
				if auditIDs(got) != c.want {
					t.Errorf("List(%+v) = %s, want %s", c.f, auditIDs(got), c.want)
				}
			}
			got, err := tx.Audit().List(ctx, store.AuditFilter{Limit: 1, BeforeID: events[3].ID})
			ok(t, err)
			if len(got) != 1 || !reflect.DeepEqual(got[0], events[2]) {
				t.Errorf("event round trip: %+v, want %+v", got, events[2])
			}
			return nil
		})
	}},
	{"Limits", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i := range 1005 {
				ok(t, tx.Audit().Append(ctx, &domain.AuditEvent{Time: t0, Actor: "a", Operation: fmt.Sprint(i)}))
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for limit, want := range map[int]int{0: 100, 7: 7, 1000: 1000, 5000: 1000} {
				got, err := tx.Audit().List(ctx, store.AuditFilter{Limit: limit})
				ok(t, err)
				if len(got) != want {
					t.Errorf("List with Limit %d: %d events, want %d", limit, len(got), want)
				}
			}
			return nil
		})
	}},
}

var outboxTests = []test{
	{"AppendListPendingMark", func(t *testing.T, s store.Store) {
		m1 := &domain.Mail{CreatedAt: t0, To: "a@example.org", Subject: "s1", Body: "b1"}
		m2 := &domain.Mail{CreatedAt: at(time.Minute), To: "b@example.org", Subject: "s2", Body: "b2"}
		m3 := &domain.Mail{CreatedAt: at(2 * time.Minute), To: "a@example.org", Subject: "s3", Body: "b3"}
		m4 := &domain.Mail{CreatedAt: at(3 * time.Minute), To: "a@example.org", Subject: "s1", Body: "b4"}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, m := range []*domain.Mail{m1, m2, m3, m4} {
				ok(t, tx.Outbox().Append(ctx, m))
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				f    store.OutboxFilter
				want []*domain.Mail
			}{
				{store.OutboxFilter{}, []*domain.Mail{m4, m3, m2, m1}},
				{store.OutboxFilter{To: "a@example.org"}, []*domain.Mail{m4, m3, m1}},
				{store.OutboxFilter{BeforeID: m3.ID, Limit: 1}, []*domain.Mail{m2}},
				{store.OutboxFilter{To: "a@example.org", BeforeID: m3.ID}, []*domain.Mail{m1}},
				{store.OutboxFilter{To: "a@example.org", Subject: "s1"}, []*domain.Mail{m4, m1}},
				{store.OutboxFilter{Subject: "s1", Since: at(time.Minute)}, []*domain.Mail{m4}},
				{store.OutboxFilter{Since: at(2 * time.Minute)}, []*domain.Mail{m4, m3}},
			} {
				got, err := tx.Outbox().List(ctx, c.f)
				ok(t, err)
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("List(%+v) = %s, want %s", c.f, mailIDs(got), mailIDs(c.want))
				}
			}
			got, err := tx.Outbox().Pending(ctx, 0)
			ok(t, err)
			if want := []*domain.Mail{m1, m2, m3, m4}; !reflect.DeepEqual(got, want) {
				t.Errorf("Pending = %s, want oldest first %s", mailIDs(got), mailIDs(want))
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Outbox().MarkFailed(ctx, m1.ID, "smtp: connection refused"))
			ok(t, tx.Outbox().MarkFailed(ctx, m2.ID, "smtp: connection refused"))
			ok(t, tx.Outbox().MarkSent(ctx, m2.ID, at(time.Hour), true))
			wantCode(t, tx.Outbox().MarkSent(ctx, 999999, t0, false), domain.CodeNotFound)
			wantCode(t, tx.Outbox().MarkFailed(ctx, 999999, "x"), domain.CodeNotFound)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Outbox().Pending(ctx, 1)
			ok(t, err)
			if len(got) != 1 || got[0].ID != m1.ID || got[0].Attempts != 1 || got[0].LastError != "smtp: connection refused" {
				t.Errorf("Pending(1) = %+v, want m1 with one failed attempt", got)
			}
			all, err := tx.Outbox().List(ctx, store.OutboxFilter{To: "b@example.org"})
			ok(t, err)
			if len(all) != 1 || !all[0].SentAt.Equal(at(time.Hour)) || all[0].Attempts != 2 {
				t.Errorf("sent mail = %+v, want sent at %v after 2 attempts", all, at(time.Hour))
			}
			return nil
		})
	}},
}

// outboxSecretTests: a mailed token is kept (sealed) only until delivery,
// and the body only as long as the caller's retention says.
var outboxSecretTests = []test{
	{"SecretUntilDelivery", func(t *testing.T, s store.Store) {
		body := "Your token is " + domain.MailSecret
		dropped := &domain.Mail{CreatedAt: t0, To: "a@example.org", Subject: "reset", Body: body, SealedSecret: []byte("sealed-1")}
		kept := &domain.Mail{CreatedAt: t0, To: "b@example.org", Subject: "confirm", Body: body, SealedSecret: []byte("sealed-2")}
		plain := &domain.Mail{CreatedAt: t0, To: "c@example.org", Subject: "hello", Body: "no secret here"}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, m := range []*domain.Mail{dropped, kept, plain} {
				ok(t, tx.Outbox().Append(ctx, m))
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Outbox().Pending(ctx, 0)
			ok(t, err)
			if want := []*domain.Mail{dropped, kept, plain}; !reflect.DeepEqual(got, want) {
				t.Errorf("Pending = %+v, want %+v (sealed secrets round-trip)", got, want)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Outbox().MarkSent(ctx, dropped.ID, at(time.Minute), false))
			ok(t, tx.Outbox().MarkSent(ctx, kept.ID, at(time.Minute), true))
			return nil
		})
		byID := func(ctx context.Context, tx store.Tx) map[int64]*domain.Mail {
			all, err := tx.Outbox().List(ctx, store.OutboxFilter{})
			ok(t, err)
			m := map[int64]*domain.Mail{}
			for _, x := range all {
				m[x.ID] = x
			}
			return m
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			m := byID(ctx, tx)
			if got := m[dropped.ID]; got.Body != "" || got.SealedSecret != nil || got.Subject != "reset" || !got.SentAt.Equal(at(time.Minute)) {
				t.Errorf("sent without keeping the body: %+v, want the record with neither body nor secret", got)
			}
			if got := m[kept.ID]; got.Body != body || got.SealedSecret != nil {
				t.Errorf("sent keeping the body: %+v, want the body and no secret", got)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Outbox().DropBodies(ctx, at(time.Minute))
			ok(t, err)
			if n != 0 {
				t.Errorf("DropBodies(before the delivery) = %d, want 0", n)
			}
			n, err = tx.Outbox().DropBodies(ctx, at(time.Hour))
			ok(t, err)
			if n != 1 {
				t.Errorf("DropBodies(after the delivery) = %d, want 1 (the kept body; pending mail untouched)", n)
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			m := byID(ctx, tx)
			if got := m[kept.ID]; got.Body != "" || !got.SentAt.Equal(at(time.Minute)) {
				t.Errorf("after DropBodies: %+v, want the record without its body", got)
			}
			if got := m[plain.ID]; got.Body != "no secret here" {
				t.Errorf("pending mail after DropBodies: %+v, want it untouched", got)
			}
			return nil
		})
	}},
}

var changeTests = []test{
	{"AppendSinceLatest", func(t *testing.T, s store.Store) {
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Changes().Latest(ctx)
			ok(t, err)
			cs, err := tx.Changes().Since(ctx, 0, 0)
			ok(t, err)
			if n != 0 || len(cs) != 0 {
				t.Errorf("empty store: Latest %d, Since %v", n, cs)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Changes().Append(ctx, store.ChangeUser, "alice"))
			ok(t, tx.Changes().Append(ctx, store.ChangeSession, "s1"))
			return tx.Changes().Append(ctx, store.ChangeUser, "bob")
		})
		// A rolled-back append leaves no gap.
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Changes().Append(ctx, store.ChangeUser, "ghost"))
			return errSentinel
		})
		if err != errSentinel {
			t.Fatal(err)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Changes().Append(ctx, store.ChangeUser, "carol")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			n, err := tx.Changes().Latest(ctx)
			ok(t, err)
			if n != 4 {
				t.Errorf("Latest = %d, want 4", n)
			}
			all, err := tx.Changes().Since(ctx, 0, 0)
			ok(t, err)
			got := fmtList(all, func(c store.Change) string { return fmt.Sprintf("%d:%s:%s", c.Seq, c.Kind, c.Key) })
			if want := "[1:user:alice 2:session:s1 3:user:bob 4:user:carol]"; got != want {
				t.Errorf("Since(0) = %s, want %s", got, want)
			}
			for _, c := range all {
				if c.At.IsZero() {
					t.Errorf("change %d has no time", c.Seq)
				}
			}
			page, err := tx.Changes().Since(ctx, 1, 2)
			ok(t, err)
			if len(page) != 2 || page[0].Seq != 2 || page[1].Seq != 3 {
				t.Errorf("Since(1, 2) = %v", page)
			}
			return nil
		})
	}},
}
