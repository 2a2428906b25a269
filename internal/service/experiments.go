package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

var (
	maxAspectsPerRequest  = 100
	exportFormat          = "trellis.experiment/v1"
	maxExperimentDocument = 8 << 20
)

// AspectInput is an aspect as a request gives it.
type AspectInput struct {
	Type, Name string
	Revision   int64 // for changes: the revision the content was based on
	Content    []byte
}

// ExperimentView is an experiment with what a reader sees of it.
type ExperimentView struct {
	*domain.Experiment
	Description string
	Aspects     []*AspectView
	Grants      []*domain.Grant
}

// AspectView is an aspect with its plug-in's summary.
type AspectView struct {
	*domain.Aspect
	Size    int64
	Summary string
	// DerivedFrom, on a sub-aspect its type derives (a layout's per-node
	// views), names the aspect it comes from; it cannot be changed itself.
	DerivedFrom string
}

var aspectNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// validateAspects checks a batch of aspects against the registry, naming
// each offending field by position.
func (s *Testbed) validateAspects(field string, in []AspectInput) error {
	if len(in) > maxAspectsPerRequest {
		return domain.Invalid(field, field+".too_many", fmt.Sprintf("at most %d aspects a request", maxAspectsPerRequest))
	}
	var vs domain.Violations
	seen := map[string]bool{}
	for i, a := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		if a.Name == "" && field == "aspects" {
			// Named by the server when stored (nameAspects).
			if err := s.aspects.Validate(a.Type, a.Content); err != nil {
				var de *domain.Error
				if !errors.As(err, &de) || de.Code != domain.CodeInvalidArgument {
					return err
				}
				for _, v := range de.Violations {
					vs.Add(f+"."+v.Field, v.Rule, v.Description)
				}
			}
			continue
		}
		if parent, _, ok := strings.Cut(a.Name, "/"); ok && aspectNamePattern.MatchString(parent) {
			vs.Add(f+".name", "aspect.derived", fmt.Sprintf("%s/%s is derived from %s/%s and follows it: change %s instead", a.Type, a.Name, a.Type, parent, parent))
			continue
		}
		if !aspectNamePattern.MatchString(a.Name) {
			vs.Add(f+".name", "aspect.name", "an aspect's name is 1 to 64 characters: lower-case letters, digits, '_', '.' or '-'")
		}
		key := a.Type + "/" + a.Name
		if seen[key] {
			vs.Add(f, "aspect.duplicate", "aspect "+key+" is named twice")
		}
		seen[key] = true
		if err := s.aspects.Validate(a.Type, a.Content); err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalidArgument {
				return err
			}
			for _, v := range de.Violations {
				vs.Add(f+"."+v.Field, v.Rule, v.Description)
			}
		}
	}
	return vs.Err()
}

// CreateExperiment creates owner:name with its first aspects.
func (s *Testbed) CreateExperiment(ctx context.Context, p *auth.Principal, id, description string, given map[string]string, aspects []AspectInput) (*ExperimentView, error) {
	if err := s.authorize(ctx, p, opExperimentsCreateExperiment, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.createExperiment(ctx, p, opExperimentsCreateExperiment.Name, id, description, given, aspects)
}

func (s *Testbed) createExperiment(ctx context.Context, p *auth.Principal, op, id, description string, given map[string]string, aspects []AspectInput) (*ExperimentView, error) {
	_, name, err := domain.ParseOwnedID("id", "experiment", id)
	if err != nil {
		return nil, err
	}
	if err := s.validateAspects("aspects", aspects); err != nil {
		return nil, err
	}
	profile, err := newProfile(description, given)
	if err != nil {
		return nil, err
	}
	if err := s.validateNewProfile(ctx, p, store.ProfileExperiment, profile); err != nil {
		return nil, err
	}
	err = s.update(ctx, &record{op: op, actor: p, object: domain.ExperimentObject(id), detail: fmt.Sprintf("aspects=%d", len(aspects))}, func(tx store.Tx) error {
		owner, err := ownerOf(ctx, tx, id, p.UID)
		if err != nil {
			return err
		}
		now := s.now()
		if err := tx.Experiments().Create(ctx, &domain.Experiment{ID: id, Owner: owner, Name: name, Creator: p.UID, CreatedAt: now}); err != nil {
			return err
		}
		named, err := s.nameAspects(ctx, tx, id, aspects)
		if err != nil {
			return err
		}
		for _, a := range named {
			if err := tx.Experiments().PutAspect(ctx, &domain.Aspect{Experiment: id, Type: a.Type, Name: a.Name, Content: a.Content, UpdatedAt: now}, 0); err != nil {
				return err
			}
		}
		if err := s.composeAspects(ctx, tx, id, typesOf(named)); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileExperiment, id, profile); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeExperiment, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getExperiment(ctx, id, false)
}

// GetExperiment returns an experiment, with aspect content when asked.
func (s *Testbed) GetExperiment(ctx context.Context, p *auth.Principal, id string, withContent bool) (*ExperimentView, error) {
	if err := s.authorize(ctx, p, opExperimentsGetExperiment, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getExperiment(ctx, id, withContent)
}

func (s *Testbed) getExperiment(ctx context.Context, id string, withContent bool) (*ExperimentView, error) {
	return viewOf(ctx, s.base, func(tx store.Tx) (*ExperimentView, error) { return s.experimentView(ctx, tx, id, withContent) })
}

func (s *Testbed) experimentView(ctx context.Context, tx store.Tx, id string, withContent bool) (*ExperimentView, error) {
	x, err := tx.Experiments().Get(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &ExperimentView{Experiment: x}
	aspects, err := tx.Experiments().Aspects(ctx, id, true)
	if err != nil {
		return nil, err
	}
	for _, a := range aspects {
		av := &AspectView{Aspect: a, Size: int64(len(a.Content))}
		var derived []aspect.Derived
		if t, ok := s.aspects.Lookup(a.Type); ok {
			r := read(t, a.Content)
			av.Summary, derived = r.summary, r.derived
		}
		if !withContent {
			a.Content = nil
		}
		v.Aspects = append(v.Aspects, av)
		// Sub-aspects follow their parent, computed from its content now,
		// so they are always in step with it.
		for _, d := range derived {
			sub := &domain.Aspect{Experiment: id, Type: a.Type, Name: a.Name + "/" + d.Name, Revision: a.Revision, UpdatedAt: a.UpdatedAt}
			if withContent {
				sub.Content = slices.Clone(d.Content) // the reading is shared
			}
			v.Aspects = append(v.Aspects, &AspectView{Aspect: sub, Size: int64(len(d.Content)), Summary: d.Summary, DerivedFrom: a.Name})
		}
	}
	if v.Grants, err = tx.Grants().List(ctx, domain.ExperimentObject(id)); err != nil {
		return nil, err
	}
	prof, err := tx.Profiles().Get(ctx, store.ProfileExperiment, id)
	if err != nil {
		return nil, err
	}
	v.Description = prof["description"]
	return v, nil
}

// ExperimentQuery selects experiments for ListExperiments.
type ExperimentQuery struct {
	Owner, Text string
	// Shared leaves out the caller's own experiments (those it owns or
	// that are in its namespace): what others share with it.
	Shared    bool
	PageSize  int32
	PageToken string
}

// ListExperiments lists the experiments p may read.
func (s *Testbed) ListExperiments(ctx context.Context, p *auth.Principal, q ExperimentQuery) ([]*ExperimentView, string, error) {
	if err := s.authorize(ctx, p, opExperimentsListExperiments, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(q.PageSize, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	visible, err := s.visible(ctx, p, opExperimentsListExperiments)
	if err != nil {
		return nil, "", err
	}
	var keep func(*domain.Experiment) bool
	if q.Shared {
		keep = func(x *domain.Experiment) bool { return x.Owner != p.UID && !strings.HasPrefix(x.ID, p.UID+":") }
	}
	return s.experimentPage(ctx, pg, store.ExperimentFilter{Owner: q.Owner, Text: q.Text, IDs: objectIDs(visible)}, keep)
}

// experimentPage reads one page of the experiments f selects, with their
// descriptions, in one transaction; keep, when not nil, drops rows.
func (s *Testbed) experimentPage(ctx context.Context, pg page[string], f store.ExperimentFilter, keep func(*domain.Experiment) bool) ([]*ExperimentView, string, error) {
	var out []*ExperimentView
	var next string
	err := s.view(ctx, func(tx store.Tx) error {
		xs, n, err := readPage(pg, func(after string, n int) ([]*domain.Experiment, error) {
			if f.IDs == nil {
				f.Page = store.Page{After: after, Limit: n}
				return tx.Experiments().List(ctx, f)
			}
			return inWindows(f.IDs, after, n, func(ids []string, n int) ([]*domain.Experiment, error) {
				w := f
				w.IDs, w.Page = ids, store.Page{After: after, Limit: n}
				return tx.Experiments().List(ctx, w)
			})
		}, func(x *domain.Experiment) string { return x.ID }, keep)
		if err != nil {
			return err
		}
		next = n
		out, err = experimentViews(ctx, tx, xs)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// experimentViews are listed experiments with their descriptions, read
// for the whole page at once.
func experimentViews(ctx context.Context, tx store.Tx, xs []*domain.Experiment) ([]*ExperimentView, error) {
	ids := make([]string, len(xs))
	for i, x := range xs {
		ids[i] = x.ID
	}
	desc, err := tx.Profiles().Values(ctx, store.ProfileExperiment, "description", ids)
	if err != nil {
		return nil, err
	}
	out := make([]*ExperimentView, len(xs))
	for i, x := range xs {
		out[i] = &ExperimentView{Experiment: x, Description: desc[x.ID]}
	}
	return out, nil
}

// putAspects creates (expected 0) or changes aspects in one transaction.
func (s *Testbed) putAspects(ctx context.Context, p *auth.Principal, op, id string, in []AspectInput, create bool) (*ExperimentView, error) {
	field := "changes"
	if create {
		field = "aspects"
	}
	if len(in) == 0 {
		return nil, domain.Invalid(field, field+".required", "name at least one aspect")
	}
	if err := s.validateAspects(field, in); err != nil {
		return nil, err
	}
	var refs []string
	for _, a := range in {
		refs = append(refs, a.Type+"/"+a.Name)
	}
	var v *ExperimentView
	err := s.update(ctx, &record{op: op, actor: p, object: domain.ExperimentObject(id), detail: strings.Join(refs, ",")}, func(tx store.Tx) error {
		if _, err := tx.Experiments().Get(ctx, id); err != nil {
			return err
		}
		if create {
			var err error
			if in, err = s.nameAspects(ctx, tx, id, in); err != nil {
				return err
			}
		}
		for i, a := range in {
			expected := a.Revision
			if create {
				expected = 0
			} else if expected <= 0 {
				return domain.Invalid(fmt.Sprintf("changes[%d].revision", i), "revision.required", "a change names the revision it was based on")
			}
			if err := tx.Experiments().PutAspect(ctx, &domain.Aspect{Experiment: id, Type: a.Type, Name: a.Name, Content: a.Content, UpdatedAt: s.now()}, expected); err != nil {
				return err
			}
		}
		if err := s.composeAspects(ctx, tx, id, typesOf(in)); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeExperiment, id); err != nil {
			return err
		}
		var err error
		v, err = s.experimentView(ctx, tx, id, false)
		return err
	})
	return v, err
}

// AddAspects adds new aspects.
func (s *Testbed) AddAspects(ctx context.Context, p *auth.Principal, id string, in []AspectInput) (*ExperimentView, error) {
	if err := s.authorize(ctx, p, opExperimentsAddAspects, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.putAspects(ctx, p, opExperimentsAddAspects.Name, id, in, true)
}

// ChangeAspects replaces aspects' content, refusing stale revisions.
func (s *Testbed) ChangeAspects(ctx context.Context, p *auth.Principal, id string, in []AspectInput) (*ExperimentView, error) {
	if err := s.authorize(ctx, p, opExperimentsChangeAspects, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.putAspects(ctx, p, opExperimentsChangeAspects.Name, id, in, false)
}

// RemoveAspects removes aspects by (type, name).
func (s *Testbed) RemoveAspects(ctx context.Context, p *auth.Principal, id string, refs []AspectInput) (*ExperimentView, error) {
	if err := s.authorize(ctx, p, opExperimentsRemoveAspects, policy.On("id", id)); err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, domain.Invalid("aspects", "aspects.required", "name at least one aspect")
	}
	for i, a := range refs {
		if parent, _, ok := strings.Cut(a.Name, "/"); ok {
			return nil, domain.Invalid(fmt.Sprintf("aspects[%d].name", i), "aspect.derived", fmt.Sprintf("%s/%s is derived from %s/%s and goes with it", a.Type, a.Name, a.Type, parent))
		}
	}
	var v *ExperimentView
	err := s.update(ctx, &record{op: opExperimentsRemoveAspects.Name, actor: p, object: domain.ExperimentObject(id)}, func(tx store.Tx) error {
		for _, a := range refs {
			if err := tx.Experiments().DeleteAspect(ctx, id, a.Type, a.Name); err != nil {
				return err
			}
		}
		if err := s.composeAspects(ctx, tx, id, typesOf(refs)); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeExperiment, id); err != nil {
			return err
		}
		var err error
		v, err = s.experimentView(ctx, tx, id, false)
		return err
	})
	return v, err
}

// ChangeExperimentAccess sets a circle's rights on an experiment.
func (s *Testbed) ChangeExperimentAccess(ctx context.Context, p *auth.Principal, id, circle string, rights []string) ([]*domain.Grant, error) {
	if err := s.authorize(ctx, p, opExperimentsChangeAccess, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.changeAccess(ctx, p, experimentKind, opExperimentsChangeAccess.Name, id, circle, rights)
}

// GetExperimentProfileDescription describes the attributes of experiments'
// profiles.
func (s *Testbed) GetExperimentProfileDescription(ctx context.Context, p *auth.Principal) (*domain.ProfileDescription, error) {
	if err := s.authorize(ctx, p, opExperimentsGetProfileDescription, policy.None); err != nil {
		return nil, err
	}
	return s.describe(ctx, store.ProfileExperiment)
}

// GetExperimentProfile returns an experiment's profile.
func (s *Testbed) GetExperimentProfile(ctx context.Context, p *auth.Principal, id string) ([]domain.ProfileValue, error) {
	if err := s.authorize(ctx, p, opExperimentsGetExperimentProfile, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getProfile(ctx, store.ProfileExperiment, id, func(tx store.Tx) error { return experimentKind.exists(ctx, tx, id) })
}

// SetExperimentProfile applies what it can of a profile change.
func (s *Testbed) SetExperimentProfile(ctx context.Context, p *auth.Principal, id string, set map[string]string, clearAttrs []string) ([]domain.AttributeChange, error) {
	if err := s.authorize(ctx, p, opExperimentsSetExperimentProfile, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.setProfile(ctx, &record{op: opExperimentsSetExperimentProfile.Name, actor: p, object: domain.ExperimentObject(id)}, store.ProfileExperiment, id, set, clearAttrs,
		func(tx store.Tx) error { return experimentKind.exists(ctx, tx, id) })
}

// RemoveExperiment deletes an experiment; realizations of it stay on record.
func (s *Testbed) RemoveExperiment(ctx context.Context, p *auth.Principal, id string) error {
	if err := s.authorize(ctx, p, opExperimentsRemoveExperiment, policy.On("id", id)); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opExperimentsRemoveExperiment.Name, actor: p, object: domain.ExperimentObject(id)}, func(tx store.Tx) error {
		if err := tx.Experiments().Delete(ctx, id); err != nil {
			return err
		}
		if err := tx.Grants().DeleteObject(ctx, domain.ExperimentObject(id)); err != nil {
			return err
		}
		if err := tx.Requests().DeleteByObject(ctx, domain.ExperimentObject(id)); err != nil { // offers of it lapse
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileExperiment, id, nil); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeExperiment, id)
	})
}

// SetExperimentOwner offers the experiment to uid, who becomes its owner
// on accepting; it returns the pending request's id.
func (s *Testbed) SetExperimentOwner(ctx context.Context, p *auth.Principal, id, uid string) (string, error) {
	if err := s.authorize(ctx, p, opExperimentsSetOwner, policy.On("id", id)); err != nil {
		return "", err
	}
	return s.offerOwnership(ctx, p, experimentKind, opExperimentsSetOwner.Name, domain.RequestExperimentOwner, id, uid)
}

// exportDoc is the export format of an experiment.
type exportDoc struct {
	Format      string            `json:"format"`
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	Aspects     []exportAspectDoc `json:"aspects"`
}

type exportAspectDoc struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// ExportExperiment returns an experiment as one JSON document.
func (s *Testbed) ExportExperiment(ctx context.Context, p *auth.Principal, id string) ([]byte, error) {
	if err := s.authorize(ctx, p, opExperimentsExportExperiment, policy.On("id", id)); err != nil {
		return nil, err
	}
	v, err := s.getExperiment(ctx, id, true)
	if err != nil {
		return nil, err
	}
	doc := exportDoc{Format: exportFormat, ID: v.ID, Description: v.Description, Aspects: []exportAspectDoc{}}
	for _, a := range v.Aspects {
		if a.DerivedFrom != "" {
			continue // comes back with its parent
		}
		doc.Aspects = append(doc.Aspects, exportAspectDoc{Type: a.Type, Name: a.Name, Content: a.Content})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// ImportExperiment creates an experiment from an exported document, under
// id (the document's own id is only a suggestion the caller may take).
func (s *Testbed) ImportExperiment(ctx context.Context, p *auth.Principal, document []byte, id string) (*ExperimentView, error) {
	if err := s.authorize(ctx, p, opExperimentsImportExperiment, policy.On("id", id)); err != nil {
		return nil, err
	}
	if len(document) > maxExperimentDocument {
		return nil, domain.Invalid("document", "document.too_large", "an experiment document is at most 8 MiB")
	}
	var doc exportDoc
	if err := json.Unmarshal(document, &doc); err != nil {
		return nil, domain.Invalid("document", "document.format", "not an exported experiment: "+err.Error())
	}
	if doc.Format != exportFormat {
		return nil, domain.Invalid("document", "document.format", fmt.Sprintf("format %q is not %s", doc.Format, exportFormat))
	}
	in := make([]AspectInput, 0, len(doc.Aspects))
	for _, a := range doc.Aspects {
		in = append(in, AspectInput{Type: a.Type, Name: a.Name, Content: a.Content})
	}
	return s.createExperiment(ctx, p, opExperimentsImportExperiment.Name, id, doc.Description, nil, in)
}

// Registry returns the aspect types the service knows.
func (s *Testbed) registry() *aspect.Registry { return s.aspects }

// objectIDs turns a listing's object keys ("experiment:alice:e1") into ids.
func objectIDs(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		_, id, _ := strings.Cut(k, ":")
		out = append(out, id)
	}
	return out
}

// nameAspects names the aspects a request left unnamed: the type's name
// when it is free in the experiment, else the type's name and the first
// free number ("layout-2"), as DETER names them.
func (s *Testbed) nameAspects(ctx context.Context, tx store.Tx, id string, in []AspectInput) ([]AspectInput, error) {
	if !slices.ContainsFunc(in, func(a AspectInput) bool { return a.Name == "" }) {
		return in, nil
	}
	existing, err := tx.Experiments().Aspects(ctx, id, false)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, a := range existing {
		taken[a.Type+"/"+a.Name] = true
	}
	for _, a := range in {
		if a.Name != "" {
			taken[a.Type+"/"+a.Name] = true
		}
	}
	out := slices.Clone(in)
	for i := range out {
		if out[i].Name != "" {
			continue
		}
		name := out[i].Type
		for n := 2; taken[out[i].Type+"/"+name]; n++ {
			name = fmt.Sprintf("%s-%d", out[i].Type, n)
		}
		taken[out[i].Type+"/"+name] = true
		out[i].Name = name
	}
	return out, nil
}

// typesOf lists the aspect types a request touches.
func typesOf(in []AspectInput) []string {
	var types []string
	for _, a := range in {
		if !slices.Contains(types, a.Type) {
			types = append(types, a.Type)
		}
	}
	return types
}

// composeAspects checks, for each composable type among types, the
// experiment's aspects of that type against each other, as they stand in
// tx (after the request's writes): a link to a node no layout defines is
// refused, naming both aspects. A type left with no aspect is not checked.
func (s *Testbed) composeAspects(ctx context.Context, tx store.Tx, id string, types []string) error {
	var composable []string
	for _, typ := range types {
		if t, ok := s.aspects.Lookup(typ); ok {
			if _, ok := t.(aspect.Composable); ok {
				composable = append(composable, typ)
			}
		}
	}
	if len(composable) == 0 {
		return nil
	}
	all, err := tx.Experiments().Aspects(ctx, id, true)
	if err != nil {
		return err
	}
	for _, typ := range composable {
		if _, err := s.composed(typ, all); err != nil {
			return err
		}
	}
	return nil
}

// composed composes the aspects of type typ among all (nil, nil when there
// are none), the one named main first and the rest by name.
func (s *Testbed) composed(typ string, all []*domain.Aspect) ([]aspect.Element, error) {
	var parts []aspect.Part
	for _, a := range all {
		if a.Type == typ {
			parts = append(parts, aspect.Part{Name: a.Name, Content: a.Content})
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(parts, func(a, b aspect.Part) int {
		switch {
		case a.Name == b.Name:
			return 0
		case a.Name == "main":
			return -1
		case b.Name == "main":
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	t, _ := s.aspects.Lookup(typ)
	c, ok := t.(aspect.Composable)
	if !ok {
		return nil, domain.Internal(fmt.Errorf("aspect type %s is not composable", typ), "aspect plug-in misconfigured")
	}
	return c.Compose(parts)
}
