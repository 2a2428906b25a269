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

// CircleView is a circle with its members.
type CircleView struct {
	ID, Owner string
	Automatic bool
	Members   []policy.Member
	Circle    *domain.Circle // nil for automatic circles
}

// CreateCircle creates owner:name; its creator joins with every right.
func (s *Social) CreateCircle(ctx context.Context, p *auth.Principal, id, description string, given map[string]string) (*CircleView, error) {
	if err := s.authorize(ctx, p, opCirclesCreateCircle, policy.On("id", id)); err != nil {
		return nil, err
	}
	owner, name, err := domain.ParseCircleID("id", id)
	if err != nil {
		return nil, err
	}
	profile, err := newProfile(description, given)
	if err != nil {
		return nil, err
	}
	if err := s.validateNewProfile(ctx, p, store.ProfileCircle, profile); err != nil {
		return nil, err
	}
	err = s.update(ctx, &record{op: opCirclesCreateCircle.Name, actor: p, object: domain.CircleObject(id)}, func(tx store.Tx) error {
		c := &domain.Circle{ID: id, Owner: owner, Name: name, CreatedAt: s.now()}
		if err := tx.Circles().Create(ctx, c); err != nil {
			return err
		}
		if err := tx.Circles().SetMember(ctx, &domain.Membership{Group: id, UID: p.UID, Rights: domain.CircleRights, AddedAt: s.now()}); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileCircle, id, profile); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeCircle, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getCircle(ctx, id)
}

// RemoveCircle deletes a circle.
func (s *Social) RemoveCircle(ctx context.Context, p *auth.Principal, id string) error {
	if err := s.authorize(ctx, p, opCirclesRemoveCircle, policy.On("id", id)); err != nil {
		return err
	}
	if domain.AutomaticCircle(id) {
		return domain.FailedPrecondition("circle %s is automatic: it goes when its owner goes", id)
	}
	return s.update(ctx, &record{op: opCirclesRemoveCircle.Name, actor: p, object: domain.CircleObject(id)}, func(tx store.Tx) error {
		if err := tx.Circles().Delete(ctx, id); err != nil {
			return err
		}
		if err := tx.Requests().DeleteByObject(ctx, domain.CircleObject(id)); err != nil {
			return err
		}
		if err := dropGrantsTo(ctx, tx, id); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileCircle, id, nil); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeCircle, id)
	})
}

// dropGrantsTo removes the rights circles that are going hold on
// experiments, libraries and realizations, so that a circle made later
// with one of their ids does not inherit them, and records each object's
// change (an object's grants are part of it).
func dropGrantsTo(ctx context.Context, tx store.Tx, circles ...string) error {
	objects, err := tx.Grants().DeleteCircle(ctx, circles...)
	if err != nil {
		return err
	}
	for _, o := range objects {
		kind, id, _ := strings.Cut(o, ":") // experiment:ID, library:ID, realization:ID: the kind is the change kind
		if err := tx.Changes().Append(ctx, kind, id); err != nil {
			return err
		}
	}
	return nil
}

// GetCircle returns a circle and its members, automatic circles included.
func (s *Social) GetCircle(ctx context.Context, p *auth.Principal, id string) (*CircleView, error) {
	if err := s.authorize(ctx, p, opCirclesGetCircle, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getCircle(ctx, id)
}

func (s *Social) getCircle(ctx context.Context, id string) (*CircleView, error) {
	owner, _, err := domain.ParseCircleID("id", id)
	if err != nil {
		return nil, err
	}
	members, err := s.engine.CircleMembers(ctx, id)
	if err != nil {
		return nil, err
	}
	v := &CircleView{ID: id, Owner: owner, Automatic: domain.AutomaticCircle(id), Members: members}
	if !v.Automatic {
		err = s.view(ctx, func(tx store.Tx) error {
			v.Circle, err = tx.Circles().Get(ctx, id)
			if err == nil {
				v.Owner = v.Circle.Owner
			}
			return err
		})
	}
	return v, err
}

// ListCircles lists the circles the caller may read, optionally of one owner.
func (s *Social) ListCircles(ctx context.Context, p *auth.Principal, owner string, pageSize int32, pageToken string) ([]*CircleView, string, error) {
	if err := s.authorize(ctx, p, opCirclesListCircles, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	objects, err := s.visible(ctx, p, opCirclesListCircles)
	if err != nil {
		return nil, "", err
	}
	var ids []string
	for _, o := range objects {
		id := strings.TrimPrefix(o, "circle:")
		if owner == "" || strings.HasPrefix(id, owner+":") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	// The policy graph knows every circle, the automatic ones included,
	// so the page is cut from its list.
	page, next, err := readPage(pg, func(after string, n int) ([]string, error) {
		i, found := slices.BinarySearch(ids, after)
		if found {
			i++
		}
		return ids[i:min(i+n, len(ids))], nil
	}, func(id string) string { return id }, nil)
	if err != nil {
		return nil, "", err
	}
	out := make([]*CircleView, 0, len(page))
	for _, id := range page {
		v, err := s.getCircle(ctx, id)
		if domain.HasCode(err, domain.CodeNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, next, nil
}

// AddCircleUsers invites users into a circle.
func (s *Social) AddCircleUsers(ctx context.Context, p *auth.Principal, id string, uids, rights []string) ([]Outcome, error) {
	if err := s.authorize(ctx, p, opCirclesAddUsers, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.invite(ctx, p, circleGroup, opCirclesAddUsers.Name, id, uids, rights)
}

// JoinCircle asks to join a circle.
func (s *Social) JoinCircle(ctx context.Context, p *auth.Principal, id, message string) (string, error) {
	if err := s.authorize(ctx, p, opCirclesJoinCircle, policy.None); err != nil {
		return "", err
	}
	return s.askToJoin(ctx, p, circleGroup, opCirclesJoinCircle.Name, id, message)
}

// RemoveCircleUsers removes members (or lets the caller leave).
func (s *Social) RemoveCircleUsers(ctx context.Context, p *auth.Principal, id string, uids []string) ([]Outcome, error) {
	if err := s.authorize(ctx, p, opCirclesRemoveUsers, policy.On("id", id).ActingOn(uids)); err != nil {
		return nil, err
	}
	if domain.AutomaticCircle(id) {
		return nil, domain.FailedPrecondition("circle %s is automatic: its members follow its owner", id)
	}
	return s.removeMembers(ctx, p, circleGroup, opCirclesRemoveUsers.Name, id, uids)
}

// ChangeCircleRights sets a member's rights.
func (s *Social) ChangeCircleRights(ctx context.Context, p *auth.Principal, id, uid string, rights []string) (*domain.Membership, error) {
	if err := s.authorize(ctx, p, opCirclesChangeRights, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.changeRights(ctx, p, circleGroup, opCirclesChangeRights.Name, id, uid, rights)
}

// SetCircleOwner hands a circle to one of its members.
func (s *Social) SetCircleOwner(ctx context.Context, p *auth.Principal, id, uid string) (*CircleView, error) {
	if err := s.authorize(ctx, p, opCirclesSetOwner, policy.On("id", id)); err != nil {
		return nil, err
	}
	if domain.AutomaticCircle(id) {
		return nil, domain.FailedPrecondition("circle %s is automatic: it always belongs to %s", id, strings.SplitN(id, ":", 2)[0])
	}
	err := s.update(ctx, &record{op: opCirclesSetOwner.Name, actor: p, object: domain.CircleObject(id), detail: "owner=" + uid}, func(tx store.Tx) error {
		m, err := tx.Circles().Member(ctx, id, uid)
		if domain.HasCode(err, domain.CodeNotFound) {
			return domain.FailedPrecondition("%s is not a member of circle %s; only a member can become its owner", uid, id)
		}
		if err != nil {
			return err
		}
		if err := tx.Circles().SetOwner(ctx, id, uid); err != nil {
			return err
		}
		m.Rights = domain.CircleRights
		if err := tx.Circles().SetMember(ctx, m); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeCircle, id)
	})
	if err != nil {
		return nil, err
	}
	return s.getCircle(ctx, id)
}

// GetCircleProfileDescription describes the attributes of a circle's
// profile.
func (s *Social) GetCircleProfileDescription(ctx context.Context, p *auth.Principal) (*domain.ProfileDescription, error) {
	if err := s.authorize(ctx, p, opCirclesGetProfileDescription, policy.None); err != nil {
		return nil, err
	}
	return s.describe(ctx, store.ProfileCircle)
}

// GetCircleProfile returns a circle's profile.
func (s *Social) GetCircleProfile(ctx context.Context, p *auth.Principal, id string) ([]domain.ProfileValue, error) {
	if err := s.authorize(ctx, p, opCirclesGetCircleProfile, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.getProfile(ctx, store.ProfileCircle, id, s.circleExists(ctx, id))
}

// SetCircleProfile applies what it can of a profile change.
func (s *Social) SetCircleProfile(ctx context.Context, p *auth.Principal, id string, set map[string]string, clearAttrs []string) ([]domain.AttributeChange, error) {
	if err := s.authorize(ctx, p, opCirclesSetCircleProfile, policy.On("id", id)); err != nil {
		return nil, err
	}
	return s.setProfile(ctx, &record{op: opCirclesSetCircleProfile.Name, actor: p, object: domain.CircleObject(id)}, store.ProfileCircle, id, set, clearAttrs, s.circleExists(ctx, id))
}

// circleExists checks a circle, automatic ones included (their owner exists).
func (s *base) circleExists(ctx context.Context, id string) func(store.Tx) error {
	return func(tx store.Tx) error {
		if !domain.AutomaticCircle(id) {
			_, err := tx.Circles().Get(ctx, id)
			return err
		}
		owner := strings.SplitN(id, ":", 2)[0]
		if _, err := tx.Projects().Get(ctx, owner); err == nil {
			return nil
		}
		if _, err := tx.Users().Get(ctx, owner); err != nil {
			return domain.NotFound("circle %q not found", id)
		}
		return nil
	}
}

// ValidPermissions lists the rights that exist for kind: those project and
// circle memberships carry, and those circles are granted on experiments,
// libraries and realizations.
func (s *Social) ValidPermissions(ctx context.Context, p *auth.Principal, kind string) ([]domain.Permission, error) {
	if err := s.authorize(ctx, p, opApiInfoGetValidPermissions, policy.None); err != nil {
		return nil, err
	}
	return domain.ValidPermissions("kind", kind)
}
