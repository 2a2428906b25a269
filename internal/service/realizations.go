package service

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/alloc"
	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

var (
	opReap               = "trellis.reaper/ReleaseExpired"
	realizeAttempts      = 5
	realizationIDEncoder = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

func newRealizationID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "r-" + realizationIDEncoder.EncodeToString(b[:])
}

// RealizationView is a realization with the grants on it and, when its
// sites materialize it, its materialization.
type RealizationView struct {
	*domain.Realization
	Grants          []*domain.Grant
	Materialization *domain.Materialization
}

// leaseFor checks a requested lease: zero means the default.
func (s *Testbed) leaseFor(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return s.cfg.LeaseDefault, nil
	case d < time.Minute:
		return 0, domain.Invalid("lease", "lease.min", "a lease is at least one minute")
	case d > s.cfg.LeaseMax:
		return 0, domain.Invalid("lease", "lease.max", fmt.Sprintf("a lease is at most %s on this testbed", s.cfg.LeaseMax))
	}
	return d, nil
}

// layoutOf returns the elements of an experiment's topology: the
// composition of its layout aspects.
func (s *Testbed) layoutOf(ctx context.Context, experiment string) ([]aspect.Element, error) {
	var all []*domain.Aspect
	err := s.view(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.Experiments().Aspects(ctx, experiment, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	els, err := s.composed(aspect.TypeLayout, all)
	if err == nil && els == nil {
		return nil, domain.FailedPrecondition("experiment %s has no layout aspect to realize: add one (trellis experiment aspect add %s layout main FILE)", experiment, experiment)
	}
	return els, err
}

// Realize binds a distinct available resource to every node of the
// experiment's layout, all in one transaction, or fails saying which node
// could not be placed. Resources another realization takes meanwhile make
// the attempt start over with a fresh view of the pool, a few times.
func (s *Testbed) Realize(ctx context.Context, p *auth.Principal, experiment, project string, lease time.Duration) (*RealizationView, error) {
	if err := s.authorize(ctx, p, opRealizationsRealize, policy.On("experiment", experiment).And("project", project)); err != nil {
		return nil, err
	}
	lease, err := s.leaseFor(lease)
	if err != nil {
		return nil, err
	}
	elements, err := s.layoutOf(ctx, experiment)
	if err != nil {
		return nil, err
	}
	reqs := make([]alloc.Request, len(elements))
	for i, e := range elements {
		reqs[i] = alloc.Request{Name: e.Name, Constraints: e.Constraints}
	}
	id := newRealizationID()
	var r *domain.Realization
	rec := &record{op: opRealizationsRealize.Name, actor: p, object: domain.RealizationObject(id), detail: fmt.Sprintf("experiment=%s project=%s nodes=%d lease=%s", experiment, project, len(elements), lease)}
	// Reading the pool, choosing and binding happen in one transaction: on
	// SQLite the single writer makes it exclusive; on PostgreSQL a
	// concurrent realization makes one of the two fail to serialize, and the
	// store runs it again on a fresh view of the pool. The unique index on
	// live bindings stands behind both.
	var shortfall error
	for attempt := 1; ; attempt++ {
		err = s.update(ctx, rec, func(tx store.Tx) error {
			shortfall = nil
			avail, err := tx.Resources().Available(ctx, domain.KindNode)
			if err != nil {
				return err
			}
			pool := make([]domain.Resource, len(avail))
			for i, res := range avail {
				pool[i] = *res
			}
			assignment, err := alloc.Allocate(reqs, pool)
			if err != nil {
				shortfall = err
				return err
			}
			now := s.now()
			r = &domain.Realization{
				ID: id, Experiment: experiment, Project: project, Owner: p.UID,
				State: domain.RealizationAllocated, LeaseExpires: now.Add(lease), CreatedAt: now,
			}
			for _, e := range elements {
				r.Bindings = append(r.Bindings, domain.Binding{Element: e.Name, Resource: assignment[e.Name]})
			}
			if err := tx.Realizations().Create(ctx, r); err != nil {
				return err
			}
			if err := s.materialize(ctx, tx, r, domain.DeliveryMaterialize); err != nil {
				return err
			}
			return tx.Changes().Append(ctx, store.ChangeRealization, id)
		})
		switch {
		case err == nil:
			return s.getRealization(ctx, id)
		case shortfall != nil:
			s.auditRefusal(ctx, opRealizationsRealize.Name, p, domain.ExperimentObject(experiment), err, "allocation failed")
			return nil, err
		case domain.HasCode(err, domain.CodeFailedPrecondition) && attempt < realizeAttempts:
			// A resource was taken between our read and our insert (read
			// committed isolation let both through): choose again.
			continue
		}
		return nil, err
	}
}

// GetRealization returns a realization with its bindings and grants.
func (s *Testbed) GetRealization(ctx context.Context, p *auth.Principal, id string) (*RealizationView, error) {
	if err := s.authorize(ctx, p, opRealizationsGetRealization, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getRealization(ctx, id)
}

func (s *Testbed) getRealization(ctx context.Context, id string) (*RealizationView, error) {
	var v *RealizationView
	err := s.view(ctx, func(tx store.Tx) error {
		r, err := tx.Realizations().Get(ctx, id)
		if err != nil {
			return err
		}
		v = &RealizationView{Realization: r}
		if v.Grants, err = tx.Grants().List(ctx, domain.RealizationObject(id)); err != nil {
			return err
		}
		v.Materialization, err = materializationOf(ctx, tx, id)
		return err
	})
	return v, err
}

// ListRealizations lists the realizations p may read; ended ones only
// when asked.
func (s *Testbed) ListRealizations(ctx context.Context, p *auth.Principal, includeEnded bool, pageSize int32, pageToken string) ([]*RealizationView, string, error) {
	if err := s.authorize(ctx, p, opRealizationsListRealizations, policy.None); err != nil {
		return nil, "", err
	}
	visible, err := s.visible(ctx, p, opRealizationsListRealizations)
	if err != nil {
		return nil, "", err
	}
	return s.listRealizations(ctx, objectIDs(visible), includeEnded, pageSize, pageToken)
}

// ListAllRealizations lists every realization (an administrator's view);
// ended ones only when asked.
func (s *Testbed) ListAllRealizations(ctx context.Context, p *auth.Principal, includeEnded bool, pageSize int32, pageToken string) ([]*RealizationView, string, error) {
	if err := s.authorize(ctx, p, opRealizationsListAllRealizations, policy.None); err != nil {
		return nil, "", err
	}
	return s.listRealizations(ctx, nil, includeEnded, pageSize, pageToken)
}

// listRealizations lists a page of realizations among ids (nil: all).
func (s *Testbed) listRealizations(ctx context.Context, ids []string, includeEnded bool, pageSize int32, pageToken string) ([]*RealizationView, string, error) {
	pg, err := stringPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	f := store.RealizationFilter{IDs: ids, IncludeEnded: includeEnded}
	var rs []*domain.Realization
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		rs, next, err = readPage(pg, func(after string, n int) ([]*domain.Realization, error) {
			f.Page = store.Page{After: after, Limit: n}
			return tx.Realizations().List(ctx, f)
		}, func(r *domain.Realization) string { return r.ID }, nil)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]*RealizationView, 0, len(rs))
	err = s.view(ctx, func(tx store.Tx) error {
		for _, r := range rs {
			m, err := materializationOf(ctx, tx, r.ID)
			if err != nil {
				return err
			}
			out = append(out, &RealizationView{Realization: r, Materialization: m})
		}
		return nil
	})
	return out, next, err
}

// Renew extends a live realization's lease from now.
func (s *Testbed) Renew(ctx context.Context, p *auth.Principal, id string, lease time.Duration) (*RealizationView, error) {
	if err := s.authorize(ctx, p, opRealizationsRenew, policy.On("id", id)); err != nil {
		return nil, err
	}
	lease, err := s.leaseFor(lease)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, &record{op: opRealizationsRenew.Name, actor: p, object: domain.RealizationObject(id), detail: "lease=" + lease.String()}, func(tx store.Tx) error {
		if err := realizationKind.exists(ctx, tx, id); err != nil {
			return err
		}
		return tx.Realizations().SetLease(ctx, id, s.now().Add(lease))
	})
	if err != nil {
		return nil, err
	}
	return s.getRealization(ctx, id)
}

// ChangeBindings binds elements to other or more resources: each must be
// an available node, bound nowhere else (the store guarantees the latter).
func (s *Testbed) ChangeBindings(ctx context.Context, p *auth.Principal, id string, bindings []domain.Binding) (*RealizationView, error) {
	if err := s.authorize(ctx, p, opRealizationsChangeBindings, policy.On("id", id)); err != nil {
		return nil, err
	}
	if len(bindings) == 0 {
		return nil, domain.Invalid("bindings", "bindings.required", "name at least one binding")
	}
	var pairs []string
	for i, b := range bindings {
		if b.Element == "" || b.Resource == "" {
			return nil, domain.Invalid(fmt.Sprintf("bindings[%d]", i), "binding.incomplete", "a binding names an element and a resource")
		}
		pairs = append(pairs, b.Element+"="+b.Resource)
	}
	err := s.update(ctx, &record{op: opRealizationsChangeBindings.Name, actor: p, object: domain.RealizationObject(id), detail: strings.Join(pairs, ",")}, func(tx store.Tx) error {
		rz, err := tx.Realizations().Get(ctx, id)
		if err != nil {
			return err
		}
		// The elements are the layout's, fixed when it was realized (every
		// element was bound then): a binding may move, not invent one.
		elements := make([]string, 0, len(rz.Bindings))
		for _, b := range rz.Bindings {
			elements = append(elements, b.Element)
		}
		for i, b := range bindings {
			// An ended realization holds no bindings: Bind says it ended.
			if rz.State.Live() && !slices.Contains(elements, b.Element) {
				return domain.Invalid(fmt.Sprintf("bindings[%d].element", i), "element.unknown",
					fmt.Sprintf("the realization's layout has no element %q; it has %s", b.Element, strings.Join(elements, ", ")))
			}
		}
		for _, b := range bindings {
			r, err := tx.Resources().Get(ctx, b.Resource)
			if err != nil {
				return err
			}
			switch {
			case r.Kind != domain.KindNode:
				return domain.FailedPrecondition("resource %s is a %s, not a node", b.Resource, r.Kind)
			case r.State != domain.ResourceAvailable:
				return domain.FailedPrecondition("resource %s is %s", b.Resource, r.State)
			case r.Realization != "" && r.Realization != id:
				return domain.FailedPrecondition("resource %s is bound to another realization", b.Resource)
			}
		}
		if err := tx.Realizations().Bind(ctx, id, bindings); err != nil {
			return err
		}
		if rz, err = tx.Realizations().Get(ctx, id); err != nil {
			return err
		}
		if err := s.materialize(ctx, tx, rz, domain.DeliveryChange); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeRealization, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getRealization(ctx, id)
}

// ChangeRealizationAccess sets a circle's rights on a realization.
func (s *Testbed) ChangeRealizationAccess(ctx context.Context, p *auth.Principal, id, circle string, rights []string) ([]*domain.Grant, error) {
	if err := s.authorize(ctx, p, opRealizationsChangeAccess, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.changeAccess(ctx, p, realizationKind, opRealizationsChangeAccess.Name, id, circle, rights)
}

// Release ends a realization and frees its resources.
func (s *Testbed) Release(ctx context.Context, p *auth.Principal, id string) (*RealizationView, error) {
	if err := s.authorize(ctx, p, opRealizationsRelease, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.end(ctx, &record{op: opRealizationsRelease.Name, actor: p, object: domain.RealizationObject(id)}, id, "")
}

// ForceRelease is an admin ending anyone's realization; its owner is told.
func (s *Testbed) ForceRelease(ctx context.Context, p *auth.Principal, id, reason string) (*RealizationView, error) {
	if err := s.authorize(ctx, p, opRealizationsForceRelease, policy.None); err != nil {
		return nil, err
	}
	text := fmt.Sprintf("%s released your realization %s", p.UID, id)
	if reason != "" {
		text += ": " + reason
	}
	return s.end(ctx, &record{op: opRealizationsForceRelease.Name, actor: p, object: domain.RealizationObject(id), detail: reason}, id, text)
}

// end releases a live realization; tell, when set, is sent to its owner.
// A realization its sites materialize is dematerialized first: its
// resources are freed when the sites confirm (ReportState).
func (s *Testbed) end(ctx context.Context, rec *record, id, tell string) (*RealizationView, error) {
	err := s.update(ctx, rec, func(tx store.Tx) error {
		r, err := tx.Realizations().Get(ctx, id)
		if err != nil {
			return err
		}
		if !r.State.Live() {
			return tx.Realizations().End(ctx, id, domain.RealizationReleased, s.now()) // says it ended
		}
		waiting, err := s.dematerialize(ctx, tx, r)
		if errors.Is(err, errAlreadyReleasing) && rec.op == opRealizationsForceRelease.Name {
			// An admin gives up on sites that do not confirm: the
			// realization ends; resources the silence made suspect stay
			// so until an admin says they are available.
			waiting, err = false, s.abandonMaterialization(ctx, tx, id)
		}
		if err != nil {
			return err
		}
		if waiting {
			rec.detail = strings.TrimSpace(rec.detail + " (dematerializing at its sites)")
		} else if err := tx.Realizations().End(ctx, id, domain.RealizationReleased, s.now()); err != nil {
			return err
		}
		if tell != "" && r.Owner != actorUID(rec.actor) {
			if err := s.notify(ctx, tx, &domain.Notification{Recipient: r.Owner, Sender: actorUID(rec.actor), Text: tell}); err != nil {
				return err
			}
		}
		return tx.Changes().Append(ctx, store.ChangeRealization, id)
	})
	if errors.Is(err, errAlreadyReleasing) {
		err = nil // its sites are removing it already
	}
	if err != nil {
		return nil, err
	}
	return s.getRealization(ctx, id)
}

// ReleaseExpired releases realizations whose lease ended. One replica runs
// it at a time (a lease of its own, see package exclusive).
func (s *Testbed) releaseExpired(ctx context.Context) (int, error) {
	var ids []string
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		ids, err = tx.Realizations().Expired(ctx, s.now(), 100)
		return err
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		_, err := s.end(ctx, &record{op: opReap, object: domain.RealizationObject(id), detail: "lease expired"}, id,
			fmt.Sprintf("the lease of your realization %s expired: it was released", id))
		if err != nil && !domain.HasCode(err, domain.CodeFailedPrecondition) {
			return n, err
		}
		// (A realization its sites are removing is listed again until
		// they confirm; end does nothing then.)
		if err == nil {
			n++
		}
	}
	return n, nil
}
