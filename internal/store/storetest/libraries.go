package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newLibrary(id string) *domain.Library {
	owner, name, _ := strings.Cut(id, ":")
	return &domain.Library{ID: id, Owner: owner, Name: name, Creator: owner, CreatedAt: t0}
}

func createLibraries(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			if err := tx.Libraries().Create(ctx, newLibrary(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

func libraryIDs(ls []*domain.Library) string {
	return fmtList(ls, func(l *domain.Library) string { return l.ID })
}

func tx2lib(fn func(ctx context.Context, ls store.Libraries) error) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Libraries()) }
}

var libraryTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		l := newLibrary("lab:classics")
		l.Creator = "alice"
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Libraries().Create(ctx, l) })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Libraries().Get(ctx, l.ID)
			ok(t, err)
			if !reflect.DeepEqual(got, l) {
				t.Errorf("Get = %+v, want %+v", got, l)
			}
			return nil
		})
	}},
	{"SetOwner", func(t *testing.T, s store.Store) {
		createLibraries(t, s, "bob:l", "alice:a")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Libraries().SetOwner(ctx, "bob:l", "alice"))
			wantCode(t, tx.Libraries().SetOwner(ctx, "no:ne", "alice"), domain.CodeNotFound)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			l, err := tx.Libraries().Get(ctx, "bob:l")
			ok(t, err)
			if l.Owner != "alice" {
				t.Errorf("after SetOwner: %+v", l)
			}
			got, err := tx.Libraries().List(ctx, store.LibraryFilter{Owner: "alice"})
			ok(t, err)
			if ids := libraryIDs(got); ids != "[alice:a bob:l]" {
				t.Errorf("List(owner alice) = %s", ids)
			}
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		createLibraries(t, s, "bob:l", "alice:b", "alice:a", "lab:x")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				f    store.LibraryFilter
				want string
			}{
				{store.LibraryFilter{}, "[alice:a alice:b bob:l lab:x]"},
				{store.LibraryFilter{Owner: "alice"}, "[alice:a alice:b]"},
				{store.LibraryFilter{IDs: []string{"lab:x", "alice:b", "no:pe"}}, "[alice:b lab:x]"},
				{store.LibraryFilter{IDs: []string{}}, "[]"},
				{store.LibraryFilter{Page: store.Page{After: "alice:b", Limit: 1}}, "[bob:l]"},
				{store.LibraryFilter{Owner: "alice", Page: store.Page{After: "alice:a"}}, "[alice:b]"},
				// Text matches a substring of the id, case-sensitive, no wildcards.
				{store.LibraryFilter{Text: "b"}, "[alice:b bob:l lab:x]"},
				{store.LibraryFilter{Text: "e:"}, "[alice:a alice:b]"},
				{store.LibraryFilter{Text: "_"}, "[]"},
				{store.LibraryFilter{Text: "L"}, "[]"},
				{store.LibraryFilter{Owner: "alice", Text: "b"}, "[alice:b]"},
			} {
				got, err := tx.Libraries().List(ctx, c.f)
				ok(t, err)
				if ids := libraryIDs(got); ids != c.want {
					t.Errorf("List(%+v) = %s, want %s", c.f, ids, c.want)
				}
			}
			all, err := tx.Libraries().All(ctx)
			ok(t, err)
			if ids := libraryIDs(all); ids != "[alice:a alice:b bob:l lab:x]" {
				t.Errorf("All = %s", ids)
			}
			return nil
		})
	}},
	{"Experiments", func(t *testing.T, s store.Store) {
		createLibraries(t, s, "alice:lib", "alice:empty")
		createExperiments(t, s, "bob:e2", "alice:e1", "alice:e3")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ls := tx.Libraries()
			for _, e := range []string{"bob:e2", "alice:e3", "alice:e1"} {
				ok(t, ls.AddExperiment(ctx, "alice:lib", e))
			}
			return ls.RemoveExperiment(ctx, "alice:lib", "alice:e3")
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ids, err := tx.Libraries().Experiments(ctx, "alice:lib")
			ok(t, err)
			if fmt.Sprint(ids) != "[alice:e1 bob:e2]" {
				t.Errorf("Experiments = %v", ids)
			}
			none, err := tx.Libraries().Experiments(ctx, "alice:empty")
			ok(t, err)
			if len(none) != 0 {
				t.Errorf("Experiments(empty) = %v", none)
			}
			return nil
		})
		// Deleting the library removes its entries, not its experiments.
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Libraries().Delete(ctx, "alice:lib") })
		createLibraries(t, s, "alice:lib")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ids, err := tx.Libraries().Experiments(ctx, "alice:lib")
			ok(t, err)
			if len(ids) != 0 {
				t.Errorf("a new library of the same id lists %v", ids)
			}
			all, err := tx.Experiments().All(ctx)
			ok(t, err)
			if got := experimentIDs(all); got != "[alice:e1 alice:e3 bob:e2]" {
				t.Errorf("experiments after the library's deletion: %s", got)
			}
			return nil
		})
	}},
	{"Errors", func(t *testing.T, s store.Store) {
		createLibraries(t, s, "alice:lib")
		createExperiments(t, s, "alice:e1", "alice:e2")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Libraries().AddExperiment(ctx, "alice:lib", "alice:e1")
		})
		l := tx2lib
		wantErrors(t, s, []errCase{
			{"CreateDuplicate", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.Create(ctx, newLibrary("alice:lib"))
			}), domain.CodeAlreadyExists, []string{`library "alice:lib" already exists`}},
			{"Get", l(func(ctx context.Context, ls store.Libraries) error {
				_, err := ls.Get(ctx, "alice:nope")
				return err
			}), domain.CodeNotFound, []string{`library "alice:nope" not found`}},
			{"Delete", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.Delete(ctx, "alice:nope")
			}), domain.CodeNotFound, []string{`library "alice:nope" not found`}},
			{"AddDuplicate", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.AddExperiment(ctx, "alice:lib", "alice:e1")
			}), domain.CodeAlreadyExists, []string{"experiment alice:e1 is already in library alice:lib"}},
			{"AddUnknownLibrary", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.AddExperiment(ctx, "alice:nope", "alice:e1")
			}), domain.CodeNotFound, []string{`library "alice:nope" not found`}},
			{"AddUnknownExperiment", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.AddExperiment(ctx, "alice:lib", "alice:nope")
			}), domain.CodeNotFound, []string{`experiment "alice:nope" not found`}},
			{"RemoveNotListed", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.RemoveExperiment(ctx, "alice:lib", "alice:e2")
			}), domain.CodeNotFound, []string{"experiment alice:e2 is not in library alice:lib"}},
			{"RemoveUnknownLibrary", l(func(ctx context.Context, ls store.Libraries) error {
				return ls.RemoveExperiment(ctx, "alice:nope", "alice:e1")
			}), domain.CodeNotFound, []string{`library "alice:nope" not found`}},
			{"ExperimentsUnknownLibrary", l(func(ctx context.Context, ls store.Libraries) error {
				_, err := ls.Experiments(ctx, "alice:nope")
				return err
			}), domain.CodeNotFound, []string{`library "alice:nope" not found`}},
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ids, err := tx.Libraries().Experiments(ctx, "alice:lib")
			ok(t, err)
			if fmt.Sprint(ids) != "[alice:e1]" {
				t.Errorf("Experiments = %v", ids)
			}
			all, err := tx.Libraries().All(ctx)
			ok(t, err)
			if got := libraryIDs(all); got != "[alice:lib]" {
				t.Errorf("All = %s", got)
			}
			return nil
		})
	}},
}
