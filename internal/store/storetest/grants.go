package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func grantList(gs []*domain.Grant) string {
	return fmtList(gs, func(g *domain.Grant) string { return g.Object + "/" + g.Circle + "=" + g.Rights.String() })
}

var (
	rightsRead      = domain.RightsOf(domain.Read)
	rightsReadWrite = domain.RightsOf(domain.Read, domain.Modify)
)

var grantTests = []test{
	{"SetListDelete", func(t *testing.T, s store.Store) {
		e1, e2 := domain.ExperimentObject("alice:e1"), domain.ExperimentObject("alice:e2")
		lib := domain.LibraryObject("alice:lib")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			gs := tx.Grants()
			for _, g := range []*domain.Grant{
				{Object: e1, Circle: "lab:lab", Rights: rightsRead},
				{Object: e1, Circle: "bob:bob", Rights: rightsRead},
				{Object: e2, Circle: "bob:bob", Rights: rightsReadWrite},
				{Object: lib, Circle: "bob:bob", Rights: domain.RightsOf(domain.Read, domain.AddExperiment)},
				// Replaces the grant rather than adding a second one.
				{Object: e1, Circle: "bob:bob", Rights: rightsReadWrite},
				{Object: e2, Circle: "carol:carol", Rights: rightsRead},
				// No rights deletes the grant, and is no error without one.
				{Object: e2, Circle: "carol:carol", Rights: 0},
				{Object: e2, Circle: "dave:dave", Rights: 0},
			} {
				ok(t, gs.Set(ctx, g))
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Grants().List(ctx, e1)
			ok(t, err)
			if g := grantList(got); g != "[experiment:alice:e1/bob:bob=read,modify experiment:alice:e1/lab:lab=read]" {
				t.Errorf("List(e1) = %s", g)
			}
			none, err := tx.Grants().List(ctx, domain.ExperimentObject("alice:none"))
			ok(t, err)
			if len(none) != 0 {
				t.Errorf("List(none) = %s", grantList(none))
			}
			all, err := tx.Grants().All(ctx)
			ok(t, err)
			if g := grantList(all); g != "[experiment:alice:e1/bob:bob=read,modify experiment:alice:e1/lab:lab=read "+
				"experiment:alice:e2/bob:bob=read,modify library:alice:lib/bob:bob=read,add_experiment]" {
				t.Errorf("All = %s", g)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Grants().DeleteObject(ctx, e1))
			ok(t, tx.Grants().DeleteObject(ctx, "experiment:none")) // nothing to delete: no error
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Grants().All(ctx)
			ok(t, err)
			if g := grantList(all); g != "[experiment:alice:e2/bob:bob=read,modify library:alice:lib/bob:bob=read,add_experiment]" {
				t.Errorf("All after DeleteObject = %s", g)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Grants().Set(ctx, &domain.Grant{Object: e1, Circle: "lab:lab", Rights: rightsRead}))
			objs, err := tx.Grants().DeleteCircle(ctx, "bob:bob", "nobody:none")
			ok(t, err)
			if want := []string{"experiment:alice:e2", "library:alice:lib"}; !slices.Equal(objs, want) {
				t.Errorf("DeleteCircle = %v, want %v", objs, want)
			}
			objs, err = tx.Grants().DeleteCircle(ctx, "nobody:none")
			ok(t, err)
			if len(objs) != 0 {
				t.Errorf("DeleteCircle of a circle with no grants = %v", objs)
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Grants().All(ctx)
			ok(t, err)
			if g := grantList(all); g != "[experiment:alice:e1/lab:lab=read]" {
				t.Errorf("All after DeleteCircle = %s", g)
			}
			return nil
		})
	}},
}
