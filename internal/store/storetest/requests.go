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

// newRequest makes a request created at t0 that expires ttl later.
func newRequest(id string, kind domain.RequestKind, object, subject, requester string, ttl time.Duration) *domain.PendingRequest {
	return &domain.PendingRequest{
		ID: id, Kind: kind, Object: object, Subject: subject, Requester: requester,
		Rights: rightsAdd, Message: "please, " + id, CreatedAt: t0, ExpiresAt: t0.Add(ttl),
	}
}

func requestIDs(rs []*domain.PendingRequest) string {
	return fmtList(rs, func(r *domain.PendingRequest) string { return r.ID })
}

func createRequests(t *testing.T, s store.Store, rs ...*domain.PendingRequest) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range rs {
			if err := tx.Requests().Create(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

var requestTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		want := newRequest("r1", domain.RequestProjectAdd, "project:lab", "bob", "alice", 48*hour)
		want.Rights = rightsManage | rightsRealize
		expired := newRequest("r2", domain.RequestCircleJoin, "circle:alice:friends", "bob", "bob", -hour)
		createRequests(t, s, want, expired)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			// Get does not hide expired requests: the caller says
			// "expired" rather than "not found".
			for _, w := range []*domain.PendingRequest{want, expired} {
				got, err := tx.Requests().Get(ctx, w.ID)
				ok(t, err)
				if !reflect.DeepEqual(got, w) {
					t.Errorf("Get(%s) = %+v, want %+v", w.ID, got, w)
				}
			}
			return nil
		})
	}},
	{"Errors", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createRequests(t, s, newRequest("r1", domain.RequestProjectAdd, "project:lab", "bob", "alice", hour))
		r := func(fn func(ctx context.Context, rs store.Requests) error) func(context.Context, store.Tx) error {
			return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Requests()) }
		}
		wantErrors(t, s, []errCase{
			{"CreateDuplicate", r(func(ctx context.Context, rs store.Requests) error {
				return rs.Create(ctx, newRequest("r1", domain.RequestProjectJoin, "project:x", "alice", "alice", hour))
			}), domain.CodeAlreadyExists, []string{`request "r1" already exists`}},
			{"CreateUnknownSubject", r(func(ctx context.Context, rs store.Requests) error {
				return rs.Create(ctx, newRequest("r2", domain.RequestProjectAdd, "project:lab", "zed", "alice", hour))
			}), domain.CodeNotFound, []string{`user "zed" not found`}},
			{"CreateUnknownRequester", r(func(ctx context.Context, rs store.Requests) error {
				return rs.Create(ctx, newRequest("r3", domain.RequestProjectAdd, "project:lab", "bob", "zed", hour))
			}), domain.CodeNotFound, []string{`user "zed" not found`}},
			{"Get", r(func(ctx context.Context, rs store.Requests) error {
				_, err := rs.Get(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`request "nope" not found`}},
			{"Delete", r(func(ctx context.Context, rs store.Requests) error {
				return rs.Delete(ctx, "nope")
			}), domain.CodeNotFound, []string{`request "nope" not found`}},
			{"FindOtherKind", r(func(ctx context.Context, rs store.Requests) error {
				_, err := rs.Find(ctx, domain.RequestProjectJoin, "project:lab", "bob", t0)
				return err
			}), domain.CodeNotFound, []string{"project_join", "bob", "project:lab"}},
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			rs, err := tx.Requests().ListByUser(ctx, "alice", t0)
			ok(t, err)
			if got := requestIDs(rs); got != "[r1]" {
				t.Errorf("after failed creates: ListByUser(alice) = %s", got)
			}
			return nil
		})
	}},
	{"Find", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob", "carol")
		createRequests(t, s,
			newRequest("live", domain.RequestProjectAdd, "project:lab", "bob", "alice", hour),
			newRequest("old", domain.RequestProjectAdd, "project:lab", "carol", "alice", hour),
		)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				kind            domain.RequestKind
				object, subject string
				now             time.Time
				want            string // "" for not found
			}{
				{domain.RequestProjectAdd, "project:lab", "bob", t0, "live"},
				{domain.RequestProjectAdd, "project:lab", "bob", at(hour - time.Microsecond), "live"},
				{domain.RequestProjectAdd, "project:lab", "bob", at(hour), ""}, // expires_at is not live
				{domain.RequestProjectAdd, "project:lab", "carol", t0, "old"},
				{domain.RequestProjectAdd, "project:lab", "alice", t0, ""},   // the requester is not the subject
				{domain.RequestProjectJoin, "project:lab", "bob", t0, ""},    // another kind
				{domain.RequestProjectAdd, "project:other", "bob", t0, ""},   // another object
				{domain.RequestCircleAdd, "circle:alice:lab", "bob", t0, ""}, // nothing at all
			} {
				r, err := tx.Requests().Find(ctx, c.kind, c.object, c.subject, c.now)
				switch {
				case c.want == "":
					if domain.CodeOf(err) != domain.CodeNotFound {
						t.Errorf("Find(%s, %s, %s, %v) = %+v, %v; want not found", c.kind, c.object, c.subject, c.now, r, err)
					}
				case err != nil || r.ID != c.want:
					t.Errorf("Find(%s, %s, %s, %v) = %+v, %v; want %s", c.kind, c.object, c.subject, c.now, r, err, c.want)
				}
			}
			return nil
		})
	}},
	{"Lists", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob", "carol")
		mk := func(id string, kind domain.RequestKind, object, subject, requester string, created, ttl time.Duration) *domain.PendingRequest {
			r := newRequest(id, kind, object, subject, requester, 0)
			r.CreatedAt, r.ExpiresAt = at(created), at(created+ttl)
			return r
		}
		createRequests(t, s,
			// Created out of id order: listings are oldest first.
			mk("r3", domain.RequestProjectAdd, "project:lab", "bob", "alice", 0, 2*hour),
			mk("r1", domain.RequestProjectJoin, "project:lab", "carol", "carol", time.Minute, 2*hour),
			mk("r2", domain.RequestCircleAdd, "circle:alice:friends", "bob", "alice", 2*time.Minute, 2*hour),
			mk("r4", domain.RequestProjectApproval, "project:new", "carol", "carol", 3*time.Minute, 2*hour),
			mk("gone", domain.RequestProjectJoin, "project:lab", "bob", "bob", 0, hour), // expired at now
		)
		now := at(hour)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			rs := tx.Requests()
			for _, c := range []struct {
				name string
				fn   func() ([]*domain.PendingRequest, error)
				want string
			}{
				{"ByObjects(lab)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByObjects(ctx, []string{"project:lab"}, now)
				}, "[r3 r1]"},
				{"ByObjects(lab,friends,none)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByObjects(ctx, []string{"circle:alice:friends", "project:none", "project:lab"}, now)
				}, "[r3 r1 r2]"},
				{"ByObjects(empty)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByObjects(ctx, []string{}, now)
				}, "[]"},
				{"ByObjects(nil)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByObjects(ctx, nil, now)
				}, "[]"},
				{"ByObjects(lab) before expiry", func() ([]*domain.PendingRequest, error) {
					return rs.ListByObjects(ctx, []string{"project:lab"}, t0)
				}, "[gone r3 r1]"},
				{"ByUser(bob)", func() ([]*domain.PendingRequest, error) { // subject
					return rs.ListByUser(ctx, "bob", now)
				}, "[r3 r2]"},
				{"ByUser(alice)", func() ([]*domain.PendingRequest, error) { // requester
					return rs.ListByUser(ctx, "alice", now)
				}, "[r3 r2]"},
				{"ByUser(carol)", func() ([]*domain.PendingRequest, error) { // both, listed once
					return rs.ListByUser(ctx, "carol", now)
				}, "[r1 r4]"},
				{"ByUser(ghost)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByUser(ctx, "ghost", now)
				}, "[]"},
				{"ByKind(approval)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByKind(ctx, domain.RequestProjectApproval, now)
				}, "[r4]"},
				{"ByKind(join)", func() ([]*domain.PendingRequest, error) {
					return rs.ListByKind(ctx, domain.RequestProjectJoin, now)
				}, "[r1]"},
				{"ByKind(join) later", func() ([]*domain.PendingRequest, error) {
					return rs.ListByKind(ctx, domain.RequestProjectJoin, at(2*hour+time.Minute))
				}, "[]"},
			} {
				got, err := c.fn()
				ok(t, err)
				if requestIDs(got) != c.want {
					t.Errorf("%s = %s, want %s", c.name, requestIDs(got), c.want)
				}
			}
			return nil
		})
	}},
	{"Deletes", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createRequests(t, s,
			newRequest("a1", domain.RequestProjectAdd, "project:lab", "bob", "alice", hour),
			newRequest("a2", domain.RequestProjectJoin, "project:lab", "alice", "alice", 3*hour),
			newRequest("b1", domain.RequestProjectAdd, "project:zoo", "bob", "alice", hour),
			newRequest("b2", domain.RequestProjectAdd, "project:zoo", "alice", "bob", 2*hour),
			newRequest("b3", domain.RequestProjectAdd, "project:zoo", "alice", "alice", 3*hour),
		)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			rs := tx.Requests()
			ok(t, rs.Delete(ctx, "b3"))
			wantCode(t, rs.Delete(ctx, "b3"), domain.CodeNotFound, `request "b3" not found`)
			ok(t, rs.DeleteByObject(ctx, "project:lab"))
			ok(t, rs.DeleteByObject(ctx, "project:lab")) // nothing left: no error
			// expires_at <= now is expired: b1 (at t0+1h) goes, b2 stays.
			n, err := rs.DeleteExpired(ctx, at(hour))
			ok(t, err)
			if n != 1 {
				t.Errorf("DeleteExpired = %d, want 1", n)
			}
			n, err = rs.DeleteExpired(ctx, at(hour))
			ok(t, err)
			if n != 0 {
				t.Errorf("DeleteExpired again = %d, want 0", n)
			}
			left, err := rs.ListByUser(ctx, "alice", time.Time{})
			ok(t, err)
			if got := requestIDs(left); got != "[b2]" {
				t.Errorf("left: %s, want [b2]", got)
			}
			return nil
		})
	}},
	{"ConcurrentDelete", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createRequests(t, s, newRequest("r1", domain.RequestProjectAdd, "project:lab", "bob", "alice", hour))
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Requests().Delete(ctx, "r1")
		})
		exactlyOne(t, errs, domain.CodeNotFound)
	}},
	{"ConcurrentFindThenCreate", func(t *testing.T, s store.Store) {
		// What the service does to refuse a second identical request:
		// Find, then Create, in one transaction. Run at once, exactly one
		// creates; the others see its request.
		createUsers(t, s, "alice", "bob")
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			_, err := tx.Requests().Find(ctx, domain.RequestProjectAdd, "project:lab", "bob", t0)
			switch {
			case err == nil:
				return domain.AlreadyExists("a request is pending")
			case domain.CodeOf(err) == domain.CodeNotFound:
				return tx.Requests().Create(ctx, newRequest(fmt.Sprintf("r%d", i), domain.RequestProjectAdd, "project:lab", "bob", "alice", hour))
			}
			return err
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			rs, err := tx.Requests().ListByObjects(ctx, []string{"project:lab"}, t0)
			ok(t, err)
			if len(rs) != 1 {
				t.Errorf("%d requests: %s", len(rs), requestIDs(rs))
			}
			return nil
		})
	}},
}
