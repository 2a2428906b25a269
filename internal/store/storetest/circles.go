package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newCircle(id string) *domain.Circle {
	owner, name, _ := strings.Cut(id, ":")
	return &domain.Circle{ID: id, Owner: owner, Name: name, CreatedAt: t0}
}

func createCircles(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			if err := tx.Circles().Create(ctx, newCircle(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

func circleIDs(cs []*domain.Circle) string {
	return fmtList(cs, func(c *domain.Circle) string { return c.ID })
}

var circleTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		want := &domain.Circle{ID: "alice:friends", Owner: "alice", Name: "friends", CreatedAt: at(time.Minute)}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Circles().Create(ctx, want) })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Circles().Get(ctx, "alice:friends")
			ok(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get = %+v, want %+v", got, want)
			}
			return nil
		})
	}},
	{"Errors", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createCircles(t, s, "alice:friends")
		c := func(fn func(ctx context.Context, cs store.Circles) error) func(context.Context, store.Tx) error {
			return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Circles()) }
		}
		wantErrors(t, s, []errCase{
			{"CreateDuplicate", c(func(ctx context.Context, cs store.Circles) error {
				return cs.Create(ctx, newCircle("alice:friends"))
			}), domain.CodeAlreadyExists, []string{`circle "alice:friends" already exists`}},
			{"Get", c(func(ctx context.Context, cs store.Circles) error {
				_, err := cs.Get(ctx, "alice:nope")
				return err
			}), domain.CodeNotFound, []string{`circle "alice:nope" not found`}},
			{"SetOwner", c(func(ctx context.Context, cs store.Circles) error {
				return cs.SetOwner(ctx, "alice:nope", "bob")
			}), domain.CodeNotFound, []string{`circle "alice:nope" not found`}},
			{"Delete", c(func(ctx context.Context, cs store.Circles) error {
				return cs.Delete(ctx, "alice:nope")
			}), domain.CodeNotFound, []string{`circle "alice:nope" not found`}},
			{"SetMemberUnknownCircle", c(func(ctx context.Context, cs store.Circles) error {
				return cs.SetMember(ctx, member("alice:nope", "bob", rightsAdd, 0))
			}), domain.CodeNotFound, []string{`circle "alice:nope" not found`}},
			{"SetMemberUnknownUser", c(func(ctx context.Context, cs store.Circles) error {
				return cs.SetMember(ctx, member("alice:friends", "zed", rightsAdd, 0))
			}), domain.CodeNotFound, []string{`user "zed" not found`}},
			{"RemoveMemberNotMember", c(func(ctx context.Context, cs store.Circles) error {
				return cs.RemoveMember(ctx, "alice:friends", "bob")
			}), domain.CodeNotFound, []string{"bob is not a member of circle alice:friends"}},
			{"RemoveMemberUnknownCircle", c(func(ctx context.Context, cs store.Circles) error {
				return cs.RemoveMember(ctx, "alice:nope", "bob")
			}), domain.CodeNotFound, []string{`circle "alice:nope" not found`}},
			{"MemberNotMember", c(func(ctx context.Context, cs store.Circles) error {
				_, err := cs.Member(ctx, "alice:friends", "bob")
				return err
			}), domain.CodeNotFound, []string{"bob is not a member of circle alice:friends"}},
			{"MembersUnknownCircle", c(func(ctx context.Context, cs store.Circles) error {
				_, err := cs.Members(ctx, "alice:nope")
				return err
			}), domain.CodeNotFound, []string{`circle "alice:nope" not found`}},
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Circles().All(ctx)
			ok(t, err)
			ms, err := tx.Circles().AllMembers(ctx)
			ok(t, err)
			if circleIDs(all) != "[alice:friends]" || len(ms) != 0 {
				t.Errorf("after failed calls: circles %s, members %s", circleIDs(all), memberships(ms))
			}
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		createCircles(t, s, "bob:b", "alice:z", "lab:team", "alice:a", "alice:m")
		for _, c := range []struct {
			name string
			f    store.CircleFilter
			want string
		}{
			{"All", store.CircleFilter{}, "[alice:a alice:m alice:z bob:b lab:team]"},
			{"Owner", store.CircleFilter{Owner: "alice"}, "[alice:a alice:m alice:z]"},
			{"OwnerPage", store.CircleFilter{Owner: "alice", Page: store.Page{After: "alice:a", Limit: 1}}, "[alice:m]"},
			{"OwnerNone", store.CircleFilter{Owner: "carol"}, "[]"},
			{"IDsEmpty", store.CircleFilter{IDs: []string{}}, "[]"},
			{"IDs", store.CircleFilter{IDs: []string{"lab:team", "alice:a", "x:y"}}, "[alice:a lab:team]"},
			{"IDsOwner", store.CircleFilter{IDs: []string{"lab:team", "alice:a"}, Owner: "lab"}, "[lab:team]"},
			{"Page", store.CircleFilter{Page: store.Page{After: "alice:z", Limit: 2}}, "[bob:b lab:team]"},
		} {
			t.Run(c.name, func(t *testing.T) {
				view(t, s, func(ctx context.Context, tx store.Tx) error {
					cs, err := tx.Circles().List(ctx, c.f)
					ok(t, err)
					if got := circleIDs(cs); got != c.want {
						t.Errorf("List(%+v) = %s, want %s", c.f, got, c.want)
					}
					return nil
				})
			})
		}
	}},
	{"SetOwnerKeepsID", func(t *testing.T, s store.Store) {
		createCircles(t, s, "alice:friends")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Circles().SetOwner(ctx, "alice:friends", "bob")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			c, err := tx.Circles().Get(ctx, "alice:friends")
			ok(t, err)
			if c.Owner != "bob" || c.Name != "friends" {
				t.Errorf("after SetOwner: %+v", c)
			}
			cs, err := tx.Circles().List(ctx, store.CircleFilter{Owner: "bob"})
			ok(t, err)
			if got := circleIDs(cs); got != "[alice:friends]" {
				t.Errorf("List(owner bob) = %s", got)
			}
			return nil
		})
	}},
	{"Members", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob", "carol")
		createCircles(t, s, "alice:friends", "bob:team", "bob:empty")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			cs := tx.Circles()
			ok(t, cs.SetMember(ctx, member("alice:friends", "carol", 0, 1)))
			ok(t, cs.SetMember(ctx, member("alice:friends", "bob", rightsAdd, 2)))
			ok(t, cs.SetMember(ctx, member("bob:team", "bob", rightsManage, 3)))
			return cs.SetMember(ctx, member("alice:friends", "bob", rightsRealize, 9)) // keeps added_at
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			cs := tx.Circles()
			m, err := cs.Member(ctx, "alice:friends", "bob")
			ok(t, err)
			if want := member("alice:friends", "bob", rightsRealize, 2); !reflect.DeepEqual(m, want) {
				t.Errorf("Member = %+v, want %+v", m, want)
			}
			ms, err := cs.Members(ctx, "alice:friends")
			ok(t, err)
			if got := memberships(ms); got != "[alice:friends/bob=realize_experiment alice:friends/carol=none]" {
				t.Errorf("Members = %s", got)
			}
			ms, err = cs.Members(ctx, "bob:empty")
			ok(t, err)
			if len(ms) != 0 {
				t.Errorf("Members(bob:empty) = %s", memberships(ms))
			}
			ms, err = cs.MembershipsOf(ctx, "bob")
			ok(t, err)
			if got := memberships(ms); got != "[alice:friends/bob=realize_experiment bob:team/bob=add_user,remove_user]" {
				t.Errorf("MembershipsOf(bob) = %s", got)
			}
			ms, err = cs.AllMembers(ctx)
			ok(t, err)
			if got := memberships(ms); got != "[alice:friends/bob=realize_experiment alice:friends/carol=none bob:team/bob=add_user,remove_user]" {
				t.Errorf("AllMembers = %s", got)
			}
			all, err := cs.All(ctx)
			ok(t, err)
			if got := circleIDs(all); got != "[alice:friends bob:empty bob:team]" {
				t.Errorf("All = %s", got)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Circles().RemoveMember(ctx, "alice:friends", "bob"))
			_, err := tx.Circles().Member(ctx, "alice:friends", "bob")
			wantCode(t, err, domain.CodeNotFound, "bob is not a member of circle alice:friends")
			return nil
		})
	}},
	{"DeleteCascades", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createCircles(t, s, "alice:a", "alice:b", "lab:c", "alice:d")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, id := range []string{"alice:a", "alice:b", "lab:c", "alice:d"} {
				ok(t, tx.Circles().SetMember(ctx, member(id, "bob", rightsAdd, 0)))
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			cs := tx.Circles()
			ok(t, cs.Delete(ctx, "alice:d"))
			// DeleteOwnedBy goes by the current owner, not the id.
			ok(t, cs.SetOwner(ctx, "lab:c", "alice"))
			ok(t, cs.SetOwner(ctx, "alice:b", "lab"))
			ids, err := cs.DeleteOwnedBy(ctx, "alice")
			ok(t, err)
			if want := []string{"alice:a", "lab:c"}; !reflect.DeepEqual(ids, want) {
				t.Errorf("DeleteOwnedBy(alice) = %v, want %v", ids, want)
			}
			ids, err = cs.DeleteOwnedBy(ctx, "alice")
			ok(t, err)
			if len(ids) != 0 {
				t.Errorf("DeleteOwnedBy(alice) again = %v", ids)
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Circles().All(ctx)
			ok(t, err)
			ms, err := tx.Circles().AllMembers(ctx)
			ok(t, err)
			if circleIDs(all) != "[alice:b]" || memberships(ms) != "[alice:b/bob=add_user]" {
				t.Errorf("left: circles %s, members %s", circleIDs(all), memberships(ms))
			}
			return nil
		})
	}},
	{"ConcurrentDeleteOwnedByAndSetMember", func(t *testing.T, s store.Store) {
		// A member added while the owner's circles go is deleted with them
		// or refused: no membership outlives its circle.
		createUsers(t, s, "alice", "bob")
		for round := range rounds {
			createCircles(t, s, "alice:c")
			errDel, errSet := concurrently(t, s,
				func(ctx context.Context, tx store.Tx) error {
					_, err := tx.Circles().DeleteOwnedBy(ctx, "alice")
					return err
				},
				func(ctx context.Context, tx store.Tx) error {
					return tx.Circles().SetMember(ctx, member("alice:c", "bob", rightsAdd, 0))
				})
			if errDel != nil {
				t.Fatalf("round %d: DeleteOwnedBy: %v", round, errDel)
			}
			if errSet != nil && domain.CodeOf(errSet) != domain.CodeNotFound {
				t.Fatalf("round %d: SetMember: %v", round, errSet)
			}
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ms, err := tx.Circles().AllMembers(ctx)
			ok(t, err)
			if len(ms) != 0 {
				t.Errorf("memberships outlived their circle: %s", memberships(ms))
			}
			return nil
		})
	}},
}
