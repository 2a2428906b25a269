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

func newNode(name string) *domain.Resource {
	return &domain.Resource{
		Name: name, Kind: domain.KindNode, Provider: "site1",
		Attributes: map[string]string{"cores": "8", "arch": "x86_64"},
		State:      domain.ResourceAvailable, CreatedAt: t0,
	}
}

// createNodes creates available nodes of site1.
func createNodes(t *testing.T, s store.Store, names ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, n := range names {
			if err := tx.Resources().Create(ctx, newNode(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// nodeNames returns n0 … n(count-1) with the prefix.
func nodeNames(prefix string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func resourceNames(rs []*domain.Resource) string {
	return fmtList(rs, func(r *domain.Resource) string { return r.Name })
}

// boundNames lists name=realization ("name" alone when it is free).
func boundNames(rs []*store.BoundResource) string {
	return fmtList(rs, func(r *store.BoundResource) string {
		if r.Realization == "" {
			return r.Name
		}
		return r.Name + "=" + r.Realization
	})
}

func tx2res(fn func(ctx context.Context, rs store.Resources) error) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Resources()) }
}

var resourceTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		node := newNode("n1")
		node.Attributes["note"] = `quotes " and \ and ünïcode`
		image := &domain.Resource{Name: "ubuntu-24.04", Kind: domain.KindImage, Provider: "site2",
			State: domain.ResourceMaintenance, CreatedAt: at(time.Second)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Resources().Create(ctx, node))
			return tx.Resources().Create(ctx, image)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, want := range []*domain.Resource{node, image} {
				got, err := tx.Resources().Get(ctx, want.Name)
				ok(t, err)
				if !reflect.DeepEqual(got.Resource, want) || got.Realization != "" {
					t.Errorf("Get(%s) = %+v (bound to %q), want %+v", want.Name, got.Resource, got.Realization, want)
				}
			}
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n3", "n1", "n2")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			rs := tx.Resources()
			img := newNode("img")
			img.Kind = domain.KindImage
			ok(t, rs.Create(ctx, img))
			other := newNode("m1")
			other.Provider = "site2"
			ok(t, rs.Create(ctx, other))
			ok(t, rs.SetState(ctx, "n2", domain.ResourceDown))
			return tx.Realizations().Create(ctx, newRealization("r1", "n3"))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				f    store.ResourceFilter
				want string
			}{
				{store.ResourceFilter{}, "[img m1 n1 n2 n3=r1]"},
				{store.ResourceFilter{Kind: domain.KindNode}, "[m1 n1 n2 n3=r1]"},
				{store.ResourceFilter{Provider: "site2"}, "[m1]"},
				{store.ResourceFilter{State: domain.ResourceDown}, "[n2]"},
				{store.ResourceFilter{Kind: domain.KindNode, State: domain.ResourceAvailable}, "[m1 n1 n3=r1]"},
				{store.ResourceFilter{Page: store.Page{After: "m1", Limit: 2}}, "[n1 n2]"},
				{store.ResourceFilter{Kind: domain.KindNode, Page: store.Page{After: "n2"}}, "[n3=r1]"},
			} {
				got, err := tx.Resources().List(ctx, c.f)
				ok(t, err)
				if names := boundNames(got); names != c.want {
					t.Errorf("List(%+v) = %s, want %s", c.f, names, c.want)
				}
			}
			got, err := tx.Resources().Get(ctx, "n2")
			ok(t, err)
			if got.State != domain.ResourceDown {
				t.Errorf("state after SetState = %s", got.State)
			}
			return nil
		})
	}},
	{"Available", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n4", "n3", "n2", "n1", "n0")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			img := newNode("img")
			img.Kind = domain.KindImage
			ok(t, tx.Resources().Create(ctx, img))
			ok(t, tx.Resources().SetState(ctx, "n4", domain.ResourceMaintenance))
			ok(t, tx.Realizations().Create(ctx, newRealization("live", "n1")))
			// An ended realization's bindings hold nothing.
			ok(t, tx.Realizations().Create(ctx, newRealization("gone", "n2")))
			return tx.Realizations().End(ctx, "gone", domain.RealizationReleased, at(time.Hour))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Resources().Available(ctx, domain.KindNode)
			ok(t, err)
			if names := resourceNames(got); names != "[n0 n2 n3]" {
				t.Errorf("Available(node) = %s", names)
			}
			if !reflect.DeepEqual(got[0], newNode("n0")) {
				t.Errorf("Available(node)[0] = %+v", got[0])
			}
			imgs, err := tx.Resources().Available(ctx, domain.KindImage)
			ok(t, err)
			if names := resourceNames(imgs); names != "[img]" {
				t.Errorf("Available(image) = %s", names)
			}
			nets, err := tx.Resources().Available(ctx, domain.KindNetwork)
			ok(t, err)
			if len(nets) != 0 {
				t.Errorf("Available(network) = %s", resourceNames(nets))
			}
			return nil
		})
	}},
	{"AvailableMany", func(t *testing.T, s store.Store) {
		// Enough rows that a query per resource would show; the timing is
		// the benchmark's (sqlstore BenchmarkAvailable10000).
		names := nodeNames("n", 2000)
		createNodes(t, s, names...)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().Create(ctx, newRealization("r1", names[:500]...))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Resources().Available(ctx, domain.KindNode)
			ok(t, err)
			if len(got) != 1500 {
				t.Errorf("Available = %d resources, want 1500", len(got))
			}
			return nil
		})
	}},
	{"Delete", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2", "n3")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, newRealization("r1", "n1")))
			ok(t, tx.Realizations().Create(ctx, newRealization("old", "n2", "n3")))
			ok(t, tx.Realizations().End(ctx, "old", domain.RealizationReleased, at(time.Hour)))
			return nil
		})
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Resources().Delete(ctx, "n1") })
		wantCode(t, err, domain.CodeFailedPrecondition, "resource n1 is bound to realization r1")
		// Free, though an ended realization had it: the record gives way.
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Resources().Delete(ctx, "n2") })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Resources().Get(ctx, "n2")
			wantCode(t, err, domain.CodeNotFound, `resource "n2" not found`)
			old, err := tx.Realizations().Get(ctx, "old")
			ok(t, err)
			if got := bindingList(old.Bindings); got != "[e2=n3]" {
				t.Errorf("the ended realization's bindings = %s", got)
			}
			r1, err := tx.Resources().Get(ctx, "n1")
			ok(t, err)
			if r1.Realization != "r1" {
				t.Errorf("n1 bound to %q after the refused delete", r1.Realization)
			}
			return nil
		})
		// Released, it may go.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().End(ctx, "r1", domain.RealizationReleased, at(time.Hour)))
			return tx.Resources().Delete(ctx, "n1")
		})
	}},
	{"Errors", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1")
		r := tx2res
		wantErrors(t, s, []errCase{
			{"CreateDuplicate", r(func(ctx context.Context, rs store.Resources) error {
				return rs.Create(ctx, newNode("n1"))
			}), domain.CodeAlreadyExists, []string{`resource "n1" already exists`}},
			{"Get", r(func(ctx context.Context, rs store.Resources) error {
				_, err := rs.Get(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`resource "nope" not found`}},
			{"SetState", r(func(ctx context.Context, rs store.Resources) error {
				return rs.SetState(ctx, "nope", domain.ResourceDown)
			}), domain.CodeNotFound, []string{`resource "nope" not found`}},
			{"Delete", r(func(ctx context.Context, rs store.Resources) error {
				return rs.Delete(ctx, "nope")
			}), domain.CodeNotFound, []string{`resource "nope" not found`}},
		})
	}},
}
