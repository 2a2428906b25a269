package service

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/alloc"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

const (
	maxAttributes     = 64
	maxAttributeValue = 256
)

// RegisterResource adds a resource to the inventory, available.
func (s *Testbed) RegisterResource(ctx context.Context, p *auth.Principal, r *domain.Resource) (*store.BoundResource, error) {
	if err := s.authorize(ctx, p, opResourcesRegisterResource, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	if err := vs.Check(domain.ValidateResourceName("name", r.Name)); err != nil {
		return nil, err
	}
	kind, err := domain.ParseResourceKind("kind", string(r.Kind))
	if err := vs.Check(err); err != nil {
		return nil, err
	}
	if r.Provider == "" {
		vs.Add("provider", "provider.required", "name the provider (site) that offers the resource")
	} else {
		_ = vs.Check(domain.ValidateProviderName("provider", r.Provider))
	}
	if len(r.Attributes) > maxAttributes {
		vs.Add("attributes", "attributes.too_many", fmt.Sprintf("at most %d attributes", maxAttributes))
	}
	for k, v := range r.Attributes {
		if err := vs.Check(domain.ValidateAttributeName("attributes."+k, k)); err != nil {
			return nil, err
		}
		if v == "" || len(v) > maxAttributeValue || !utf8.ValidString(v) {
			vs.Add("attributes."+k, "attribute.value", fmt.Sprintf("a value is 1 to %d bytes of text", maxAttributeValue))
		}
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	r.Kind, r.State, r.CreatedAt = kind, domain.ResourceAvailable, s.now()
	var out *store.BoundResource
	err = s.update(ctx, &record{op: opResourcesRegisterResource.Name, actor: p, object: "resource:" + r.Name, detail: "kind=" + string(kind) + " provider=" + r.Provider}, func(tx store.Tx) error {
		// A resource belongs to a registered site (trellis admin provider
		// add). Resources registered before this rule keep whatever
		// provider they named: they are listed, bound and released as
		// before, and RemoveProvider keeps a site that resources name.
		if _, err := tx.Providers().Get(ctx, r.Provider); err != nil {
			if domain.HasCode(err, domain.CodeNotFound) {
				return domain.Invalid("provider", "provider.unregistered", fmt.Sprintf("%q is not a registered provider: an admin adds it first (trellis admin provider add %s --url URL)", r.Provider, r.Provider))
			}
			return err
		}
		if err := tx.Resources().Create(ctx, r); err != nil {
			return err
		}
		var err error
		out, err = tx.Resources().Get(ctx, r.Name)
		return err
	})
	return out, err
}

// GetResource returns a resource and what it is bound to.
func (s *Testbed) GetResource(ctx context.Context, p *auth.Principal, name string) (*store.BoundResource, error) {
	if err := s.authorize(ctx, p, opResourcesGetResource, policy.None); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) (*store.BoundResource, error) { return tx.Resources().Get(ctx, name) })
}

// ResourceQuery selects resources.
type ResourceQuery struct {
	Filters   []string
	Kind      string
	Provider  string
	State     string
	PageSize  int32
	PageToken string
}

// ListResources lists resources matching every filter, by name.
func (s *Testbed) ListResources(ctx context.Context, p *auth.Principal, q ResourceQuery) ([]*store.BoundResource, string, error) {
	if err := s.authorize(ctx, p, opResourcesListResources, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(q.PageSize, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	cs, err := alloc.ParseFilters("filters", q.Filters)
	if err != nil {
		return nil, "", err
	}
	f := store.ResourceFilter{Provider: q.Provider}
	if q.Kind != "" {
		if f.Kind, err = domain.ParseResourceKind("kind", q.Kind); err != nil {
			return nil, "", err
		}
	}
	if q.State != "" {
		if f.State, err = domain.ParseResourceState("state", q.State); err != nil {
			return nil, "", err
		}
	}
	// Attribute constraints are applied here, as the page's rows are read.
	// Without any, every row is kept: no keep function, so that a page
	// reads its page of rows, not the store's largest batch (readPage).
	var keep func(*store.BoundResource) bool
	if len(cs) > 0 {
		keep = func(r *store.BoundResource) bool { return domain.MatchAll(cs, r.Attributes) }
	}
	var out []*store.BoundResource
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		out, next, err = readPage(pg, func(after string, n int) ([]*store.BoundResource, error) {
			f.Page = store.Page{After: after, Limit: n}
			return tx.Resources().List(ctx, f)
		}, func(r *store.BoundResource) string { return r.Name }, keep)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// SetResourceState marks a resource available, in maintenance or down.
// A bound resource keeps its binding; it is not offered again until it is
// available.
func (s *Testbed) SetResourceState(ctx context.Context, p *auth.Principal, name, state string) (*store.BoundResource, error) {
	if err := s.authorize(ctx, p, opResourcesSetResourceState, policy.None); err != nil {
		return nil, err
	}
	st, err := domain.ParseResourceState("state", state)
	if err != nil {
		return nil, err
	}
	var out *store.BoundResource
	err = s.update(ctx, &record{op: opResourcesSetResourceState.Name, actor: p, object: "resource:" + name, detail: "state=" + state}, func(tx store.Tx) error {
		if err := tx.Resources().SetState(ctx, name, st); err != nil {
			return err
		}
		out, err = tx.Resources().Get(ctx, name)
		return err
	})
	return out, err
}

// RemoveResource deletes an unbound resource.
func (s *Testbed) RemoveResource(ctx context.Context, p *auth.Principal, name string) error {
	if err := s.authorize(ctx, p, opResourcesRemoveResource, policy.None); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opResourcesRemoveResource.Name, actor: p, object: "resource:" + name}, func(tx store.Tx) error {
		return tx.Resources().Delete(ctx, name)
	})
}
