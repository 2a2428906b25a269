package service

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// RequestView is a pending request as one caller sees it.
type RequestView struct {
	*domain.PendingRequest
	// Actionable: the caller is the party whose consent it waits for.
	Actionable bool
}

// groupOf returns the group kind and name a request is about.
func groupOf(r *domain.PendingRequest) (*group, string) {
	kind, name, _ := strings.Cut(r.Object, ":")
	if kind == "circle" {
		return circleGroup, name
	}
	return projectGroup, name
}

// ownership reports whether r offers an experiment or library to a new
// owner.
func ownership(r *domain.PendingRequest) bool {
	return r.Kind == domain.RequestExperimentOwner || r.Kind == domain.RequestLibraryOwner
}

// pendingRequest loads request id, expired or not, for the consent rule
// to decide about; nil when there is none.
func (s *Social) pendingRequest(ctx context.Context, id string) (*domain.PendingRequest, error) {
	r, err := viewOf(ctx, s.base, func(tx store.Tx) (*domain.PendingRequest, error) { return tx.Requests().Get(ctx, id) })
	if domain.HasCode(err, domain.CodeNotFound) {
		return nil, nil
	}
	return r, err
}

// live refuses a request whose time ran out.
func (s *Social) live(r *domain.PendingRequest) error {
	if !r.ExpiresAt.After(s.now()) {
		return domain.FailedPrecondition("request %s expired at %s; ask again", r.ID, r.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	return nil
}

// AcceptRequest gives p's consent: the membership (or approval) it asked
// for takes effect, in the same transaction that consumes the request, so
// a request is accepted at most once.
func (s *Social) AcceptRequest(ctx context.Context, p *auth.Principal, id string) error {
	r, err := s.pendingRequest(ctx, id)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, p, opNotificationsAcceptRequest, policy.Target{Request: r, Account: policy.Named{Field: "id", Name: id}}); err != nil {
		return err
	}
	if err := s.live(r); err != nil {
		return err
	}
	g, name := groupOf(r)
	rec := &record{op: opNotificationsAcceptRequest.Name, actor: p, object: r.Object, detail: fmt.Sprintf("%s request %s for %s", r.Kind, id, r.Subject)}
	return s.update(ctx, rec, func(tx store.Tx) error {
		if err := tx.Requests().Delete(ctx, id); err != nil {
			if domain.HasCode(err, domain.CodeNotFound) {
				return domain.FailedPrecondition("request %s was answered or withdrawn already", id)
			}
			return err
		}
		if r.Kind == domain.RequestProjectApproval {
			_, err := s.approve(ctx, tx, p, name)
			return err
		}
		if ownership(r) {
			return s.takeOwnership(ctx, tx, r)
		}
		if err := s.admit(ctx, tx, g, name, r.Subject, r.Rights); err != nil {
			return err
		}
		// Tell the other side.
		to, text := r.Requester, fmt.Sprintf("%s accepted your invitation to %s %s", p.UID, g.noun, name)
		if r.Kind == domain.RequestProjectJoin || r.Kind == domain.RequestCircleJoin {
			to, text = r.Subject, fmt.Sprintf("%s accepted your request to join %s %s", p.UID, g.noun, name)
		}
		if to == p.UID {
			return nil
		}
		return s.notify(ctx, tx, &domain.Notification{Recipient: to, Sender: p.UID, Text: text})
	})
}

// DeclineRequest refuses consent, or withdraws the caller's own request.
func (s *Social) DeclineRequest(ctx context.Context, p *auth.Principal, id, reason string) error {
	r, err := s.pendingRequest(ctx, id)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, p, opNotificationsDeclineRequest, policy.Target{Request: r, Account: policy.Named{Field: "id", Name: id}}); err != nil {
		return err
	}
	if err := s.live(r); err != nil {
		return err
	}
	withdraw := p.UID == r.Requester
	g, name := groupOf(r)
	rec := &record{op: opNotificationsDeclineRequest.Name, actor: p, object: r.Object, detail: fmt.Sprintf("%s request %s for %s", r.Kind, id, r.Subject)}
	return s.update(ctx, rec, func(tx store.Tx) error {
		if err := tx.Requests().Delete(ctx, id); err != nil {
			if domain.HasCode(err, domain.CodeNotFound) {
				return domain.FailedPrecondition("request %s was answered or withdrawn already", id)
			}
			return err
		}
		if r.Kind == domain.RequestProjectApproval && !withdraw {
			return s.reject(ctx, tx, p, name, reason)
		}
		if r.Kind == domain.RequestProjectApproval {
			return s.deleteProject(ctx, tx, name) // the requester withdrew
		}
		to := r.Requester
		if to == p.UID {
			to = r.Subject
		}
		if to == p.UID {
			return nil
		}
		noun := g.noun
		if ownership(r) {
			noun, name, _ = strings.Cut(r.Object, ":")
		}
		text := fmt.Sprintf("%s declined the request about %s %s", p.UID, noun, name)
		if withdraw {
			text = fmt.Sprintf("%s withdrew the request about %s %s", p.UID, noun, name)
		}
		if reason != "" {
			text += ": " + reason
		}
		return s.notify(ctx, tx, &domain.Notification{Recipient: to, Sender: p.UID, Text: text})
	})
}

// ListRequests lists live requests p made, is the subject of, or may
// answer; Actionable says which p may answer (the consent rule's own
// question, so AcceptRequest agrees).
func (s *Social) ListRequests(ctx context.Context, p *auth.Principal) ([]RequestView, error) {
	if err := s.authorize(ctx, p, opNotificationsListRequests, policy.None); err != nil {
		return nil, err
	}
	// The groups whose join requests p may answer.
	var objects []string
	for _, kind := range []struct{ action, kind string }{{policy.ProjectAddUser, "project"}, {policy.CircleAddUser, "circle"}} {
		objs, err := s.engine.ListAllowed(ctx, p.UID, kind.action, kind.kind)
		if err != nil {
			return nil, err
		}
		objects = append(objects, objs...)
	}
	// Approvals wait for any administrator: load them for one.
	admins, err := s.engine.Admins(ctx)
	if err != nil {
		return nil, err
	}
	var found []*domain.PendingRequest
	err = s.view(ctx, func(tx store.Tx) error {
		now := s.now()
		mine, err := tx.Requests().ListByUser(ctx, p.UID, now)
		if err != nil {
			return err
		}
		about, err := tx.Requests().ListByObjects(ctx, objects, now)
		if err != nil {
			return err
		}
		var approvals []*domain.PendingRequest
		if slices.Contains(admins, p.UID) {
			if approvals, err = tx.Requests().ListByKind(ctx, domain.RequestProjectApproval, now); err != nil {
				return err
			}
		}
		found = slices.Concat(mine, about, approvals)
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []RequestView
	for _, r := range found {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		actionable, err := s.engine.Consenter(ctx, p.UID, r)
		if err != nil {
			return nil, err
		}
		if !actionable && r.Subject != p.UID && r.Requester != p.UID {
			continue // an invitation to someone else, seen through add_user
		}
		out = append(out, RequestView{PendingRequest: r, Actionable: actionable})
	}
	slices.SortFunc(out, func(a, b RequestView) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}
