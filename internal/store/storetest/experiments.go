package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// newExperiment makes the experiment owner:name, created by the owner.
func newExperiment(id string) *domain.Experiment {
	owner, name, _ := strings.Cut(id, ":")
	return &domain.Experiment{ID: id, Owner: owner, Name: name, Creator: owner, CreatedAt: t0}
}

func createExperiments(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			if err := tx.Experiments().Create(ctx, newExperiment(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

func newAspect(experiment, typ, name, content string) *domain.Aspect {
	return &domain.Aspect{Experiment: experiment, Type: typ, Name: name, Content: []byte(content), UpdatedAt: at(time.Minute)}
}

func experimentIDs(es []*domain.Experiment) string {
	return fmtList(es, func(e *domain.Experiment) string { return e.ID })
}

func aspectKeys(as []*domain.Aspect) string {
	return fmtList(as, func(a *domain.Aspect) string {
		return fmt.Sprintf("%s/%s@%d:%q", a.Type, a.Name, a.Revision, a.Content)
	})
}

func tx2exp(fn func(ctx context.Context, es store.Experiments) error) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Experiments()) }
}

var experimentTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		e1, e2 := newExperiment("alice:e1"), newExperiment("lab:e2")
		e2.Creator = "bob"
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Experiments().Create(ctx, e1))
			return tx.Experiments().Create(ctx, e2)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, want := range []*domain.Experiment{e1, e2} {
				got, err := tx.Experiments().Get(ctx, want.ID)
				ok(t, err)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Get(%s) = %+v, want %+v", want.ID, got, want)
				}
			}
			all, err := tx.Experiments().All(ctx)
			ok(t, err)
			if got := experimentIDs(all); got != "[alice:e1 lab:e2]" {
				t.Errorf("All = %s", got)
			}
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "bob:net", "alice:e2", "alice:e1", "lab:net-2", "alice:net")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				f    store.ExperimentFilter
				want string
			}{
				{store.ExperimentFilter{}, "[alice:e1 alice:e2 alice:net bob:net lab:net-2]"},
				{store.ExperimentFilter{Owner: "alice"}, "[alice:e1 alice:e2 alice:net]"},
				{store.ExperimentFilter{Text: "net"}, "[alice:net bob:net lab:net-2]"},
				// Case-sensitive, and no wildcards.
				{store.ExperimentFilter{Text: "NET"}, "[]"},
				{store.ExperimentFilter{Text: "_"}, "[]"},
				{store.ExperimentFilter{Text: "%"}, "[]"},
				{store.ExperimentFilter{Owner: "alice", Text: "e"}, "[alice:e1 alice:e2 alice:net]"},
				{store.ExperimentFilter{IDs: []string{"bob:net", "alice:e2", "zed:none"}}, "[alice:e2 bob:net]"},
				{store.ExperimentFilter{IDs: []string{}}, "[]"},
				{store.ExperimentFilter{IDs: []string{"bob:net", "alice:e2"}, Owner: "alice"}, "[alice:e2]"},
				{store.ExperimentFilter{Page: store.Page{Limit: 2}}, "[alice:e1 alice:e2]"},
				{store.ExperimentFilter{Page: store.Page{After: "alice:e2", Limit: 2}}, "[alice:net bob:net]"},
				{store.ExperimentFilter{Text: "net", Page: store.Page{After: "alice:net"}}, "[bob:net lab:net-2]"},
			} {
				got, err := tx.Experiments().List(ctx, c.f)
				ok(t, err)
				if ids := experimentIDs(got); ids != c.want {
					t.Errorf("List(%+v) = %s, want %s", c.f, ids, c.want)
				}
			}
			return nil
		})
	}},
	{"SetOwner", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "bob:net", "alice:e1", "lab:x")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Experiments().SetOwner(ctx, "bob:net", "alice"))
			wantCode(t, tx.Experiments().SetOwner(ctx, "no:ne", "alice"), domain.CodeNotFound)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			e, err := tx.Experiments().Get(ctx, "bob:net")
			ok(t, err)
			if e.Owner != "alice" || e.ID != "bob:net" {
				t.Errorf("after SetOwner: %+v", e)
			}
			// Owner matches what one owns and what is named in one's namespace.
			for owner, want := range map[string]string{"alice": "[alice:e1 bob:net]", "bob": "[bob:net]", "lab": "[lab:x]", "la": "[]"} {
				got, err := tx.Experiments().List(ctx, store.ExperimentFilter{Owner: owner})
				ok(t, err)
				if ids := experimentIDs(got); ids != want {
					t.Errorf("List(owner %s) = %s, want %s", owner, ids, want)
				}
			}
			return nil
		})
	}},
	{"Aspects", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "alice:e1", "alice:e2")
		layout := newAspect("alice:e1", "layout", "main", "nodes: 2")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			es := tx.Experiments()
			ok(t, es.PutAspect(ctx, layout, 0))
			if layout.Revision != 1 {
				t.Errorf("created at revision %d, want 1", layout.Revision)
			}
			ok(t, es.PutAspect(ctx, newAspect("alice:e1", "data", "z", ""), 0))
			ok(t, es.PutAspect(ctx, newAspect("alice:e1", "layout", "alt", "nodes: 1"), 0))
			ok(t, es.PutAspect(ctx, newAspect("alice:e2", "layout", "main", "other"), 0))
			// Replace, based on revision 1.
			layout.Content, layout.UpdatedAt = []byte("nodes: 3"), at(time.Hour)
			ok(t, es.PutAspect(ctx, layout, 1))
			if layout.Revision != 2 {
				t.Errorf("replaced at revision %d, want 2", layout.Revision)
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			es := tx.Experiments()
			got, err := es.GetAspect(ctx, "alice:e1", "layout", "main")
			ok(t, err)
			if !reflect.DeepEqual(got, layout) {
				t.Errorf("GetAspect = %+v, want %+v", got, layout)
			}
			empty, err := es.GetAspect(ctx, "alice:e1", "data", "z")
			ok(t, err)
			if len(empty.Content) != 0 || empty.Revision != 1 {
				t.Errorf("empty aspect = %+v", empty)
			}
			all, err := es.Aspects(ctx, "alice:e1", true)
			ok(t, err)
			if got := aspectKeys(all); got != `[data/z@1:"" layout/alt@1:"nodes: 1" layout/main@2:"nodes: 3"]` {
				t.Errorf("Aspects(with content) = %s", got)
			}
			bare, err := es.Aspects(ctx, "alice:e1", false)
			ok(t, err)
			if got := aspectKeys(bare); got != `[data/z@1:"" layout/alt@1:"" layout/main@2:""]` {
				t.Errorf("Aspects(without content) = %s", got)
			}
			if !bare[2].UpdatedAt.Equal(at(time.Hour)) || bare[2].Experiment != "alice:e1" {
				t.Errorf("Aspects(without content)[2] = %+v", bare[2])
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Experiments().DeleteAspect(ctx, "alice:e1", "layout", "alt")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Experiments().Aspects(ctx, "alice:e1", false)
			ok(t, err)
			if got := aspectKeys(all); got != `[data/z@1:"" layout/main@2:""]` {
				t.Errorf("Aspects after delete = %s", got)
			}
			// Another experiment's aspects are its own.
			e2Aspects, err := tx.Experiments().Aspects(ctx, "alice:e2", true)
			ok(t, err)
			if len(e2Aspects) != 1 {
				t.Errorf("Aspects(alice:e2) = %s", aspectKeys(e2Aspects))
			}
			return nil
		})
		createExperiments(t, s, "alice:bare")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			none, err := tx.Experiments().Aspects(ctx, "alice:bare", true)
			ok(t, err)
			if len(none) != 0 {
				t.Errorf("Aspects(alice:bare) = %s", aspectKeys(none))
			}
			return nil
		})
	}},
	{"RevisionConflict", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "alice:e1")
		a := newAspect("alice:e1", "layout", "main", "v1")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Experiments().PutAspect(ctx, a, 0))
			a.Content = []byte("v2")
			ok(t, tx.Experiments().PutAspect(ctx, a, 1))
			a.Content = []byte("v3")
			return tx.Experiments().PutAspect(ctx, a, 2)
		})
		stale := newAspect("alice:e1", "layout", "main", "stale")
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Experiments().PutAspect(ctx, stale, 2)
		})
		wantCode(t, err, domain.CodeAborted, "aspect layout/main is at revision 3, not 2: reload and apply the change again")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Experiments().GetAspect(ctx, "alice:e1", "layout", "main")
			ok(t, err)
			if got.Revision != 3 || string(got.Content) != "v3" {
				t.Errorf("after a stale change: %+v", got)
			}
			return nil
		})
	}},
	{"DeleteCascades", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "alice:e1", "alice:e2")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Experiments().PutAspect(ctx, newAspect("alice:e1", "layout", "main", "x"), 0))
			ok(t, tx.Libraries().Create(ctx, newLibrary("alice:lib")))
			ok(t, tx.Libraries().AddExperiment(ctx, "alice:lib", "alice:e1"))
			ok(t, tx.Libraries().AddExperiment(ctx, "alice:lib", "alice:e2"))
			return tx.Experiments().Delete(ctx, "alice:e1")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Experiments().Get(ctx, "alice:e1")
			wantCode(t, err, domain.CodeNotFound, `experiment "alice:e1" not found`)
			_, err = tx.Experiments().Aspects(ctx, "alice:e1", true)
			wantCode(t, err, domain.CodeNotFound, `experiment "alice:e1" not found`)
			ids, err := tx.Libraries().Experiments(ctx, "alice:lib")
			ok(t, err)
			if fmt.Sprint(ids) != "[alice:e2]" {
				t.Errorf("library lists %v after the delete", ids)
			}
			return nil
		})
		// The id is free again, and starts without aspects.
		createExperiments(t, s, "alice:e1")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Experiments().PutAspect(ctx, newAspect("alice:e1", "layout", "main", "new"), 0)
		})
	}},
	{"Errors", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "alice:e1")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Experiments().PutAspect(ctx, newAspect("alice:e1", "layout", "main", "x"), 0)
		})
		e := tx2exp
		wantErrors(t, s, []errCase{
			{"CreateDuplicate", e(func(ctx context.Context, es store.Experiments) error {
				return es.Create(ctx, newExperiment("alice:e1"))
			}), domain.CodeAlreadyExists, []string{`experiment "alice:e1" already exists`}},
			{"Get", e(func(ctx context.Context, es store.Experiments) error {
				_, err := es.Get(ctx, "alice:nope")
				return err
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"Delete", e(func(ctx context.Context, es store.Experiments) error {
				return es.Delete(ctx, "alice:nope")
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"PutAspectDuplicate", e(func(ctx context.Context, es store.Experiments) error {
				return es.PutAspect(ctx, newAspect("alice:e1", "layout", "main", "y"), 0)
			}), domain.CodeAlreadyExists, []string{"aspect layout/main already exists"}},
			{"PutAspectUnknownExperiment", e(func(ctx context.Context, es store.Experiments) error {
				return es.PutAspect(ctx, newAspect("alice:nope", "layout", "main", "y"), 0)
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"PutAspectStale", e(func(ctx context.Context, es store.Experiments) error {
				return es.PutAspect(ctx, newAspect("alice:e1", "layout", "main", "y"), 7)
			}), domain.CodeAborted, []string{"aspect layout/main is at revision 1, not 7"}},
			{"PutAspectReplaceMissing", e(func(ctx context.Context, es store.Experiments) error {
				return es.PutAspect(ctx, newAspect("alice:e1", "layout", "nope", "y"), 1)
			}), domain.CodeNotFound, []string{"aspect layout/nope not found"}},
			{"PutAspectReplaceUnknownExperiment", e(func(ctx context.Context, es store.Experiments) error {
				return es.PutAspect(ctx, newAspect("alice:nope", "layout", "main", "y"), 1)
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"PutAspectNegative", e(func(ctx context.Context, es store.Experiments) error {
				return es.PutAspect(ctx, newAspect("alice:e1", "layout", "main", "y"), -1)
			}), domain.CodeInvalidArgument, []string{"expected_revision"}},
			{"GetAspect", e(func(ctx context.Context, es store.Experiments) error {
				_, err := es.GetAspect(ctx, "alice:e1", "layout", "nope")
				return err
			}), domain.CodeNotFound, []string{"aspect layout/nope not found"}},
			{"GetAspectUnknownExperiment", e(func(ctx context.Context, es store.Experiments) error {
				_, err := es.GetAspect(ctx, "alice:nope", "layout", "main")
				return err
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"AspectsUnknownExperiment", e(func(ctx context.Context, es store.Experiments) error {
				_, err := es.Aspects(ctx, "alice:nope", false)
				return err
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"DeleteAspect", e(func(ctx context.Context, es store.Experiments) error {
				return es.DeleteAspect(ctx, "alice:e1", "procedure", "main")
			}), domain.CodeNotFound, []string{"aspect procedure/main not found"}},
			{"DeleteAspectUnknownExperiment", e(func(ctx context.Context, es store.Experiments) error {
				return es.DeleteAspect(ctx, "alice:nope", "layout", "main")
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
		})
		// Nothing the failed calls tried was written.
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Experiments().All(ctx)
			ok(t, err)
			if got := experimentIDs(all); got != "[alice:e1]" {
				t.Errorf("All = %s", got)
			}
			as, err := tx.Experiments().Aspects(ctx, "alice:e1", true)
			ok(t, err)
			if got := aspectKeys(as); got != `[layout/main@1:"x"]` {
				t.Errorf("Aspects = %s", got)
			}
			return nil
		})
	}},
	{"ConcurrentPutAspect", func(t *testing.T, s store.Store) {
		// Editors who all read revision 1: exactly one change lands, the
		// others are told to reload.
		createExperiments(t, s, "alice:e1")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Experiments().PutAspect(ctx, newAspect("alice:e1", "layout", "main", "v1"), 0)
		})
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Experiments().PutAspect(ctx, newAspect("alice:e1", "layout", "main", fmt.Sprintf("by %d", i)), 1)
		})
		exactlyOne(t, errs, domain.CodeAborted)
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Experiments().GetAspect(ctx, "alice:e1", "layout", "main")
			ok(t, err)
			for i, err := range errs {
				if err == nil && (got.Revision != 2 || !bytes.Equal(got.Content, fmt.Appendf(nil, "by %d", i))) {
					t.Errorf("winner %d, but the aspect is %+v", i, got)
				}
			}
			return nil
		})
	}},
	{"ConcurrentCreateAspect", func(t *testing.T, s store.Store) {
		createExperiments(t, s, "alice:e1")
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Experiments().PutAspect(ctx, newAspect("alice:e1", "layout", "main", "x"), 0)
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
	}},
}
