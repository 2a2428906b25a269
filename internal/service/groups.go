package service

import (
	"context"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Projects and circles are both groups of users with rights, whose
// membership widens only with consent. group describes one kind, so that
// one piece of code adds, invites, removes and re-rights members of both.
type group struct {
	noun        string // "project" or "circle"
	vocab       domain.Rights
	addRequest  domain.RequestKind
	joinRequest domain.RequestKind
	addAction   string // who may consent to a join
	change      string
	members     func(tx store.Tx) memberships
	// owner returns the group's owner (uid or project), or not-found.
	owner func(ctx context.Context, tx store.Tx, name string) (string, error)
	// open reports why new members may not join now, or nil.
	open func(ctx context.Context, tx store.Tx, name string) error
}

// memberships is what the Projects and Circles stores share.
type memberships interface {
	SetMember(ctx context.Context, m *domain.Membership) error
	RemoveMember(ctx context.Context, group, uid string) error
	Member(ctx context.Context, group, uid string) (*domain.Membership, error)
}

func (g *group) object(name string) string { return g.noun + ":" + name }

var projectGroup = &group{
	noun: "project", vocab: domain.ProjectRights,
	addRequest: domain.RequestProjectAdd, joinRequest: domain.RequestProjectJoin,
	addAction: policy.ProjectAddUser, change: store.ChangeProject,
	members: func(tx store.Tx) memberships { return tx.Projects() },
	owner: func(ctx context.Context, tx store.Tx, name string) (string, error) {
		p, err := tx.Projects().Get(ctx, name)
		if err != nil {
			return "", err
		}
		return p.Owner, nil
	},
	open: func(ctx context.Context, tx store.Tx, name string) error {
		if err := domain.ValidateProjectName("name", name); err != nil {
			return err
		}
		p, err := tx.Projects().Get(ctx, name)
		if err != nil {
			return err
		}
		if p.State != domain.ProjectApproved {
			return domain.FailedPrecondition("project %s is waiting for an administrator's approval", name)
		}
		return nil
	},
}

var circleGroup = &group{
	noun: "circle", vocab: domain.CircleRights,
	addRequest: domain.RequestCircleAdd, joinRequest: domain.RequestCircleJoin,
	addAction: policy.CircleAddUser, change: store.ChangeCircle,
	members: func(tx store.Tx) memberships { return tx.Circles() },
	owner: func(ctx context.Context, tx store.Tx, id string) (string, error) {
		c, err := tx.Circles().Get(ctx, id)
		if err != nil {
			return "", err
		}
		return c.Owner, nil
	},
	open: func(ctx context.Context, tx store.Tx, id string) error {
		if _, _, err := domain.ParseCircleID("id", id); err != nil {
			return err
		}
		if domain.AutomaticCircle(id) {
			return domain.FailedPrecondition("circle %s is automatic: its members follow %s", id, id[:len(id)/2])
		}
		_, err := tx.Circles().Get(ctx, id)
		return err
	},
}

// consentTTL is how long a request waits for consent (DETER: 48 hours).
const consentTTL = 48 * time.Hour

// Outcome is what happened to one user of a batch.
type Outcome struct {
	UID       string
	Outcome   string // requested, added, removed, changed, failed
	RequestID string
	Reason    string
}

func failed(uid string, err error) Outcome {
	return Outcome{UID: uid, Outcome: "failed", Reason: err.Error()}
}

// notify writes a notification and tells every replica's watchers.
func (s *base) notify(ctx context.Context, tx store.Tx, n *domain.Notification) error {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.now()
	}
	if err := tx.Notifications().Create(ctx, n); err != nil {
		return err
	}
	return tx.Changes().Append(ctx, store.ChangeNotification, n.Recipient)
}

// invite asks each user to join group name with rights; each joins once it
// consents. Users already in, unknown or already asked fail alone.
func (s *Social) invite(ctx context.Context, p *auth.Principal, g *group, op, name string, uids []string, rightNames []string) ([]Outcome, error) {
	rights, err := domain.ParseRights("rights", g.vocab, rightNames)
	if err != nil {
		return nil, err
	}
	if len(uids) == 0 {
		return nil, domain.Invalid("uids", "uids.required", "name at least one user")
	}
	var out []Outcome
	err = s.update(ctx, &record{op: op, actor: p, object: g.object(name), detail: "rights=" + rights.Encode()}, func(tx store.Tx) error {
		out = out[:0]
		if err := g.open(ctx, tx, name); err != nil {
			return err
		}
		now := s.now()
		for _, uid := range domain.SortedUnique(uids) {
			if err := s.canJoin(ctx, tx, g, name, uid, g.addRequest, now); err != nil {
				out = append(out, failed(uid, err))
				continue
			}
			req := &domain.PendingRequest{
				ID: newID(), Kind: g.addRequest, Object: g.object(name), Subject: uid, Requester: p.UID,
				Rights: rights, CreatedAt: now, ExpiresAt: now.Add(consentTTL),
			}
			if err := tx.Requests().Create(ctx, req); err != nil {
				return err
			}
			if err := s.notify(ctx, tx, &domain.Notification{
				Recipient: uid, Sender: p.UID, RequestID: req.ID,
				Text: fmt.Sprintf("%s invites you to %s %s with rights %s. Accept with: trellis request accept %s", p.UID, g.noun, name, rights, req.ID),
			}); err != nil {
				return err
			}
			out = append(out, Outcome{UID: uid, Outcome: "requested", RequestID: req.ID})
		}
		return nil
	})
	return out, err
}

// canJoin explains why uid cannot be asked into the group, or returns nil.
func (s *Social) canJoin(ctx context.Context, tx store.Tx, g *group, name, uid string, kind domain.RequestKind, now time.Time) error {
	u, err := tx.Users().Get(ctx, uid)
	if err != nil {
		return err
	}
	if u.State != domain.UserActive {
		return domain.FailedPrecondition("account %s is not active", uid)
	}
	if _, err := g.members(tx).Member(ctx, name, uid); err == nil {
		return domain.AlreadyExists("%s is already a member of %s %s", uid, g.noun, name)
	} else if !domain.HasCode(err, domain.CodeNotFound) {
		return err
	}
	if r, err := tx.Requests().Find(ctx, kind, g.object(name), uid, now); err == nil {
		return domain.AlreadyExists("a request for %s to join %s %s is pending already (%s)", uid, g.noun, name, r.ID)
	} else if !domain.HasCode(err, domain.CodeNotFound) {
		return err
	}
	return nil
}

// askToJoin records p's wish to join; whoever may add users is asked.
func (s *Social) askToJoin(ctx context.Context, p *auth.Principal, g *group, op, name, message string) (string, error) {
	if len(message) > 1000 {
		return "", domain.Invalid("message", "message.too_long", "a message is at most 1000 characters")
	}
	if err := s.view(ctx, func(tx store.Tx) error { return g.open(ctx, tx, name) }); err != nil {
		return "", err
	}
	holders, err := s.engine.Holders(ctx, g.addAction, g.object(name))
	if err != nil {
		return "", err
	}
	var id string
	err = s.update(ctx, &record{op: op, actor: p, object: g.object(name)}, func(tx store.Tx) error {
		now := s.now()
		if err := s.canJoin(ctx, tx, g, name, p.UID, g.joinRequest, now); err != nil {
			return err
		}
		req := &domain.PendingRequest{
			ID: newID(), Kind: g.joinRequest, Object: g.object(name), Subject: p.UID, Requester: p.UID,
			Message: message, CreatedAt: now, ExpiresAt: now.Add(consentTTL),
		}
		if err := tx.Requests().Create(ctx, req); err != nil {
			return err
		}
		id = req.ID
		for _, h := range holders {
			text := fmt.Sprintf("%s asks to join %s %s. Accept with: trellis request accept %s", p.UID, g.noun, name, req.ID)
			if message != "" {
				text += " (" + message + ")"
			}
			if err := s.notify(ctx, tx, &domain.Notification{Recipient: h, Sender: p.UID, RequestID: req.ID, Text: text}); err != nil {
				return err
			}
		}
		return nil
	})
	return id, err
}

// removeMembers removes users from the group; the owner stays.
func (s *Social) removeMembers(ctx context.Context, p *auth.Principal, g *group, op, name string, uids []string) ([]Outcome, error) {
	if len(uids) == 0 {
		return nil, domain.Invalid("uids", "uids.required", "name at least one user")
	}
	var out []Outcome
	err := s.update(ctx, &record{op: op, actor: p, object: g.object(name)}, func(tx store.Tx) error {
		out = out[:0]
		owner, err := g.owner(ctx, tx, name)
		if err != nil {
			return err
		}
		removed := 0
		for _, uid := range domain.SortedUnique(uids) {
			if uid == owner {
				out = append(out, failed(uid, domain.FailedPrecondition("%s owns %s %s and cannot be removed; transfer ownership first", uid, g.noun, name)))
				continue
			}
			if err := g.members(tx).RemoveMember(ctx, name, uid); err != nil {
				if domain.HasCode(err, domain.CodeNotFound) {
					out = append(out, failed(uid, err))
					continue
				}
				return err
			}
			removed++
			out = append(out, Outcome{UID: uid, Outcome: "removed"})
			if uid != p.UID {
				if err := s.notify(ctx, tx, &domain.Notification{Recipient: uid, Sender: p.UID, Text: fmt.Sprintf("%s removed you from %s %s", p.UID, g.noun, name)}); err != nil {
					return err
				}
			}
		}
		if removed == 0 {
			return nil
		}
		return tx.Changes().Append(ctx, g.change, name)
	})
	return out, err
}

// changeRights sets a member's rights; the owner's are all and stay so.
func (s *Social) changeRights(ctx context.Context, p *auth.Principal, g *group, op, name, uid string, rightNames []string) (*domain.Membership, error) {
	rights, err := domain.ParseRights("rights", g.vocab, rightNames)
	if err != nil {
		return nil, err
	}
	var m *domain.Membership
	err = s.update(ctx, &record{op: op, actor: p, object: g.object(name), detail: uid + " rights=" + rights.Encode()}, func(tx store.Tx) error {
		owner, err := g.owner(ctx, tx, name)
		if err != nil {
			return err
		}
		if uid == owner {
			return domain.FailedPrecondition("%s owns %s %s and holds every right", uid, g.noun, name)
		}
		if m, err = g.members(tx).Member(ctx, name, uid); err != nil {
			return err
		}
		m.Rights = rights
		if err := g.members(tx).SetMember(ctx, m); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, g.change, name)
	})
	return m, err
}

// admit makes uid a member with rights, as a consented request says.
func (s *Social) admit(ctx context.Context, tx store.Tx, g *group, name, uid string, rights domain.Rights) error {
	if err := g.open(ctx, tx, name); err != nil {
		return err
	}
	if err := g.members(tx).SetMember(ctx, &domain.Membership{Group: name, UID: uid, Rights: rights, AddedAt: s.now()}); err != nil {
		return err
	}
	return tx.Changes().Append(ctx, g.change, name)
}
