package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

func newDelivery(id, provider, key string) *domain.Delivery {
	return &domain.Delivery{ID: id, Provider: provider, Kind: domain.DeliveryDisconnect, Key: key,
		Payload: []byte(`{"uid":"alice"}`), CreatedAt: at(0), NextAttempt: at(0)}
}

func enqueue(t *testing.T, s store.Store, ds ...*domain.Delivery) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, d := range ds {
			ok(t, tx.Deliveries().Enqueue(ctx, d))
		}
		return nil
	})
}

func deliveryIDs(ds []*domain.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

var deliveryTests = []test{
	{"EnqueueGetListInOrder", func(t *testing.T, s store.Store) {
		a, b, c := newDelivery("d1", "site1", "k1"), newDelivery("d2", "site2", "k1"), newDelivery("d3", "site1", "k2")
		enqueue(t, s, a, b, c)
		if !(a.Seq > 0 && a.Seq < b.Seq && b.Seq < c.Seq) {
			t.Fatalf("Seq not increasing: %d %d %d", a.Seq, b.Seq, c.Seq)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			// The same key for the same site is one delivery; the caller's
			// transaction goes on.
			wantCode(t, tx.Deliveries().Enqueue(ctx, newDelivery("d4", "site1", "k1")), domain.CodeAlreadyExists, `"k1"`)
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Deliveries().Get(ctx, "d1")
			ok(t, err)
			if !reflect.DeepEqual(got, a) {
				t.Errorf("Get = %+v, want %+v", got, a)
			}
			_, err = tx.Deliveries().Get(ctx, "ghost")
			wantCode(t, err, domain.CodeNotFound)
			all, err := tx.Deliveries().List(ctx, store.DeliveryFilter{})
			ok(t, err)
			if got, want := deliveryIDs(all), []string{"d1", "d2", "d3"}; !reflect.DeepEqual(got, want) {
				t.Errorf("List = %v, want %v", got, want)
			}
			one, err := tx.Deliveries().List(ctx, store.DeliveryFilter{Provider: "site1", AfterSeq: a.Seq})
			ok(t, err)
			if got, want := deliveryIDs(one), []string{"d3"}; !reflect.DeepEqual(got, want) {
				t.Errorf("List(site1, after d1) = %v, want %v", got, want)
			}
			n, err := tx.Deliveries().Pending(ctx, "site1")
			ok(t, err)
			if n != 2 {
				t.Errorf("Pending(site1) = %d, want 2", n)
			}
			return nil
		})
	}},
	{"HeadsClaimDeliverRetryFail", func(t *testing.T, s store.Store) {
		a, b, c := newDelivery("d1", "site1", "k1"), newDelivery("d2", "site1", "k2"), newDelivery("d3", "site2", "k1")
		enqueue(t, s, a, b, c)
		heads := func() []string {
			var out []string
			view(t, s, func(ctx context.Context, tx store.Tx) error {
				hs, err := tx.Deliveries().Heads(ctx, 10)
				out = deliveryIDs(hs)
				return err
			})
			return out
		}
		if got, want := heads(), []string{"d1", "d3"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Heads = %v, want the oldest of each site %v", got, want)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			won, err := tx.Deliveries().Claim(ctx, "d1", at(0), at(time.Minute))
			ok(t, err)
			again, err := tx.Deliveries().Claim(ctx, "d1", at(time.Second), at(time.Minute))
			ok(t, err)
			if !won || again {
				t.Errorf("Claim = %v then %v while claimed, want true then false", won, again)
			}
			// A claim that ended may be taken again (its holder died).
			later, err := tx.Deliveries().Claim(ctx, "d1", at(time.Minute), at(2*time.Minute))
			ok(t, err)
			if !later {
				t.Error("Claim after the first claim ended = false, want true")
			}
			ok(t, tx.Deliveries().Retry(ctx, "d1", at(time.Hour), "connection refused"))
			// Not due before its next attempt, whoever read it as due.
			early, err := tx.Deliveries().Claim(ctx, "d1", at(30*time.Minute), at(31*time.Minute))
			ok(t, err)
			if early {
				t.Error("Claim before the next attempt = true")
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			d, err := tx.Deliveries().Get(ctx, "d1")
			ok(t, err)
			if d.Attempts != 2 || !d.NextAttempt.Equal(at(time.Hour)) || d.LastError != "connection refused" || !d.LeaseUntil.IsZero() || d.State() != domain.DeliveryPending {
				t.Errorf("after Retry = %+v", d)
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Deliveries().Delivered(ctx, "d1", at(2*time.Hour)))
			wantCode(t, tx.Deliveries().Delivered(ctx, "d1", at(2*time.Hour)), domain.CodeFailedPrecondition)
			won, err := tx.Deliveries().Claim(ctx, "d1", at(3*time.Hour), at(4*time.Hour))
			ok(t, err)
			if won {
				t.Error("Claim of a delivered delivery = true")
			}
			ok(t, tx.Deliveries().Fail(ctx, "d3", at(2*time.Hour), "refused by the site"))
			wantCode(t, tx.Deliveries().Retry(ctx, "d3", at(0), "x"), domain.CodeFailedPrecondition)
			return nil
		})
		if got, want := heads(), []string{"d2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Heads after d1 delivered and d3 failed = %v, want %v", got, want)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			pending, err := tx.Deliveries().List(ctx, store.DeliveryFilter{})
			ok(t, err)
			all, err := tx.Deliveries().List(ctx, store.DeliveryFilter{IncludeDone: true})
			ok(t, err)
			if got, want := deliveryIDs(pending), []string{"d2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("List pending = %v, want %v", got, want)
			}
			if len(all) != 3 || all[0].State() != domain.DeliveryDelivered || all[2].State() != domain.DeliveryFailed || all[2].LastError != "refused by the site" {
				t.Errorf("List all = %+v", all)
			}
			return nil
		})
	}},
	{"FailPending", func(t *testing.T, s store.Store) {
		enqueue(t, s, newDelivery("d1", "site1", "k1"), newDelivery("d2", "site1", "k2"), newDelivery("d3", "site2", "k1"))
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Deliveries().Delivered(ctx, "d1", at(time.Minute)))
			n, err := tx.Deliveries().FailPending(ctx, "site1", at(time.Hour), "provider removed")
			ok(t, err)
			if n != 1 {
				t.Errorf("FailPending = %d, want 1 (d1 was delivered)", n)
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for id, want := range map[string]string{"d1": domain.DeliveryDelivered, "d2": domain.DeliveryFailed, "d3": domain.DeliveryPending} {
				d, err := tx.Deliveries().Get(ctx, id)
				ok(t, err)
				if d.State() != want {
					t.Errorf("%s is %s, want %s", id, d.State(), want)
				}
			}
			return nil
		})
	}},
	{"DeleteDone", func(t *testing.T, s store.Store) {
		enqueue(t, s, newDelivery("d1", "site1", "k1"), newDelivery("d2", "site1", "k2"), newDelivery("d3", "site1", "k3"), newDelivery("d4", "site1", "k4"))
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Deliveries().Delivered(ctx, "d1", at(time.Hour)))
			ok(t, tx.Deliveries().Fail(ctx, "d2", at(time.Hour), "refused"))
			ok(t, tx.Deliveries().Delivered(ctx, "d3", at(3*time.Hour)))
			n, err := tx.Deliveries().DeleteDone(ctx, at(2*time.Hour))
			ok(t, err)
			if n != 2 {
				t.Errorf("DeleteDone = %d, want 2", n)
			}
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Deliveries().List(ctx, store.DeliveryFilter{IncludeDone: true})
			ok(t, err)
			if got, want := deliveryIDs(all), []string{"d3", "d4"}; !reflect.DeepEqual(got, want) {
				t.Errorf("left %v, want %v (the pending one and the recent one)", got, want)
			}
			return nil
		})
	}},
	{"ConcurrentClaimsOneWins", func(t *testing.T, s store.Store) {
		enqueue(t, s, newDelivery("d1", "site1", "k1"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 4 {
			wg.Go(func() {
				ctx := ctxFor(t)
				err := s.Update(ctx, func(tx store.Tx) error {
					won, err := tx.Deliveries().Claim(ctx, "d1", at(0), at(time.Minute))
					if won {
						mu.Lock()
						wins++
						mu.Unlock()
					}
					return err
				})
				if err != nil && !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("claim %d: %v", i, fmt.Sprint(err))
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d claims won, want 1", wins)
		}
	}},
}
