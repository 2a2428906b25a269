package service

import (
	"context"
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// LibraryView is a library as one reader sees it: only the experiments it
// may read are listed.
type LibraryView struct {
	*domain.Library
	Description string
	Experiments []string
	Grants      []*domain.Grant
}

// CreateLibrary creates owner:name.
func (s *Testbed) CreateLibrary(ctx context.Context, p *auth.Principal, id, description string, given map[string]string) (*LibraryView, error) {
	if err := s.authorize(ctx, p, opLibrariesCreateLibrary, policy.On("id", id)); err != nil {
		return nil, err
	}
	_, name, err := domain.ParseOwnedID("id", "library", id)
	if err != nil {
		return nil, err
	}
	profile, err := newProfile(description, given)
	if err != nil {
		return nil, err
	}
	if err := s.validateNewProfile(ctx, p, store.ProfileLibrary, profile); err != nil {
		return nil, err
	}
	err = s.update(ctx, &record{op: opLibrariesCreateLibrary.Name, actor: p, object: domain.LibraryObject(id)}, func(tx store.Tx) error {
		owner, err := ownerOf(ctx, tx, id, p.UID)
		if err != nil {
			return err
		}
		if err := tx.Libraries().Create(ctx, &domain.Library{ID: id, Owner: owner, Name: name, Creator: p.UID, CreatedAt: s.now()}); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileLibrary, id, profile); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeLibrary, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getLibrary(ctx, p, id)
}

// readable filters experiment ids down to those p may read: those its
// listing of experiments shows.
func (s *Testbed) readable(ctx context.Context, p *auth.Principal, ids []string) ([]string, error) {
	visible, err := s.visible(ctx, p, opExperimentsListExperiments)
	if err != nil {
		return nil, err
	}
	// Never nil: a nil filter would list every experiment.
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := slices.BinarySearch(visible, domain.ExperimentObject(id)); ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// GetLibrary returns a library with the experiments p may read.
func (s *Testbed) GetLibrary(ctx context.Context, p *auth.Principal, id string) (*LibraryView, error) {
	if err := s.authorize(ctx, p, opLibrariesGetLibrary, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getLibrary(ctx, p, id)
}

func (s *Testbed) getLibrary(ctx context.Context, p *auth.Principal, id string) (*LibraryView, error) {
	var v *LibraryView
	err := s.view(ctx, func(tx store.Tx) error {
		l, err := tx.Libraries().Get(ctx, id)
		if err != nil {
			return err
		}
		v = &LibraryView{Library: l}
		if v.Experiments, err = tx.Libraries().Experiments(ctx, id); err != nil {
			return err
		}
		if v.Grants, err = tx.Grants().List(ctx, domain.LibraryObject(id)); err != nil {
			return err
		}
		prof, err := tx.Profiles().Get(ctx, store.ProfileLibrary, id)
		v.Description = prof["description"]
		return err
	})
	if err != nil {
		return nil, err
	}
	v.Experiments, err = s.readable(ctx, p, v.Experiments)
	return v, err
}

// ListLibraries lists the libraries p may read.
func (s *Testbed) ListLibraries(ctx context.Context, p *auth.Principal, owner, text string, pageSize int32, pageToken string) ([]*LibraryView, string, error) {
	if err := s.authorize(ctx, p, opLibrariesListLibraries, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	visible, err := s.visible(ctx, p, opLibrariesListLibraries)
	if err != nil {
		return nil, "", err
	}
	f := store.LibraryFilter{Owner: owner, Text: text, IDs: objectIDs(visible)}
	var ls []*domain.Library
	var next string
	var desc map[string]string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		ls, next, err = readPage(pg, func(after string, n int) ([]*domain.Library, error) {
			f.Page = store.Page{After: after, Limit: n}
			return tx.Libraries().List(ctx, f)
		}, func(l *domain.Library) string { return l.ID }, nil)
		if err != nil {
			return err
		}
		ids := make([]string, len(ls))
		for i, l := range ls {
			ids[i] = l.ID
		}
		desc, err = tx.Profiles().Values(ctx, store.ProfileLibrary, "description", ids)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]*LibraryView, 0, len(ls))
	for _, l := range ls {
		out = append(out, &LibraryView{Library: l, Description: desc[l.ID]})
	}
	return out, next, nil
}

// AddLibraryExperiments lists experiments in a library; p must be able to
// read each (one it cannot read is "not found", as for one that does not
// exist): the rule checks every experiment named.
func (s *Testbed) AddLibraryExperiments(ctx context.Context, p *auth.Principal, id string, experiments []string) (*LibraryView, error) {
	t := policy.On("id", id)
	for _, x := range experiments {
		t = t.And("experiments", x)
	}
	if len(experiments) == 0 {
		t = t.And("experiments", "") // refused as required, after the library's check
	}
	if err := s.authorize(ctx, p, opLibrariesAddExperiments, t); err != nil {
		return nil, err
	}
	err := s.update(ctx, &record{op: opLibrariesAddExperiments.Name, actor: p, object: domain.LibraryObject(id), detail: strings.Join(experiments, ",")}, func(tx store.Tx) error {
		for _, x := range domain.SortedUnique(experiments) {
			if err := tx.Libraries().AddExperiment(ctx, id, x); err != nil {
				return err
			}
		}
		return tx.Changes().Append(ctx, store.ChangeLibrary, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getLibrary(ctx, p, id)
}

// RemoveLibraryExperiments takes experiments out of a library.
func (s *Testbed) RemoveLibraryExperiments(ctx context.Context, p *auth.Principal, id string, experiments []string) (*LibraryView, error) {
	if err := s.authorize(ctx, p, opLibrariesRemoveExperiments, policy.On("id", id)); err != nil {
		return nil, err
	}
	if len(experiments) == 0 {
		return nil, domain.Invalid("experiments", "experiments.required", "name at least one experiment")
	}
	err := s.update(ctx, &record{op: opLibrariesRemoveExperiments.Name, actor: p, object: domain.LibraryObject(id), detail: strings.Join(experiments, ",")}, func(tx store.Tx) error {
		for _, x := range domain.SortedUnique(experiments) {
			if err := tx.Libraries().RemoveExperiment(ctx, id, x); err != nil {
				return err
			}
		}
		return tx.Changes().Append(ctx, store.ChangeLibrary, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getLibrary(ctx, p, id)
}

// ChangeLibraryAccess sets a circle's rights on a library.
func (s *Testbed) ChangeLibraryAccess(ctx context.Context, p *auth.Principal, id, circle string, rights []string) ([]*domain.Grant, error) {
	if err := s.authorize(ctx, p, opLibrariesChangeAccess, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.changeAccess(ctx, p, libraryKind, opLibrariesChangeAccess.Name, id, circle, rights)
}

// GetLibraryProfileDescription describes the attributes of libraries'
// profiles.
func (s *Testbed) GetLibraryProfileDescription(ctx context.Context, p *auth.Principal) (*domain.ProfileDescription, error) {
	if err := s.authorize(ctx, p, opLibrariesGetProfileDescription, policy.None); err != nil {
		return nil, err
	}
	return s.describe(ctx, store.ProfileLibrary)
}

// GetLibraryProfile returns a library's profile.
func (s *Testbed) GetLibraryProfile(ctx context.Context, p *auth.Principal, id string) ([]domain.ProfileValue, error) {
	if err := s.authorize(ctx, p, opLibrariesGetLibraryProfile, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getProfile(ctx, store.ProfileLibrary, id, func(tx store.Tx) error { return libraryKind.exists(ctx, tx, id) })
}

// SetLibraryProfile applies what it can of a profile change.
func (s *Testbed) SetLibraryProfile(ctx context.Context, p *auth.Principal, id string, set map[string]string, clearAttrs []string) ([]domain.AttributeChange, error) {
	if err := s.authorize(ctx, p, opLibrariesSetLibraryProfile, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.setProfile(ctx, &record{op: opLibrariesSetLibraryProfile.Name, actor: p, object: domain.LibraryObject(id)}, store.ProfileLibrary, id, set, clearAttrs,
		func(tx store.Tx) error { return libraryKind.exists(ctx, tx, id) })
}

// RemoveLibrary deletes a library (not its experiments).
func (s *Testbed) RemoveLibrary(ctx context.Context, p *auth.Principal, id string) error {
	if err := s.authorize(ctx, p, opLibrariesRemoveLibrary, policy.On("id", id)); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opLibrariesRemoveLibrary.Name, actor: p, object: domain.LibraryObject(id)}, func(tx store.Tx) error {
		if err := tx.Libraries().Delete(ctx, id); err != nil {
			return err
		}
		if err := tx.Grants().DeleteObject(ctx, domain.LibraryObject(id)); err != nil {
			return err
		}
		if err := tx.Requests().DeleteByObject(ctx, domain.LibraryObject(id)); err != nil { // offers of it lapse
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileLibrary, id, nil); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeLibrary, id)
	})
}

// SetLibraryOwner offers the library to uid, who becomes its owner on
// accepting; it returns the pending request's id.
func (s *Testbed) SetLibraryOwner(ctx context.Context, p *auth.Principal, id, uid string) (string, error) {
	if err := s.authorize(ctx, p, opLibrariesSetOwner, policy.On("id", id)); err != nil {
		return "", err
	}
	return s.offerOwnership(ctx, p, libraryKind, opLibrariesSetOwner.Name, domain.RequestLibraryOwner, id, uid)
}

// ListLibraryExperiments pages through the experiments in a library that p
// may read, in id order.
func (s *Testbed) ListLibraryExperiments(ctx context.Context, p *auth.Principal, id string, pageSize int32, pageToken string) ([]*ExperimentView, string, error) {
	if err := s.authorize(ctx, p, opLibrariesListLibraryExperiments, policy.On("id", id)); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	var ids []string
	if err := s.view(ctx, func(tx store.Tx) error {
		if _, err := tx.Libraries().Get(ctx, id); err != nil {
			return err
		}
		ids, err = tx.Libraries().Experiments(ctx, id)
		return err
	}); err != nil {
		return nil, "", err
	}
	if ids, err = s.readable(ctx, p, ids); err != nil {
		return nil, "", err
	}
	return s.experimentPage(ctx, pg, store.ExperimentFilter{IDs: ids}, nil)
}
