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

// consenter reports whether uid is the party whose consent r waits for:
// the invited user for an invitation, whoever may add users for a request
// to join, an admin for a project's approval.
func (s *Social) consenter(ctx context.Context, uid string, r *domain.PendingRequest) (bool, error) {
	switch r.Kind {
	case domain.RequestProjectAdd, domain.RequestCircleAdd:
		return uid == r.Subject, nil
	case domain.RequestProjectJoin, domain.RequestCircleJoin:
		g, _ := groupOf(r)
		d := s.engine.Check(ctx, uid, g.addAction, r.Object)
		if d.Allowed {
			return true, nil
		}
		if domain.CodeOf(d.Err) == domain.CodeInternal {
			return false, d.Err
		}
		return false, nil
	case domain.RequestProjectApproval:
		admins, err := s.engine.Admins(ctx)
		return slices.Contains(admins, uid), err
	}
	return false, nil
}

// pendingFor loads a live request that uid may see: as its subject or
// requester, or as the party whose consent it waits for. Others learn only
// that it was not found.
func (s *Social) pendingFor(ctx context.Context, uid, id string) (*domain.PendingRequest, bool, error) {
	var r *domain.PendingRequest
	if err := s.view(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.Requests().Get(ctx, id)
		return err
	}); err != nil {
		if domain.HasCode(err, domain.CodeNotFound) {
			return nil, false, domain.NotFound("request %q not found: it was answered, withdrawn, or never existed", id)
		}
		return nil, false, err
	}
	can, err := s.consenter(ctx, uid, r)
	if err != nil {
		return nil, false, err
	}
	if !can && uid != r.Subject && uid != r.Requester {
		return nil, false, domain.NotFound("request %q not found: it was answered, withdrawn, or never existed", id)
	}
	if !r.ExpiresAt.After(s.now()) {
		return nil, false, domain.FailedPrecondition("request %s expired at %s; ask again", id, r.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	return r, can, nil
}

// AcceptRequest gives p's consent: the membership (or approval) it asked
// for takes effect, in the same transaction that consumes the request, so
// a request is accepted at most once.
func (s *Social) AcceptRequest(ctx context.Context, p *auth.Principal, id string) error {
	r, can, err := s.pendingFor(ctx, p.UID, id)
	if err != nil {
		return err
	}
	if !can {
		return domain.PermissionDenied("request %s waits for the consent of %s, not yours", id, consentParty(r))
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

func consentParty(r *domain.PendingRequest) string {
	switch r.Kind {
	case domain.RequestProjectAdd, domain.RequestCircleAdd:
		return r.Subject
	case domain.RequestProjectApproval:
		return "an administrator"
	}
	return "a member with add_user"
}

// DeclineRequest refuses consent, or withdraws the caller's own request.
func (s *Social) DeclineRequest(ctx context.Context, p *auth.Principal, id, reason string) error {
	r, can, err := s.pendingFor(ctx, p.UID, id)
	if err != nil {
		return err
	}
	withdraw := p.UID == r.Requester
	if !can && !withdraw {
		return domain.PermissionDenied("request %s waits for the consent of %s, not yours", id, consentParty(r))
	}
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
		text := fmt.Sprintf("%s declined the request about %s %s", p.UID, g.noun, name)
		if withdraw {
			text = fmt.Sprintf("%s withdrew the request about %s %s", p.UID, g.noun, name)
		}
		if reason != "" {
			text += ": " + reason
		}
		return s.notify(ctx, tx, &domain.Notification{Recipient: to, Sender: p.UID, Text: text})
	})
}

// ListRequests lists live requests p made, is the subject of, or may answer.
func (s *Social) ListRequests(ctx context.Context, p *auth.Principal) ([]RequestView, error) {
	// The groups whose join requests p may answer.
	var objects []string
	for _, kind := range []struct{ action, kind string }{{policy.ProjectAddUser, "project"}, {policy.CircleAddUser, "circle"}} {
		objs, err := s.engine.ListAllowed(ctx, p.UID, kind.action, kind.kind)
		if err != nil {
			return nil, err
		}
		objects = append(objects, objs...)
	}
	admins, err := s.engine.Admins(ctx)
	if err != nil {
		return nil, err
	}
	isAdmin := slices.Contains(admins, p.UID)
	seen := map[string]bool{}
	var out []RequestView
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
		if isAdmin {
			if approvals, err = tx.Requests().ListByKind(ctx, domain.RequestProjectApproval, now); err != nil {
				return err
			}
		}
		for _, r := range slices.Concat(mine, about, approvals) {
			if seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			var actionable bool
			switch r.Kind {
			case domain.RequestProjectAdd, domain.RequestCircleAdd:
				actionable = r.Subject == p.UID
			case domain.RequestProjectApproval:
				actionable = isAdmin
			default:
				actionable = slices.Contains(objects, r.Object) && r.Subject != p.UID
			}
			if !actionable && r.Subject != p.UID && r.Requester != p.UID {
				continue // an invitation to someone else, seen through add_user
			}
			out = append(out, RequestView{PendingRequest: r, Actionable: actionable})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b RequestView) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}
