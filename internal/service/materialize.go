package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Materialization at the centre (issue 12): a realization whose resources
// belong to registered sites is made by those sites. Realize queues a
// materialize delivery for each site, ChangeBindings a change, release a
// dematerialize; the sites report each node's and link's state
// (ReportState, signed with their own keys) and the centre derives the
// realization's state:
//
//	bound -> materializing -> ready (-> changing -> ready) -> dematerializing -> released
//	                       \-> failed (a reason per node)
//
// Resources are freed only when every site confirms their removal. A site
// that leaves an operation unanswered past Config.SiteSilenceLimit makes
// the realization suspect and its resources too: shown to admins, never
// bound again until the site answers or an admin says they are available.
// Realizations none of whose resources belong to a registered site have no
// materialization and behave as before: bound, and freed at once.

var opSilence = "trellis.reaper/SiteSilent"

// MaterializePayload is a materialize or change delivery's: the plan's
// input (the layout and this site's bindings) and the generation the
// site's reports answer. A change with no bindings removes the site's part.
type MaterializePayload struct {
	Realization string           `json:"realization"`
	Generation  int64            `json:"generation"`
	Layout      LayoutPayload    `json:"layout"`
	Bindings    []domain.Binding `json:"bindings"`
}

// LayoutPayload is the experiment's whole topology.
type LayoutPayload struct {
	Nodes []string    `json:"nodes"`
	Links [][2]string `json:"links"`
}

// DematerializePayload is a dematerialize delivery's.
type DematerializePayload struct {
	Realization string `json:"realization"`
	Generation  int64  `json:"generation"`
}

// errAlreadyReleasing ends a release of a realization whose sites are
// removing it already: nothing to write.
var errAlreadyReleasing = errors.New("already dematerializing")

// sitesOf groups bindings by the registered site whose resource each
// binds; resources of no registered site are left out. A provider an admin
// added whose site never registered its key (`trellis provider init`) is
// an inventory only: no module runs there to materialize anything, so its
// realizations stay bound as before, rather than wait on a site that
// cannot answer.
func sitesOf(ctx context.Context, tx store.Tx, bindings []domain.Binding) (map[string][]domain.Binding, error) {
	known := map[string]bool{}
	out := map[string][]domain.Binding{}
	for _, b := range bindings {
		res, err := tx.Resources().Get(ctx, b.Resource)
		if err != nil {
			return nil, err
		}
		reg, seen := known[res.Provider]
		if !seen {
			pr, err := tx.Providers().Get(ctx, res.Provider)
			switch {
			case err == nil:
				reg = len(pr.PublicKey) > 0
			case !domain.HasCode(err, domain.CodeNotFound):
				return nil, err
			}
			known[res.Provider] = reg
		}
		if reg {
			out[res.Provider] = append(out[res.Provider], b)
		}
	}
	return out, nil
}

// layoutPayload reads the experiment's whole topology.
func layoutPayload(ctx context.Context, tx store.Tx, experiment string) (LayoutPayload, error) {
	all, err := tx.Experiments().Aspects(ctx, experiment, true)
	if err != nil {
		return LayoutPayload{}, err
	}
	var parts []aspect.Part
	for _, a := range all {
		if a.Type == aspect.TypeLayout {
			parts = append(parts, aspect.Part{Name: a.Name, Content: a.Content})
		}
	}
	var out LayoutPayload
	if len(parts) == 0 {
		return out, nil
	}
	l, err := aspect.ComposedLayout(parts)
	if err != nil {
		return out, err
	}
	for _, n := range l.Nodes {
		out.Nodes = append(out.Nodes, n.Name)
	}
	for _, k := range l.Links {
		out.Links = append(out.Links, [2]string{k.A, k.B})
	}
	return out, nil
}

// linkName is materialize.LinkName: the point-to-point link between a and
// b, in either order.
func linkName(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "~" + b
}

// elementProviders lists the sites m's elements are at.
func elementProviders(m *domain.Materialization) []string {
	set := map[string]bool{}
	for _, e := range m.Elements {
		set[e.Provider] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// materialize asks the sites of r's resources to make (kind materialize)
// or change (kind change) its environment, in tx: the materialization's
// state and elements and the deliveries, with the operation that causes
// them. A realization with no resource at a registered site is left alone.
func (s *Testbed) materialize(ctx context.Context, tx store.Tx, r *domain.Realization, kind string) error {
	sites, err := sitesOf(ctx, tx, r.Bindings)
	if err != nil {
		return err
	}
	m, err := tx.Materializations().Get(ctx, r.ID)
	switch {
	case domain.HasCode(err, domain.CodeNotFound) && len(sites) == 0:
		return nil
	case domain.HasCode(err, domain.CodeNotFound):
		m = &domain.Materialization{Realization: r.ID, State: domain.MaterializationBound}
	case err != nil:
		return err
	case m.State == domain.MaterializationDematerializing || m.Ended():
		return domain.FailedPrecondition("realization %s is being released", r.ID)
	default:
		m.State = domain.MaterializationChanging
	}
	lay, err := layoutPayload(ctx, tx, r.Experiment)
	if err != nil {
		return err
	}
	now := s.now()
	prev := map[string]domain.ElementState{}
	for _, e := range m.Elements {
		prev[e.Kind+"/"+e.Name] = e
	}
	involved := map[string]bool{}
	for site := range sites {
		involved[site] = true
	}
	for _, site := range elementProviders(m) {
		involved[site] = true
	}
	m.Generation++
	m.Reason, m.WaitingSince, m.UpdatedAt, m.Elements = "", now, now, nil
	if err := tx.Materializations().Put(ctx, m); err != nil {
		return err
	}
	for _, site := range slices.Sorted(maps.Keys(involved)) {
		bs := sites[site]
		here := map[string]bool{}
		var els []domain.ElementState
		for _, b := range bs {
			here[b.Element] = true
			els = append(els, keepOrPending(prev, domain.ElementNode, b.Element, site, now))
		}
		for _, k := range lay.Links {
			if here[k[0]] && here[k[1]] {
				els = append(els, keepOrPending(prev, domain.ElementLink, linkName(k[0], k[1]), site, now))
			}
		}
		if err := tx.Materializations().ReplaceElements(ctx, r.ID, site, els); err != nil {
			return err
		}
		key := fmt.Sprintf("%s:%s:%d", kind, r.ID, m.Generation)
		if err := s.enqueueDelivery(ctx, tx, site, kind, key, MaterializePayload{Realization: r.ID, Generation: m.Generation, Layout: lay, Bindings: bs}); err != nil {
			return err
		}
	}
	return nil
}

func keepOrPending(prev map[string]domain.ElementState, kind, name, site string, now time.Time) domain.ElementState {
	if e, ok := prev[kind+"/"+name]; ok && e.Provider == site {
		return e
	}
	return domain.ElementState{Kind: kind, Name: name, Provider: site, State: domain.ElementPending, UpdatedAt: now}
}

// dematerialize starts the release of r at its sites, in tx: false when r
// has no materialization (the caller frees its resources at once), and
// errAlreadyReleasing when its sites are removing it already.
func (s *Testbed) dematerialize(ctx context.Context, tx store.Tx, r *domain.Realization) (bool, error) {
	m, err := tx.Materializations().Get(ctx, r.ID)
	switch {
	case domain.HasCode(err, domain.CodeNotFound):
		return false, nil
	case err != nil:
		return false, err
	case m.Ended():
		return false, nil
	case m.State == domain.MaterializationDematerializing:
		return true, errAlreadyReleasing
	}
	now := s.now()
	m.Generation++
	m.State, m.Reason, m.WaitingSince, m.UpdatedAt = domain.MaterializationDematerializing, "", now, now
	if err := tx.Materializations().Put(ctx, m); err != nil {
		return false, err
	}
	sites, err := sitesOf(ctx, tx, r.Bindings)
	if err != nil {
		return false, err
	}
	involved := map[string]bool{}
	for site := range sites {
		involved[site] = true
	}
	for _, site := range elementProviders(m) {
		involved[site] = true
	}
	for _, site := range slices.Sorted(maps.Keys(involved)) {
		key := fmt.Sprintf("dematerialize:%s:%d", r.ID, m.Generation)
		if err := s.enqueueDelivery(ctx, tx, site, domain.DeliveryDematerialize, key, DematerializePayload{Realization: r.ID, Generation: m.Generation}); err != nil {
			return false, err
		}
	}
	if len(involved) == 0 {
		// Nothing at any site any more: released at once.
		return false, nil
	}
	return true, tx.Realizations().SetState(ctx, r.ID, domain.RealizationReleasing)
}

// abandonMaterialization ends the materialization of a realization an
// admin force-releases while its sites are removing it.
func (s *Testbed) abandonMaterialization(ctx context.Context, tx store.Tx, id string) error {
	m, err := tx.Materializations().Get(ctx, id)
	if err != nil {
		return err
	}
	m.State, m.Reason, m.WaitingSince, m.UpdatedAt = domain.MaterializationReleased, "force-released before its sites confirmed", time.Time{}, s.now()
	return tx.Materializations().Put(ctx, m)
}

// deliveryRefused fails the materialization a site refused to make or
// change (it has no driver, or cannot build the plan), in the transaction
// that fails the delivery: the realization does not wait for a site that
// said no. A refused dematerialize leaves it waiting (and, past the limit,
// suspect): its resources are not known to be free.
func (s *base) deliveryRefused(ctx context.Context, tx store.Tx, d *domain.Delivery, why string) error {
	if d.Kind != domain.DeliveryMaterialize && d.Kind != domain.DeliveryChange {
		return nil
	}
	var p MaterializePayload
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return nil
	}
	m, err := tx.Materializations().Get(ctx, p.Realization)
	if domain.HasCode(err, domain.CodeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case m.Generation != p.Generation:
		return nil // superseded
	case m.State == domain.MaterializationBound, m.State == domain.MaterializationMaterializing, m.State == domain.MaterializationChanging:
	default:
		return nil
	}
	m.State, m.Reason, m.WaitingSince, m.UpdatedAt = domain.MaterializationFailed, "site "+d.Provider+" refused the "+d.Kind+": "+why, time.Time{}, s.now()
	if err := tx.Materializations().Put(ctx, m); err != nil {
		return err
	}
	return tx.Changes().Append(ctx, store.ChangeRealization, p.Realization)
}

// SiteReport is what a site reports of one realization.
type SiteReport struct {
	Realization string
	Operation   string // materialize, change or dematerialize
	Generation  int64
	Elements    []domain.ElementState
	Done        bool
	Error       string
}

// maxReportElements bounds one report.
const maxReportElements = 10_000

// ReportState is a site's report of the elements it materializes for a
// realization. The caller is the site (its own key signed the request); it
// may report only for realizations bound to its own resources, and only
// elements bound there. Every refusal is audited.
func (s *Testbed) ReportState(ctx context.Context, p *auth.Principal, rep SiteReport) (*domain.Materialization, error) {
	if err := s.authorize(ctx, p, opRealizationsReportState, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	if rep.Realization == "" || len(rep.Realization) > 64 {
		vs.Add("realization", "realization.required", "name the realization")
	}
	switch rep.Operation {
	case domain.DeliveryMaterialize, domain.DeliveryChange, domain.DeliveryDematerialize:
	default:
		vs.Add("operation", "operation.unknown", "materialize, change or dematerialize")
	}
	if len(rep.Elements) > maxReportElements {
		vs.Add("elements", "elements.max", fmt.Sprintf("at most %d elements a report", maxReportElements))
	}
	for i, e := range rep.Elements {
		f := fmt.Sprintf("elements[%d]", i)
		if e.Kind != domain.ElementNode && e.Kind != domain.ElementLink {
			vs.Add(f+".kind", "kind.unknown", "node or link")
		}
		switch e.State {
		case domain.ElementPending, domain.ElementCreating, domain.ElementReady, domain.ElementFailed, domain.ElementRemoving, domain.ElementRemoved:
		default:
			vs.Add(f+".state", "state.unknown", "pending, creating, ready, failed, removing or removed")
		}
		if e.Name == "" || len(e.Name) > 200 || len(e.Reason) > 1000 || len(e.Address) > 1000 {
			vs.Add(f, "element.size", "a name of 1 to 200 characters; reason and address at most 1000")
		}
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	site := p.Provider
	object := domain.RealizationObject(rep.Realization)
	var refusal string
	var out *domain.Materialization
	err := s.update(ctx, &record{op: opRealizationsReportState.Name, actor: p, object: object, detail: fmt.Sprintf("%s generation %d done=%t", rep.Operation, rep.Generation, rep.Done)}, func(tx store.Tx) error {
		if err := tx.Services().UseAssertion(ctx, auth.ProviderOf(site), p.AssertionID, p.TokenExpires.Add(siteLeeway)); err != nil {
			if domain.HasCode(err, domain.CodeAlreadyExists) {
				refusal = "site request replayed"
				return domain.Unauthenticated("the site's request JWT was used already (jti %q): sign a new one per request", p.AssertionID)
			}
			return err
		}
		r, err := tx.Realizations().Get(ctx, rep.Realization)
		if domain.HasCode(err, domain.CodeNotFound) {
			refusal = "unknown realization"
			return err
		}
		if err != nil {
			return err
		}
		m, err := tx.Materializations().Get(ctx, r.ID)
		if domain.HasCode(err, domain.CodeNotFound) {
			refusal = "realization not materialized by sites"
			return domain.PermissionDenied("realization %s is not bound to resources of site %s", r.ID, site)
		}
		if err != nil {
			return err
		}
		sites, err := sitesOf(ctx, tx, r.Bindings)
		if err != nil {
			return err
		}
		mine := map[string]bool{}
		for _, b := range sites[site] {
			mine[b.Element] = true
		}
		if len(mine) == 0 && !slices.Contains(elementProviders(m), site) {
			// A site speaking for another site's realization: refused.
			refusal = "realization of another site"
			return domain.PermissionDenied("realization %s is not bound to resources of site %s", r.ID, site)
		}
		for _, e := range rep.Elements {
			ok := mine[e.Name]
			if e.Kind == domain.ElementLink {
				a, b, _ := strings.Cut(e.Name, "~")
				ok = mine[a] && mine[b]
			}
			if !ok && e.State != domain.ElementRemoved {
				refusal = "element of another site"
				return domain.PermissionDenied("%s %s of realization %s is not bound to resources of site %s", e.Kind, e.Name, r.ID, site)
			}
		}
		out = m
		if rep.Generation < m.Generation || m.Ended() {
			return nil // stale: an answer to an operation since superseded
		}
		now := s.now()
		els := make([]domain.ElementState, 0, len(rep.Elements))
		for _, e := range rep.Elements {
			if e.State == domain.ElementRemoved && rep.Operation != domain.DeliveryDematerialize {
				continue // gone from the plan by a change
			}
			e.Provider, e.UpdatedAt = site, now
			if rep.Operation == domain.DeliveryDematerialize && rep.Done && rep.Error == "" {
				e.State, e.Reason = domain.ElementRemoved, ""
			}
			els = append(els, e)
		}
		if rep.Operation == domain.DeliveryDematerialize && rep.Done && rep.Error == "" {
			// Everything of this site is gone, reported or not.
			for _, e := range m.Elements {
				if e.Provider == site && !slices.ContainsFunc(els, func(x domain.ElementState) bool { return x.Kind == e.Kind && x.Name == e.Name }) {
					e.State, e.Reason, e.UpdatedAt = domain.ElementRemoved, "", now
					els = append(els, e)
				}
			}
		}
		if err := tx.Materializations().ReplaceElements(ctx, r.ID, site, els); err != nil {
			return err
		}
		if m, err = tx.Materializations().Get(ctx, r.ID); err != nil {
			return err
		}
		if m.Suspect {
			// The site answered: its resources are no longer suspect.
			m.Suspect = false
			if err := s.setResourceStates(ctx, tx, r, site, domain.ResourceSuspect, domain.ResourceAvailable); err != nil {
				return err
			}
		}
		m.UpdatedAt, m.WaitingSince = now, now
		s.derive(m, rep)
		if m.State == domain.MaterializationReleased {
			m.WaitingSince = time.Time{}
			if err := tx.Realizations().End(ctx, r.ID, domain.RealizationReleased, now); err != nil {
				return err
			}
		}
		if m.State == domain.MaterializationReady || m.State == domain.MaterializationFailed {
			m.WaitingSince = time.Time{}
		}
		if err := tx.Materializations().Put(ctx, m); err != nil {
			return err
		}
		out = m
		return tx.Changes().Append(ctx, store.ChangeRealization, r.ID)
	})
	if refusal != "" {
		s.auditRefusal(ctx, opRealizationsReportState.Name, p, object, err, refusal)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// derive sets m's state from its elements after a report.
func (s *Testbed) derive(m *domain.Materialization, rep SiteReport) {
	if m.State == domain.MaterializationDematerializing {
		if rep.Done && rep.Error != "" {
			// Left dematerializing: past the silence limit it is suspect,
			// and an admin may force its release.
			m.Reason = "the site failed to remove it: " + rep.Error
		}
		for _, e := range m.Elements {
			if e.State != domain.ElementRemoved {
				return
			}
		}
		m.State = domain.MaterializationReleased
		return
	}
	var failed []string
	ready := true
	for _, e := range m.Elements {
		if e.State == domain.ElementFailed {
			failed = append(failed, fmt.Sprintf("%s %s: %s", e.Kind, e.Name, e.Reason))
		}
		ready = ready && e.State == domain.ElementReady
	}
	switch {
	case len(failed) > 0:
		m.State, m.Reason = domain.MaterializationFailed, strings.Join(failed, "; ")
	case rep.Done && rep.Error != "":
		m.State, m.Reason = domain.MaterializationFailed, "the site failed: "+rep.Error
	case ready:
		m.State, m.Reason = domain.MaterializationReady, ""
	case m.State == domain.MaterializationBound:
		m.State = domain.MaterializationMaterializing
	}
}

// setResourceStates moves r's resources at site in state from to state to.
func (s *Testbed) setResourceStates(ctx context.Context, tx store.Tx, r *domain.Realization, site string, from, to domain.ResourceState) error {
	for _, b := range r.Bindings {
		res, err := tx.Resources().Get(ctx, b.Resource)
		if err != nil {
			return err
		}
		if (site == "" || res.Provider == site) && res.State == from {
			if err := tx.Resources().SetState(ctx, b.Resource, to); err != nil {
				return err
			}
		}
	}
	return nil
}

// markSilent marks suspect the realizations whose sites left an operation
// unanswered past the silence limit, with their resources at registered
// sites; admins see it (ListAllRealizations, the audit record).
func (s *Testbed) markSilent(ctx context.Context) (int, error) {
	ids, err := viewOf(ctx, s.base, func(tx store.Tx) ([]string, error) {
		return tx.Materializations().Silent(ctx, s.now().Add(-s.cfg.SiteSilenceLimit), 100)
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		err := s.update(ctx, &record{op: opSilence, object: domain.RealizationObject(id), detail: "no answer from its sites within " + s.cfg.SiteSilenceLimit.String() + ": resources suspect"}, func(tx store.Tx) error {
			m, err := tx.Materializations().Get(ctx, id)
			if err != nil {
				return err
			}
			r, err := tx.Realizations().Get(ctx, id)
			if err != nil {
				return err
			}
			m.Suspect, m.UpdatedAt = true, s.now()
			if err := tx.Materializations().Put(ctx, m); err != nil {
				return err
			}
			for _, site := range elementProviders(m) {
				if err := s.setResourceStates(ctx, tx, r, site, domain.ResourceAvailable, domain.ResourceSuspect); err != nil {
					return err
				}
			}
			return tx.Changes().Append(ctx, store.ChangeRealization, id)
		})
		if err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// materializationOf reads r's materialization, nil when it has none.
func materializationOf(ctx context.Context, tx store.Tx, id string) (*domain.Materialization, error) {
	m, err := tx.Materializations().Get(ctx, id)
	if domain.HasCode(err, domain.CodeNotFound) {
		return nil, nil
	}
	return m, err
}

// WatchRealization calls send with the realization as it is, then again
// at each change of it, until it has ended (released or failed, its
// materialization included), ctx ends, or a call fails.
func (s *Testbed) WatchRealization(ctx context.Context, p *auth.Principal, id string, send func(*RealizationView) error) error {
	if err := s.authorize(ctx, p, opRealizationsWatch, policy.On("id", id)); err != nil {
		return err
	}
	// Registered before the first read, so no change in between is missed.
	wake := s.realizationWatchers.add(id)
	defer s.realizationWatchers.remove(id, wake)
	var last string
	for {
		v, err := s.getRealization(ctx, id)
		if err != nil {
			return err
		}
		if fp := fingerprint(v); fp != last {
			last = fp
			if err := send(v); err != nil {
				return err
			}
		}
		if watchEnded(v) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// watchEnded says a watch has nothing more to show: the realization ended,
// or its materialization failed.
func watchEnded(v *RealizationView) bool {
	if m := v.Materialization; m != nil {
		return m.State == domain.MaterializationReleased || m.State == domain.MaterializationFailed
	}
	return !v.State.Live()
}

// fingerprint is what a watcher has seen of v.
func fingerprint(v *RealizationView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v|%d", v.State, v.LeaseExpires, len(v.Bindings))
	for _, x := range v.Bindings {
		fmt.Fprintf(&b, "|%s=%s", x.Element, x.Resource)
	}
	if m := v.Materialization; m != nil {
		fmt.Fprintf(&b, "|%s|%s|%t", m.State, m.Reason, m.Suspect)
		for _, e := range m.Elements {
			fmt.Fprintf(&b, "|%s/%s@%s:%s:%s:%s", e.Kind, e.Name, e.Provider, e.State, e.Reason, e.Address)
		}
	}
	return b.String()
}

// MarkSilentSites marks suspect the realizations whose sites stayed
// silent past the limit (the reaper's work; tests call it).
func (s *Service) MarkSilentSites(ctx context.Context) (int, error) {
	return s.Testbed.markSilent(ctx)
}
