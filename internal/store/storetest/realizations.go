package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// newRealization binds elements e1, e2, … to the resources, in order.
func newRealization(id string, resources ...string) *domain.Realization {
	r := &domain.Realization{
		ID: id, Experiment: "alice:e1", Project: "lab", Owner: "alice",
		State: domain.RealizationAllocated, LeaseExpires: at(24 * time.Hour), CreatedAt: t0,
	}
	for i, res := range resources {
		r.Bindings = append(r.Bindings, domain.Binding{Element: fmt.Sprintf("e%d", i+1), Resource: res})
	}
	return r
}

func bindingList(bs []domain.Binding) string {
	return fmtList(bs, func(b domain.Binding) string { return b.Element + "=" + b.Resource })
}

func realizationIDs(rs []*domain.Realization) string {
	return fmtList(rs, func(r *domain.Realization) string { return r.ID })
}

// sortedBindings orders bindings by element, as the store returns them.
func sortedBindings(bs []domain.Binding) []domain.Binding {
	out := slices.Clone(bs)
	slices.SortFunc(out, func(a, b domain.Binding) int {
		if a.Element < b.Element {
			return -1
		}
		if a.Element > b.Element {
			return 1
		}
		return 0
	})
	return out
}

// holderOf returns the live realization that holds the resource ("" none).
func holderOf(t *testing.T, ctx context.Context, tx store.Tx, name string) string {
	t.Helper()
	r, err := tx.Resources().Get(ctx, name)
	ok(t, err)
	return r.Realization
}

func tx2rlz(fn func(ctx context.Context, rs store.Realizations) error) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Realizations()) }
}

// raceN runs fn(i) for i in [0, n) in n Updates at once.
func raceN(t *testing.T, s store.Store, n int, fn func(ctx context.Context, tx store.Tx, i int) error) []error {
	t.Helper()
	ctx := ctxFor(t)
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			errs[i] = s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx, i) })
		})
	}
	start.Done()
	done.Wait()
	return errs
}

var realizationTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2", "n3")
		r := newRealization("r1")
		r.Bindings = []domain.Binding{{Element: "router", Resource: "n2"}, {Element: "client", Resource: "n3"}, {Element: "server", Resource: "n1"}}
		empty := newRealization("r0")
		empty.State, empty.LeaseExpires = domain.RealizationPending, time.Time{}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, r))
			return tx.Realizations().Create(ctx, empty)
		})
		want := *r
		want.Bindings = sortedBindings(r.Bindings)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Realizations().Get(ctx, "r1")
			ok(t, err)
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("Get = %+v, want %+v", got, &want)
			}
			got, err = tx.Realizations().Get(ctx, "r0")
			ok(t, err)
			if !reflect.DeepEqual(got, empty) {
				t.Errorf("Get(empty) = %+v, want %+v", got, empty)
			}
			for _, n := range []string{"n1", "n2", "n3"} {
				if h := holderOf(t, ctx, tx, n); h != "r1" {
					t.Errorf("%s is bound to %q, want r1", n, h)
				}
			}
			return nil
		})
	}},
	{"CreateMany", func(t *testing.T, s store.Store) {
		// More bindings than one INSERT carries, and a partial last batch.
		names := nodeNames("n", 1401)
		createNodes(t, s, names...)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, newRealization("big", names[:1000]...)))
			return tx.Realizations().Create(ctx, newRealization("odd", names[1000:]...))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for id, want := range map[string][]string{"big": names[:1000], "odd": names[1000:]} {
				r, err := tx.Realizations().Get(ctx, id)
				ok(t, err)
				if got, want := r.Bindings, sortedBindings(newRealization(id, want...).Bindings); !reflect.DeepEqual(got, want) {
					t.Errorf("%s has %d bindings, want %d (first differences hidden)", id, len(got), len(want))
				}
			}
			free, err := tx.Resources().Available(ctx, domain.KindNode)
			ok(t, err)
			if len(free) != 0 {
				t.Errorf("%d resources still available", len(free))
			}
			return nil
		})
	}},
	{"CreateTaken", func(t *testing.T, s store.Store) {
		names := nodeNames("n", 1000)
		createNodes(t, s, names...)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().Create(ctx, newRealization("r1", "n2", "n950"))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			// n950 is in a later INSERT (rows go in resource order) than n700…n899:
			// those are undone too.
			err := tx.Realizations().Create(ctx, newRealization("r2", names[700:]...))
			wantCode(t, err, domain.CodeFailedPrecondition, "resource n950 is bound to another realization")
			err = tx.Realizations().Create(ctx, newRealization("r3", "n1", "n2", "n3"))
			wantCode(t, err, domain.CodeFailedPrecondition, "resource n2 is bound to another realization")
			// The transaction goes on, and holds nothing of the failures.
			for _, id := range []string{"r2", "r3"} {
				_, err := tx.Realizations().Get(ctx, id)
				wantCode(t, err, domain.CodeNotFound, fmt.Sprintf("realization %q not found", id))
			}
			for _, n := range []string{"n1", "n3", "n700", "n999"} {
				if h := holderOf(t, ctx, tx, n); h != "" {
					t.Errorf("%s is bound to %s after the failed creates", n, h)
				}
			}
			// And the id is free for a create that works.
			return tx.Realizations().Create(ctx, newRealization("r3", "n1", "n3"))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Realizations().All(ctx)
			ok(t, err)
			if got := realizationIDs(all); got != "[r1 r3]" {
				t.Errorf("All = %s", got)
			}
			return nil
		})
	}},
	{"CreateErrors", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2", "n3")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().Create(ctx, newRealization("r1", "n1"))
		})
		r := tx2rlz
		wantErrors(t, s, []errCase{
			{"Duplicate", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.Create(ctx, newRealization("r1", "n2"))
			}), domain.CodeAlreadyExists, []string{`realization "r1" already exists`}},
			{"UnknownResource", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.Create(ctx, newRealization("r2", "n2", "zz", "n3"))
			}), domain.CodeNotFound, []string{`resource "zz" not found`}},
			{"ElementTwice", r(func(ctx context.Context, rs store.Realizations) error {
				x := newRealization("r2")
				x.Bindings = []domain.Binding{{Element: "a", Resource: "n2"}, {Element: "a", Resource: "n3"}}
				return rs.Create(ctx, x)
			}), domain.CodeInvalidArgument, []string{"element a is bound twice"}},
			{"ResourceTwice", r(func(ctx context.Context, rs store.Realizations) error {
				x := newRealization("r2")
				x.Bindings = []domain.Binding{{Element: "a", Resource: "n2"}, {Element: "b", Resource: "n2"}}
				return rs.Create(ctx, x)
			}), domain.CodeInvalidArgument, []string{"resource n2 is bound twice"}},
			{"Get", r(func(ctx context.Context, rs store.Realizations) error {
				_, err := rs.Get(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`realization "nope" not found`}},
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			free, err := tx.Resources().Available(ctx, domain.KindNode)
			ok(t, err)
			if got := resourceNames(free); got != "[n2 n3]" {
				t.Errorf("Available = %s", got)
			}
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2", "n3", "n4")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			rs := tx.Realizations()
			ok(t, rs.Create(ctx, newRealization("r3", "n3")))
			ok(t, rs.Create(ctx, newRealization("r1", "n1", "n4")))
			ok(t, rs.Create(ctx, newRealization("r2", "n2")))
			ok(t, rs.Create(ctx, newRealization("r0")))
			return rs.End(ctx, "r2", domain.RealizationFailed, at(time.Hour))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				f    store.RealizationFilter
				want string
			}{
				{store.RealizationFilter{}, "[r0 r1 r3]"},
				{store.RealizationFilter{IncludeEnded: true}, "[r0 r1 r2 r3]"},
				{store.RealizationFilter{IDs: []string{"r2", "r3", "zz"}}, "[r3]"},
				{store.RealizationFilter{IDs: []string{"r2", "r3"}, IncludeEnded: true}, "[r2 r3]"},
				{store.RealizationFilter{IDs: []string{}, IncludeEnded: true}, "[]"},
				{store.RealizationFilter{IncludeEnded: true, Page: store.Page{After: "r0", Limit: 2}}, "[r1 r2]"},
			} {
				got, err := tx.Realizations().List(ctx, c.f)
				ok(t, err)
				if ids := realizationIDs(got); ids != c.want {
					t.Errorf("List(%+v) = %s, want %s", c.f, ids, c.want)
				}
			}
			got, err := tx.Realizations().List(ctx, store.RealizationFilter{IncludeEnded: true})
			ok(t, err)
			bs := fmtList(got, func(r *domain.Realization) string { return r.ID + bindingList(r.Bindings) })
			if bs != "[r0[] r1[e1=n1 e2=n4] r2[e1=n2] r3[e1=n3]]" {
				t.Errorf("List's bindings = %s", bs)
			}
			all, err := tx.Realizations().All(ctx)
			ok(t, err)
			if ids := realizationIDs(all); ids != "[r0 r1 r2 r3]" {
				t.Errorf("All = %s (ended ones included)", ids)
			}
			for _, r := range all {
				if r.Bindings != nil {
					t.Errorf("All loaded bindings of %s", r.ID)
				}
			}
			return nil
		})
	}},
	{"StateAndLease", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			rs := tx.Realizations()
			ok(t, rs.Create(ctx, newRealization("r1", "n1")))
			ok(t, rs.Create(ctx, newRealization("r2")))
			ok(t, rs.SetState(ctx, "r1", domain.RealizationActive))
			ok(t, rs.SetLease(ctx, "r1", at(48*time.Hour)))
			return rs.End(ctx, "r2", domain.RealizationReleased, at(time.Hour))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			r, err := tx.Realizations().Get(ctx, "r1")
			ok(t, err)
			if r.State != domain.RealizationActive || !r.LeaseExpires.Equal(at(48*time.Hour)) {
				t.Errorf("after SetState and SetLease: %+v", r)
			}
			return nil
		})
		r := tx2rlz
		wantErrors(t, s, []errCase{
			{"SetStateEnds", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.SetState(ctx, "r1", domain.RealizationReleased)
			}), domain.CodeInvalidArgument, []string{"End"}},
			{"SetStateEnded", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.SetState(ctx, "r2", domain.RealizationActive)
			}), domain.CodeFailedPrecondition, []string{"realization r2 was released already"}},
			{"SetStateUnknown", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.SetState(ctx, "nope", domain.RealizationActive)
			}), domain.CodeNotFound, []string{`realization "nope" not found`}},
			{"SetLeaseEnded", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.SetLease(ctx, "r2", at(time.Hour))
			}), domain.CodeFailedPrecondition, []string{"realization r2 was released already"}},
			{"SetLeaseUnknown", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.SetLease(ctx, "nope", at(time.Hour))
			}), domain.CodeNotFound, []string{`realization "nope" not found`}},
		})
	}},
	{"Bind", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2", "n3", "n4", "n5", "n6")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, newRealization("r1", "n1", "n2")))
			ok(t, tx.Realizations().Create(ctx, newRealization("r2", "n5")))
			// Rebind e2, add e3.
			return tx.Realizations().Bind(ctx, "r1", []domain.Binding{{Element: "e2", Resource: "n3"}, {Element: "e3", Resource: "n4"}})
		})
		want := func(tx store.Tx, ctx context.Context, bindings string) {
			t.Helper()
			r, err := tx.Realizations().Get(ctx, "r1")
			ok(t, err)
			if got := bindingList(r.Bindings); got != bindings {
				t.Errorf("bindings = %s, want %s", got, bindings)
			}
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			want(tx, ctx, "[e1=n1 e2=n3 e3=n4]")
			if h := holderOf(t, ctx, tx, "n2"); h != "" {
				t.Errorf("n2, unbound, is held by %s", h)
			}
			rs := tx.Realizations()
			err := rs.Bind(ctx, "r1", []domain.Binding{{Element: "e1", Resource: "n6"}, {Element: "e2", Resource: "n5"}})
			wantCode(t, err, domain.CodeFailedPrecondition, "resource n5 is bound to another realization")
			err = rs.Bind(ctx, "r1", []domain.Binding{{Element: "e1", Resource: "n3"}})
			wantCode(t, err, domain.CodeFailedPrecondition, "resource n3 is already bound to element e2 of realization r1")
			err = rs.Bind(ctx, "r1", []domain.Binding{{Element: "e1", Resource: "zz"}})
			wantCode(t, err, domain.CodeNotFound, `resource "zz" not found`)
			err = rs.Bind(ctx, "r1", []domain.Binding{{Element: "e1", Resource: "n6"}, {Element: "e1", Resource: "n2"}})
			wantCode(t, err, domain.CodeInvalidArgument, "element e1 is bound twice")
			err = rs.Bind(ctx, "nope", []domain.Binding{{Element: "e1", Resource: "n6"}})
			wantCode(t, err, domain.CodeNotFound, `realization "nope" not found`)
			// The failures changed nothing.
			want(tx, ctx, "[e1=n1 e2=n3 e3=n4]")
			if h := holderOf(t, ctx, tx, "n6"); h != "" {
				t.Errorf("n6 is held by %s after failed binds", h)
			}
			// A swap within the realization, and a binding kept as it is.
			ok(t, rs.Bind(ctx, "r1", []domain.Binding{{Element: "e1", Resource: "n3"}, {Element: "e2", Resource: "n1"}, {Element: "e3", Resource: "n4"}}))
			want(tx, ctx, "[e1=n3 e2=n1 e3=n4]")
			ok(t, rs.Bind(ctx, "r1", nil))
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().End(ctx, "r2", domain.RealizationReleased, at(time.Hour))
		})
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().Bind(ctx, "r2", []domain.Binding{{Element: "e9", Resource: "n6"}})
		})
		wantCode(t, err, domain.CodeFailedPrecondition, "realization r2 was released already")
		// What r2 freed, r1 may take.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().Bind(ctx, "r1", []domain.Binding{{Element: "e4", Resource: "n5"}})
		})
	}},
	{"End", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2", "n3")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, newRealization("r1", "n1", "n2")))
			ok(t, tx.Realizations().Create(ctx, newRealization("r2", "n3")))
			ok(t, tx.Realizations().End(ctx, "r1", domain.RealizationReleased, at(time.Hour)))
			return tx.Realizations().End(ctx, "r2", domain.RealizationFailed, at(2*time.Hour))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			r, err := tx.Realizations().Get(ctx, "r1")
			ok(t, err)
			if r.State != domain.RealizationReleased || !r.ReleasedAt.Equal(at(time.Hour)) ||
				bindingList(r.Bindings) != "[e1=n1 e2=n2]" {
				t.Errorf("ended: %+v", r)
			}
			for _, n := range []string{"n1", "n2", "n3"} {
				if h := holderOf(t, ctx, tx, n); h != "" {
					t.Errorf("%s is held by %s after End", n, h)
				}
			}
			// The freed resources may be bound again; the record stays.
			ok(t, tx.Realizations().Create(ctx, newRealization("r3", "n2", "n1")))
			r, err = tx.Realizations().Get(ctx, "r1")
			ok(t, err)
			if got := bindingList(r.Bindings); got != "[e1=n1 e2=n2]" {
				t.Errorf("the record after rebinding = %s", got)
			}
			return nil
		})
		r := tx2rlz
		wantErrors(t, s, []errCase{
			{"Again", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.End(ctx, "r1", domain.RealizationReleased, at(3*time.Hour))
			}), domain.CodeFailedPrecondition, []string{"realization r1 was released already"}},
			{"AgainFailed", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.End(ctx, "r2", domain.RealizationReleased, at(3*time.Hour))
			}), domain.CodeFailedPrecondition, []string{"realization r2 failed already"}},
			{"LiveState", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.End(ctx, "r3", domain.RealizationActive, at(3*time.Hour))
			}), domain.CodeInvalidArgument, []string{"released or failed"}},
			{"Unknown", r(func(ctx context.Context, rs store.Realizations) error {
				return rs.End(ctx, "nope", domain.RealizationReleased, at(3*time.Hour))
			}), domain.CodeNotFound, []string{`realization "nope" not found`}},
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			r, err := tx.Realizations().Get(ctx, "r1")
			ok(t, err)
			if !r.ReleasedAt.Equal(at(time.Hour)) {
				t.Errorf("a refused End moved ReleasedAt to %v", r.ReleasedAt)
			}
			return nil
		})
	}},
	{"Expired", func(t *testing.T, s store.Store) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			rs := tx.Realizations()
			for id, lease := range map[string]time.Time{
				"a": at(2 * time.Hour), "b": at(time.Hour), "c": {}, "d": at(30 * time.Minute), "e": at(5 * time.Hour),
			} {
				r := newRealization(id)
				r.LeaseExpires = lease
				ok(t, rs.Create(ctx, r))
			}
			return rs.End(ctx, "d", domain.RealizationReleased, at(time.Hour))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				now   time.Time
				limit int
				want  string
			}{
				{at(3 * time.Hour), 10, "[b a]"},
				{at(3 * time.Hour), 1, "[b]"},
				{at(time.Hour), 10, "[]"}, // expired means before now
				{at(90 * time.Minute), 0, "[b]"},
			} {
				got, err := tx.Realizations().Expired(ctx, c.now, c.limit)
				ok(t, err)
				if fmt.Sprint(got) != c.want {
					t.Errorf("Expired(%v, %d) = %v, want %s", c.now, c.limit, got, c.want)
				}
			}
			return nil
		})
	}},
	{"ConcurrentOverlap", func(t *testing.T, s store.Store) {
		// Two realizations that share a resource: exactly one is made, the
		// other is refused whole.
		for round := range rounds {
			a, shared, b := fmt.Sprintf("a%d", round), fmt.Sprintf("s%d", round), fmt.Sprintf("b%d", round)
			createNodes(t, s, a, shared, b)
			ra, rb := "ra"+fmt.Sprint(round), "rb"+fmt.Sprint(round)
			errA, errB := concurrently(t, s,
				func(ctx context.Context, tx store.Tx) error {
					return tx.Realizations().Create(ctx, newRealization(ra, a, shared))
				},
				func(ctx context.Context, tx store.Tx) error {
					return tx.Realizations().Create(ctx, newRealization(rb, shared, b))
				})
			if (errA == nil) == (errB == nil) {
				t.Fatalf("round %d: errors %v and %v, want exactly one", round, errA, errB)
			}
			loser, lost, free := rb, errB, b
			if errA != nil {
				loser, lost, free = ra, errA, a
			}
			wantCode(t, lost, domain.CodeFailedPrecondition, "resource "+shared+" is bound to another realization")
			view(t, s, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.Realizations().Get(ctx, loser)
				wantCode(t, err, domain.CodeNotFound)
				if h := holderOf(t, ctx, tx, free); h != "" {
					t.Errorf("round %d: %s is held by %s", round, free, h)
				}
				return nil
			})
		}
	}},
	{"ConcurrentRandomOverlap", func(t *testing.T, s store.Store) {
		// Many realizations over overlapping random sets of one pool: no
		// resource ends up in two, and every loser was told why.
		const goroutines, each = 20, 5
		pool := nodeNames("p", 40)
		createNodes(t, s, pool...)
		rng := rand.New(rand.NewPCG(1, 2))
		want := make([][]string, goroutines)
		for i := range want {
			perm := rng.Perm(len(pool))[:each]
			for _, p := range perm {
				want[i] = append(want[i], pool[p])
			}
		}
		errs := raceN(t, s, goroutines, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Realizations().Create(ctx, newRealization(fmt.Sprintf("r%02d", i), want[i]...))
		})
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case domain.CodeOf(err) != domain.CodeFailedPrecondition:
				t.Errorf("realization %d: %v, want failed-precondition", i, err)
			}
		}
		if wins == 0 {
			t.Error("no realization was made")
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			live, err := tx.Realizations().List(ctx, store.RealizationFilter{Page: store.Page{Limit: 1000}})
			ok(t, err)
			if len(live) != wins {
				t.Errorf("%d live realizations, %d creates succeeded", len(live), wins)
			}
			holder := map[string]string{}
			for _, r := range live {
				for _, b := range r.Bindings {
					if other, dup := holder[b.Resource]; dup {
						t.Errorf("resource %s is bound to %s and %s", b.Resource, other, r.ID)
					}
					holder[b.Resource] = r.ID
				}
			}
			for i, err := range errs {
				id := fmt.Sprintf("r%02d", i)
				r, gerr := tx.Realizations().Get(ctx, id)
				if err != nil {
					wantCode(t, gerr, domain.CodeNotFound)
					continue
				}
				ok(t, gerr)
				if got, w := bindingList(r.Bindings), bindingList(sortedBindings(newRealization(id, want[i]...).Bindings)); got != w {
					t.Errorf("%s has %s, want %s", id, got, w)
				}
			}
			resources, err := tx.Resources().List(ctx, store.ResourceFilter{Page: store.Page{Limit: 1000}})
			ok(t, err)
			for _, r := range resources {
				if r.Realization != holder[r.Name] {
					t.Errorf("Resources says %s is held by %q, the realizations say %q", r.Name, r.Realization, holder[r.Name])
				}
			}
			return nil
		})
	}},
	{"ConcurrentBind", func(t *testing.T, s store.Store) {
		createNodes(t, s, "free")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i := range workers {
				ok(t, tx.Realizations().Create(ctx, newRealization(fmt.Sprintf("r%d", i))))
			}
			return nil
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Realizations().Bind(ctx, fmt.Sprintf("r%d", i), []domain.Binding{{Element: "x", Resource: "free"}})
		})
		exactlyOne(t, errs, domain.CodeFailedPrecondition)
	}},
	{"ConcurrentEnd", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Realizations().Create(ctx, newRealization("r1", "n1"))
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Realizations().End(ctx, "r1", domain.RealizationReleased, at(time.Duration(i)*time.Minute))
		})
		exactlyOne(t, errs, domain.CodeFailedPrecondition)
	}},
	{"ConcurrentDeleteResource", func(t *testing.T, s store.Store) {
		// Deleting a resource while a realization binds it: one of the two
		// wins, never both.
		for round := range rounds {
			n := fmt.Sprintf("n%d", round)
			createNodes(t, s, n)
			errDel, errCreate := concurrently(t, s,
				func(ctx context.Context, tx store.Tx) error { return tx.Resources().Delete(ctx, n) },
				func(ctx context.Context, tx store.Tx) error {
					return tx.Realizations().Create(ctx, newRealization("r"+n, n))
				})
			switch {
			case errDel == nil && errCreate == nil:
				t.Fatalf("round %d: the resource was deleted and bound", round)
			case errDel == nil:
				wantCode(t, errCreate, domain.CodeNotFound, fmt.Sprintf("resource %q not found", n))
			case errCreate == nil:
				wantCode(t, errDel, domain.CodeFailedPrecondition, "resource "+n+" is bound to realization r"+n)
			default:
				t.Fatalf("round %d: both failed: %v; %v", round, errDel, errCreate)
			}
		}
	}},
}
