package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var materializationTests = []test{
	{"PutGetReplaceElementsSilent", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2")
		m := &domain.Materialization{Realization: "r1", State: domain.MaterializationBound, Generation: 1, WaitingSince: at(0), UpdatedAt: at(0)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, newRealization("r1", "n1", "n2")))
			wantCode(t, tx.Materializations().Put(ctx, &domain.Materialization{Realization: "ghost", State: "bound"}), domain.CodeNotFound)
			ok(t, tx.Materializations().Put(ctx, m))
			ok(t, tx.Materializations().ReplaceElements(ctx, "r1", "site1", []domain.ElementState{
				{Kind: domain.ElementLink, Name: "e1~e2", State: domain.ElementPending, UpdatedAt: at(0)},
				{Kind: domain.ElementNode, Name: "e2", State: domain.ElementPending, UpdatedAt: at(0)},
			}))
			return tx.Materializations().ReplaceElements(ctx, "r1", "site2", []domain.ElementState{
				{Kind: domain.ElementNode, Name: "e1", State: domain.ElementPending, UpdatedAt: at(0)},
			})
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Materializations().Get(ctx, "ghost")
			wantCode(t, err, domain.CodeNotFound)
			got, err := tx.Materializations().Get(ctx, "r1")
			ok(t, err)
			var names []string
			for _, e := range got.Elements {
				names = append(names, e.Provider+"/"+e.Kind+"/"+e.Name)
			}
			if want := []string{"site2/node/e1", "site1/node/e2", "site1/link/e1~e2"}; !reflect.DeepEqual(names, want) {
				t.Errorf("elements %v, want nodes then links, by name: %v", names, want)
			}
			got.Elements = nil
			if !reflect.DeepEqual(got, m) {
				t.Errorf("Get = %+v, want %+v", got, m)
			}
			silent, err := tx.Materializations().Silent(ctx, at(time.Minute), 10)
			ok(t, err)
			if !reflect.DeepEqual(silent, []string{"r1"}) {
				t.Errorf("Silent = %v, want [r1]", silent)
			}
			silent, err = tx.Materializations().Silent(ctx, at(0), 10)
			ok(t, err)
			if len(silent) != 0 {
				t.Errorf("Silent before it began waiting = %v", silent)
			}
			return nil
		})
		m.State, m.Suspect, m.Generation, m.Reason = domain.MaterializationFailed, true, 2, "node e1: no"
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Materializations().Put(ctx, m))
			// A site's report replaces its part only.
			return tx.Materializations().ReplaceElements(ctx, "r1", "site1", []domain.ElementState{
				{Kind: domain.ElementNode, Name: "e2", State: domain.ElementReady, Address: "netns:x", UpdatedAt: at(time.Second)},
			})
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Materializations().Get(ctx, "r1")
			ok(t, err)
			if len(got.Elements) != 2 || got.Elements[1].State != domain.ElementReady || got.Elements[1].Address != "netns:x" || got.State != domain.MaterializationFailed || !got.Suspect {
				t.Errorf("after update = %+v", got)
			}
			silent, err := tx.Materializations().Silent(ctx, at(time.Hour), 10)
			ok(t, err)
			if len(silent) != 0 {
				t.Errorf("Silent lists a suspect one: %v", silent)
			}
			return nil
		})
	}},
	{"ExpiredSkipsReleasing", func(t *testing.T, s store.Store) {
		createNodes(t, s, "n1", "n2")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Realizations().Create(ctx, newRealization("r1", "n1")))
			ok(t, tx.Realizations().Create(ctx, newRealization("r2", "n2")))
			// r2's sites are removing it: its lease no longer matters.
			return tx.Realizations().SetState(ctx, "r2", domain.RealizationReleasing)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ids, err := tx.Realizations().Expired(ctx, at(48*time.Hour), 10)
			ok(t, err)
			if !reflect.DeepEqual(ids, []string{"r1"}) {
				t.Errorf("Expired = %v, want [r1]", ids)
			}
			return nil
		})
	}},
}
