package service

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Administered profile attributes. Definitions live in the store (seeded by
// migration 0021 with the built-in DETER attributes). Reading and compiling
// a description costs 0.2-0.4 ms a request (BenchmarkProfileDescription:
// SQLite 208 us, PostgreSQL 360 us, of which 60 us compile the formats),
// ten times what a bare request costs, so each replica keeps the compiled
// descriptions, invalidated through the change feed like its other caches:
// the replica that changes a definition at once, others within the feed's
// poll interval. The admin operations themselves read the store.

// ProfileKinds are the kinds of object whose profiles are administered.
var ProfileKinds = []string{store.ProfileUser, store.ProfileProject, store.ProfileCircle, store.ProfileExperiment, store.ProfileLibrary}

func checkProfileKind(kind string) error {
	for _, k := range ProfileKinds {
		if k == kind {
			return nil
		}
	}
	return domain.Invalid("kind", "enum", "one of user, project, circle, experiment, library")
}

// descriptionCache holds the compiled description of each profile kind.
// A load that began before an invalidation does not fill the cache: gen
// counts invalidations.
type descriptionCache struct {
	mu   sync.Mutex
	gen  uint64
	byKd map[string]*domain.ProfileDescription
}

func newDescriptionCache() *descriptionCache {
	return &descriptionCache{byKd: map[string]*domain.ProfileDescription{}}
}

func (c *descriptionCache) get(kind string) (*domain.ProfileDescription, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKd[kind], c.gen
}

func (c *descriptionCache) put(kind string, d *domain.ProfileDescription, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.byKd[kind] = d
	}
}

func (c *descriptionCache) invalidate(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.byKd, kind)
}

func (c *descriptionCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byKd)
}

// descriptionIn returns the description of kind from the cache, or read in
// tx.
func (s *base) descriptionIn(ctx context.Context, tx store.Tx, kind string) (*domain.ProfileDescription, error) {
	if s.descriptions == nil {
		return describeTx(ctx, tx, kind)
	}
	d, gen := s.descriptions.get(kind)
	if d != nil {
		return d, nil
	}
	d, err := describeTx(ctx, tx, kind)
	if err != nil {
		return nil, err
	}
	s.descriptions.put(kind, d, gen)
	return d, nil
}

// newProfile is the profile an object is created with: the attributes
// given, values trimmed and empty ones left out, and the description, which
// the create operations also take on its own, given once.
func newProfile(description string, given map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(given)+1)
	for k, v := range given {
		if v = strings.TrimSpace(v); v != "" {
			out[k] = v
		}
	}
	if description = strings.TrimSpace(description); description != "" {
		if d, ok := out["description"]; ok && d != description {
			return nil, domain.Invalid("profile.description", "profile.conflict", "give the description once, in the description field or the profile")
		}
		out["description"] = description
	}
	return out, nil
}

// describeTx reads the profile description of kind in tx, uncached.
func describeTx(ctx context.Context, tx store.Tx, kind string) (*domain.ProfileDescription, error) {
	attrs, err := tx.Profiles().Attributes(ctx, kind)
	if err != nil {
		return nil, err
	}
	d, err := domain.BuildProfileDescription(attrs)
	if err != nil {
		// Definitions are validated when written; a bad one is corruption.
		return nil, domain.Internal(err, "stored profile attributes")
	}
	return d, nil
}

// describe returns the profile description of kind, from the cache or read
// in its own transaction.
func (s *base) describe(ctx context.Context, kind string) (*domain.ProfileDescription, error) {
	if s.descriptions != nil {
		if d, _ := s.descriptions.get(kind); d != nil {
			return d, nil
		}
	}
	var d *domain.ProfileDescription
	err := s.view(ctx, func(tx store.Tx) (err error) {
		d, err = s.descriptionIn(ctx, tx, kind)
		return err
	})
	return d, err
}

// writer returns d as p writes it: an administrator, acting as itself,
// may set read-only attributes too.
func (s *base) writer(ctx context.Context, p *auth.Principal, d *domain.ProfileDescription) (*domain.ProfileDescription, error) {
	if p == nil || p.UID == "" || p.Actor != "" {
		return d, nil
	}
	admin, err := s.engine.Admin(ctx, p.UID)
	if err != nil || !admin {
		return d, err
	}
	return d.AsAdmin(), nil
}

// validateNewProfile checks the profile of an object p creates.
func (s *base) validateNewProfile(ctx context.Context, p *auth.Principal, kind string, values map[string]string) error {
	d, err := s.describe(ctx, kind)
	if err != nil {
		return err
	}
	if d, err = s.writer(ctx, p, d); err != nil {
		return err
	}
	return d.ValidateNew(values)
}

// ListAttributes lists the attribute definitions of a profile kind, in
// display order.
func (s *Accounts) ListAttributes(ctx context.Context, p *auth.Principal, kind string) ([]domain.Attribute, error) {
	if err := s.authorize(ctx, p, opAdminListAttributes, policy.None); err != nil {
		return nil, err
	}
	if err := checkProfileKind(kind); err != nil {
		return nil, err
	}
	var d *domain.ProfileDescription
	err := s.view(ctx, func(tx store.Tx) (err error) {
		d, err = describeTx(ctx, tx, kind) // an administrator sees the store, not a cache
		return err
	})
	if err != nil {
		return nil, err
	}
	return d.Attributes(), nil
}

// AddAttribute defines a new attribute of a profile kind. Only the
// migration seeds system attributes.
func (s *Accounts) AddAttribute(ctx context.Context, p *auth.Principal, kind string, a domain.Attribute) (*domain.Attribute, error) {
	if err := s.authorize(ctx, p, opAdminAddAttribute, policy.None); err != nil {
		return nil, err
	}
	if err := checkProfileKind(kind); err != nil {
		return nil, err
	}
	if a.Access == "" {
		a.Access = domain.ReadWrite
	}
	if a.DataType == "" {
		a.DataType = domain.TypeString
	}
	a.System = false
	if err := domain.ValidateAttribute(a); err != nil {
		return nil, err
	}
	rec := &record{op: opAdminAddAttribute.Name, actor: p, object: attributeObject(kind, a.Name), detail: attributeDetail(a)}
	err := s.update(ctx, rec, func(tx store.Tx) error {
		if err := tx.Profiles().AddAttribute(ctx, kind, a); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProfileAttributes, kind)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// AttributePatch is a change to an attribute definition: nil fields keep
// their value.
type AttributePatch struct {
	Description       *string
	Access            *domain.Access
	Optional          *bool
	DataType          *domain.DataType
	Format            *string
	FormatDescription *string
	LengthHint        *int
	OrderingHint      *int
	MaxLength         *int
}

// ChangeAttribute changes an attribute definition. A system attribute can
// be re-described and re-formatted, not retyped or made optional or
// inaccessible: the system depends on it. Values already stored are not
// re-checked; the new rules apply to the next write.
func (s *Accounts) ChangeAttribute(ctx context.Context, p *auth.Principal, kind, name string, ch AttributePatch) (*domain.Attribute, error) {
	if err := s.authorize(ctx, p, opAdminChangeAttribute, policy.None); err != nil {
		return nil, err
	}
	if err := checkProfileKind(kind); err != nil {
		return nil, err
	}
	var out domain.Attribute
	rec := &record{op: opAdminChangeAttribute.Name, actor: p, object: attributeObject(kind, name)}
	err := s.update(ctx, rec, func(tx store.Tx) error {
		d, err := describeTx(ctx, tx, kind)
		if err != nil {
			return err
		}
		a, ok := d.Lookup(name)
		if !ok {
			return domain.NotFound("%s profile attribute %q not found", kind, name)
		}
		if a.System {
			var vs domain.Violations
			if ch.Access != nil && *ch.Access != a.Access {
				vs.Add("access", "system", "the system depends on "+name+"; its access cannot change")
			}
			if ch.Optional != nil && *ch.Optional != a.Optional {
				vs.Add("optional", "system", "the system depends on "+name+"; it cannot become optional or required")
			}
			if ch.DataType != nil && *ch.DataType != a.DataType {
				vs.Add("data_type", "system", "the system depends on "+name+"; its type cannot change")
			}
			if err := vs.Err(); err != nil {
				return err
			}
		}
		set(&a.Description, ch.Description)
		set(&a.Access, ch.Access)
		set(&a.Optional, ch.Optional)
		set(&a.DataType, ch.DataType)
		set(&a.Format, ch.Format)
		set(&a.FormatDescription, ch.FormatDescription)
		set(&a.LengthHint, ch.LengthHint)
		set(&a.OrderingHint, ch.OrderingHint)
		set(&a.MaxLength, ch.MaxLength)
		if err := domain.ValidateAttribute(a); err != nil {
			return err
		}
		rec.detail = attributeDetail(a)
		out = a
		if err := tx.Profiles().UpdateAttribute(ctx, kind, a); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProfileAttributes, kind)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveAttribute removes an attribute definition and every object's value
// of it. System attributes cannot be removed.
func (s *Accounts) RemoveAttribute(ctx context.Context, p *auth.Principal, kind, name string) error {
	if err := s.authorize(ctx, p, opAdminRemoveAttribute, policy.None); err != nil {
		return err
	}
	if err := checkProfileKind(kind); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opAdminRemoveAttribute.Name, actor: p, object: attributeObject(kind, name)}, func(tx store.Tx) error {
		d, err := describeTx(ctx, tx, kind)
		if err != nil {
			return err
		}
		a, ok := d.Lookup(name)
		if !ok {
			return domain.NotFound("%s profile attribute %q not found", kind, name)
		}
		if a.System {
			return domain.FailedPrecondition("the system depends on %s profile attribute %q: it can be changed, not removed", kind, name)
		}
		if err := tx.Profiles().RemoveAttribute(ctx, kind, name); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProfileAttributes, kind)
	})
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func attributeObject(kind, name string) string { return "attribute:" + kind + "/" + name }

// attributeDetail is the audit detail of a definition: its rules, not
// anyone's values.
func attributeDetail(a domain.Attribute) string {
	return fmt.Sprintf("type=%s access=%s optional=%t max_length=%d format=%q", a.DataType, a.Access, a.Optional, a.MaxLength, a.Format)
}
