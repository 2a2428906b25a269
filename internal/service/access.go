package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// sharedKind describes an object shared by granting rights to circles.
type sharedKind struct {
	noun   string // experiment, library, realization
	vocab  domain.Rights
	change string
	exists func(ctx context.Context, tx store.Tx, id string) error
}

var (
	experimentKind = &sharedKind{noun: "experiment", vocab: domain.ExperimentRights, change: store.ChangeExperiment,
		exists: func(ctx context.Context, tx store.Tx, id string) error {
			_, err := tx.Experiments().Get(ctx, id)
			return err
		}}
	libraryKind = &sharedKind{noun: "library", vocab: domain.LibraryRights, change: store.ChangeLibrary,
		exists: func(ctx context.Context, tx store.Tx, id string) error {
			_, err := tx.Libraries().Get(ctx, id)
			return err
		}}
	realizationKind = &sharedKind{noun: "realization", vocab: domain.RealizationRights, change: store.ChangeRealization,
		exists: func(ctx context.Context, tx store.Tx, id string) error {
			r, err := tx.Realizations().Get(ctx, id)
			if err == nil && !r.State.Live() {
				return domain.FailedPrecondition("realization %s has ended", id)
			}
			return err
		}}
)

// changeAccess sets the rights circle holds on an object; none revokes.
func (s *Testbed) changeAccess(ctx context.Context, p *auth.Principal, k *sharedKind, op, id, circle string, rightNames []string) ([]*domain.Grant, error) {
	if _, _, err := domain.ParseCircleID("circle", circle); err != nil {
		return nil, err
	}
	rights, err := domain.ParseRights("rights", k.vocab, rightNames)
	if err != nil {
		return nil, err
	}
	object := k.noun + ":" + id
	var grants []*domain.Grant
	err = s.update(ctx, &record{op: op, actor: p, object: object, detail: circle + " rights=" + rights.Encode()}, func(tx store.Tx) error {
		if err := k.exists(ctx, tx, id); err != nil {
			return err
		}
		if err := s.circleExists(ctx, circle)(tx); err != nil {
			return err
		}
		if err := tx.Grants().Set(ctx, &domain.Grant{Object: object, Circle: circle, Rights: rights}); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, k.change, id); err != nil {
			return err
		}
		grants, err = tx.Grants().List(ctx, object)
		return err
	})
	return grants, err
}

// ownerOf returns who owns a new object owner:name that creator makes: the
// user owner, or the creator when owner is a project (objects made in a
// project's namespace are their creator's, as DETER has it).
func ownerOf(ctx context.Context, tx store.Tx, id, creator string) (string, error) {
	owner, _, _ := strings.Cut(id, ":")
	if _, err := tx.Projects().Get(ctx, owner); err == nil {
		return creator, nil
	} else if !domain.HasCode(err, domain.CodeNotFound) {
		return "", err
	}
	if _, err := tx.Users().Get(ctx, owner); err != nil {
		if domain.HasCode(err, domain.CodeNotFound) {
			return "", domain.NotFound("no user or project %q to own %s", owner, id)
		}
		return "", err
	}
	return owner, nil
}

// offerOwnership asks uid to take over an experiment or library that p
// owns: a pending request of kind for uid's consent, through the same
// request flow (Notifications.AcceptRequest, DeclineRequest) as
// invitations to projects and circles. Accepting hands it over
// (takeOwnership).
func (s *Testbed) offerOwnership(ctx context.Context, p *auth.Principal, k *sharedKind, op string, kind domain.RequestKind, id, uid string) (string, error) {
	if err := domain.ValidateUID("uid", uid); err != nil {
		return "", err
	}
	object := k.noun + ":" + id
	now := s.now()
	req := &domain.PendingRequest{
		ID: newID(), Kind: kind, Object: object, Subject: uid,
		CreatedAt: now, ExpiresAt: now.Add(consentTTL),
	}
	err := s.update(ctx, &record{op: op, actor: p, object: object, detail: "offered to " + uid}, func(tx store.Tx) error {
		owner, err := objectOwner(ctx, tx, k, id)
		if err != nil {
			return err
		}
		if owner == uid {
			return domain.FailedPrecondition("%s already owns %s %s", uid, k.noun, id)
		}
		// The offer is the owner's, also when an administrator makes it:
		// it holds while they own the object, and they may withdraw it.
		req.Requester = owner
		u, err := tx.Users().Get(ctx, uid)
		if err != nil {
			return err
		}
		if u.State != domain.UserActive {
			return domain.FailedPrecondition("user %s is not active and cannot take %s %s", uid, k.noun, id)
		}
		if old, err := tx.Requests().Find(ctx, kind, object, uid, now); err == nil {
			return domain.AlreadyExists("%s was offered %s %s already (request %s)", uid, k.noun, id, old.ID)
		} else if !domain.HasCode(err, domain.CodeNotFound) {
			return err
		}
		if err := tx.Requests().Create(ctx, req); err != nil {
			return err
		}
		return s.notify(ctx, tx, &domain.Notification{
			Recipient: uid, Sender: p.UID, RequestID: req.ID, Urgent: true,
			Text: fmt.Sprintf("%s offers you ownership of %s %s. Accept with: trellis request accept %s", p.UID, k.noun, id, req.ID),
		})
	})
	if err != nil {
		return "", err
	}
	return req.ID, nil
}

// objectOwner returns an experiment's or library's owner.
func objectOwner(ctx context.Context, tx store.Tx, k *sharedKind, id string) (string, error) {
	switch k {
	case experimentKind:
		x, err := tx.Experiments().Get(ctx, id)
		if err != nil {
			return "", err
		}
		return x.Owner, nil
	case libraryKind:
		l, err := tx.Libraries().Get(ctx, id)
		if err != nil {
			return "", err
		}
		return l.Owner, nil
	}
	return "", fmt.Errorf("service: %s has no owner to hand on", k.noun)
}

// takeOwnership carries out an accepted offer of ownership, in the
// transaction that consumes the request: the offer holds only while its
// maker still owns the object.
func (s *base) takeOwnership(ctx context.Context, tx store.Tx, r *domain.PendingRequest) error {
	noun, id, _ := strings.Cut(r.Object, ":")
	k := experimentKind
	if noun == libraryKind.noun {
		k = libraryKind
	}
	owner, err := objectOwner(ctx, tx, k, id)
	if err != nil {
		return err
	}
	if owner != r.Requester {
		return domain.FailedPrecondition("%s no longer owns %s %s: the offer lapsed", r.Requester, k.noun, id)
	}
	if k == experimentKind {
		err = tx.Experiments().SetOwner(ctx, id, r.Subject)
	} else {
		err = tx.Libraries().SetOwner(ctx, id, r.Subject)
	}
	if err != nil {
		return err
	}
	if err := tx.Changes().Append(ctx, k.change, id); err != nil {
		return err
	}
	return s.notify(ctx, tx, &domain.Notification{
		Recipient: r.Requester, Sender: r.Subject,
		Text: fmt.Sprintf("%s accepted ownership of %s %s", r.Subject, k.noun, id),
	})
}
