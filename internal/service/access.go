package service

import (
	"context"
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

// ownerExists checks that an owner:name id's owner is a user or a project.
func ownerExists(ctx context.Context, tx store.Tx, id string) error {
	owner, _, _ := strings.Cut(id, ":")
	if _, err := tx.Projects().Get(ctx, owner); err == nil {
		return nil
	} else if !domain.HasCode(err, domain.CodeNotFound) {
		return err
	}
	if _, err := tx.Users().Get(ctx, owner); err != nil {
		if domain.HasCode(err, domain.CodeNotFound) {
			return domain.NotFound("no user or project %q to own %s", owner, id)
		}
		return err
	}
	return nil
}
