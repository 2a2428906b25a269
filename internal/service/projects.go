package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// ProjectView is a project with what a reader sees of it.
type ProjectView struct {
	*domain.Project
	Description string
	Children    []*domain.ProjectChild
	Parents     []string
}

// checkNameFree refuses a name that a user or a project has: uids and
// project names share one namespace, since both own circles (owner:name).
func checkNameFree(ctx context.Context, tx store.Tx, field, name string) error {
	// A closed account's uid counts: what it owned still carries its name.
	if taken, err := tx.Users().Taken(ctx, name); err != nil {
		return err
	} else if taken {
		return domain.Invalid(field, field+".taken", fmt.Sprintf("%q is a user's uid; projects and users share one namespace", name))
	}
	if _, err := tx.Projects().Get(ctx, name); err == nil {
		return domain.AlreadyExists("project %q already exists", name)
	} else if !domain.HasCode(err, domain.CodeNotFound) {
		return err
	}
	return nil
}

// RequestProject creates a project owned by p. Users who belong to no
// approved project (or everyone, with VetAllProjects, or whoever asks for
// vetting) wait for an admin: the project is pending and the admins are
// asked. Otherwise it exists at once.
func (s *Social) RequestProject(ctx context.Context, p *auth.Principal, name, description string, given map[string]string, vetting bool) (*domain.Project, string, error) {
	if err := s.authorize(ctx, p, opProjectsRequestProject, policy.None); err != nil {
		return nil, "", err
	}
	var vs domain.Violations
	if err := vs.Check(domain.ValidateProjectName("name", name)); err != nil {
		return nil, "", err
	}
	profile, err := newProfile(description, given)
	if err := vs.Check(err); err != nil {
		return nil, "", err
	}
	if err := vs.Check(s.validateNewProfile(ctx, p, store.ProfileProject, profile)); err != nil {
		return nil, "", err
	}
	if err := vs.Err(); err != nil {
		return nil, "", err
	}
	powerful, err := s.engine.Powerful(ctx, p.UID)
	if err != nil {
		return nil, "", err
	}
	vetting = vetting || !powerful || s.cfg.VetAllProjects
	admins, err := s.engine.Admins(ctx)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	proj := &domain.Project{Name: name, Owner: p.UID, State: domain.ProjectApproved, Vetting: vetting, CreatedAt: now, ApprovedAt: now}
	if vetting {
		proj.State, proj.ApprovedAt = domain.ProjectPending, time.Time{}
	}
	var reqID string
	rec := &record{op: opProjectsRequestProject.Name, actor: p, object: domain.ProjectObject(name), detail: "state=" + string(proj.State)}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		if err := checkNameFree(ctx, tx, "name", name); err != nil {
			return err
		}
		if err := tx.Projects().Create(ctx, proj); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileProject, name, profile); err != nil {
			return err
		}
		if !vetting {
			return s.makeOwnerMember(ctx, tx, proj)
		}
		req := &domain.PendingRequest{
			ID: newID(), Kind: domain.RequestProjectApproval, Object: domain.ProjectObject(name),
			Subject: p.UID, Requester: p.UID, Message: description, CreatedAt: now, ExpiresAt: now.Add(consentTTL),
		}
		if err := tx.Requests().Create(ctx, req); err != nil {
			return err
		}
		reqID = req.ID
		for _, a := range admins {
			if err := s.notify(ctx, tx, &domain.Notification{
				Recipient: a, Sender: p.UID, RequestID: req.ID, Urgent: true,
				Text: fmt.Sprintf("%s requests project %s: %q. Approve with: trellis project approve %s", p.UID, name, description, name),
			}); err != nil {
				return err
			}
		}
		return tx.Changes().Append(ctx, store.ChangeProject, name)
	})
	if err != nil {
		return nil, "", err
	}
	return proj, reqID, nil
}

// makeOwnerMember makes an approved project's owner a member with every right.
func (s *Social) makeOwnerMember(ctx context.Context, tx store.Tx, proj *domain.Project) error {
	if err := tx.Projects().SetMember(ctx, &domain.Membership{Group: proj.Name, UID: proj.Owner, Rights: domain.ProjectRights, AddedAt: s.now()}); err != nil {
		return err
	}
	return tx.Changes().Append(ctx, store.ChangeProject, proj.Name)
}

// ApproveProject approves a pending project; its owner becomes a member.
// It returns the project as a reader sees it.
func (s *Social) ApproveProject(ctx context.Context, p *auth.Principal, name string) (*ProjectView, error) {
	if err := s.authorize(ctx, p, opProjectsApproveProject, policy.None); err != nil {
		return nil, err
	}
	var v *ProjectView
	err := s.update(ctx, &record{op: opProjectsApproveProject.Name, actor: p, object: domain.ProjectObject(name)}, func(tx store.Tx) error {
		if _, err := s.approve(ctx, tx, p, name); err != nil {
			return err
		}
		var err error
		v, err = projectView(ctx, tx, name)
		return err
	})
	return v, err
}

// approve does the approval, for ApproveProject and for an admin accepting
// the approval request.
func (s *Social) approve(ctx context.Context, tx store.Tx, p *auth.Principal, name string) (*domain.Project, error) {
	proj, err := tx.Projects().Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if proj.State == domain.ProjectApproved {
		return nil, domain.FailedPrecondition("project %s is approved already", name)
	}
	proj.State, proj.ApprovedAt = domain.ProjectApproved, s.now()
	if err := tx.Projects().Update(ctx, proj); err != nil {
		return nil, err
	}
	if err := tx.Requests().DeleteByObject(ctx, domain.ProjectObject(name)); err != nil {
		return nil, err
	}
	if err := s.makeOwnerMember(ctx, tx, proj); err != nil {
		return nil, err
	}
	return proj, s.notify(ctx, tx, &domain.Notification{
		Recipient: proj.Owner, Sender: p.UID,
		Text: fmt.Sprintf("%s approved your project %s: you are its owner", p.UID, name),
	})
}

// RejectProject turns down a pending project; the name is free again.
func (s *Social) RejectProject(ctx context.Context, p *auth.Principal, name, reason string) error {
	if err := s.authorize(ctx, p, opProjectsRejectProject, policy.None); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opProjectsRejectProject.Name, actor: p, object: domain.ProjectObject(name)}, func(tx store.Tx) error {
		return s.reject(ctx, tx, p, name, reason)
	})
}

func (s *Social) reject(ctx context.Context, tx store.Tx, p *auth.Principal, name, reason string) error {
	proj, err := tx.Projects().Get(ctx, name)
	if err != nil {
		return err
	}
	if proj.State != domain.ProjectPending {
		return domain.FailedPrecondition("project %s is not waiting for approval", name)
	}
	if err := s.deleteProject(ctx, tx, name); err != nil {
		return err
	}
	text := fmt.Sprintf("%s turned down your request for project %s", p.UID, name)
	if reason != "" {
		text += ": " + reason
	}
	return s.notify(ctx, tx, &domain.Notification{Recipient: proj.Owner, Sender: p.UID, Text: text})
}

// deleteProject removes a project with everything that hangs on it.
func (s *Social) deleteProject(ctx context.Context, tx store.Tx, name string) error {
	circles, err := tx.Circles().DeleteOwnedBy(ctx, name)
	if err != nil {
		return err
	}
	for _, id := range circles {
		if err := tx.Requests().DeleteByObject(ctx, domain.CircleObject(id)); err != nil {
			return err
		}
		if err := tx.Profiles().Set(ctx, store.ProfileCircle, id, nil); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeCircle, id); err != nil {
			return err
		}
	}
	if err := tx.Requests().DeleteByObject(ctx, domain.ProjectObject(name)); err != nil {
		return err
	}
	// The grants go with the circles: the project's own (name:name) and
	// those it owned.
	if err := dropGrantsTo(ctx, tx, append(circles, name+":"+name)...); err != nil {
		return err
	}
	if err := tx.Profiles().Set(ctx, store.ProfileProject, name, nil); err != nil {
		return err
	}
	if err := tx.Projects().Delete(ctx, name); err != nil {
		return err
	}
	return tx.Changes().Append(ctx, store.ChangeProject, name)
}

// GetProject returns a project with its nesting and description.
func (s *Social) GetProject(ctx context.Context, p *auth.Principal, name string) (*ProjectView, error) {
	if err := s.authorize(ctx, p, opProjectsGetProject, policy.On("name", name)); err != nil {
		return nil, err
	}
	return s.getProject(ctx, name)
}

func (s *Social) getProject(ctx context.Context, name string) (*ProjectView, error) {
	return viewOf(ctx, s.base, func(tx store.Tx) (*ProjectView, error) { return projectView(ctx, tx, name) })
}

func projectView(ctx context.Context, tx store.Tx, name string) (*ProjectView, error) {
	proj, err := tx.Projects().Get(ctx, name)
	if err != nil {
		return nil, err
	}
	v := &ProjectView{Project: proj}
	if v.Children, err = tx.Projects().Children(ctx, name); err != nil {
		return nil, err
	}
	parents, err := tx.Projects().Parents(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, pc := range parents {
		v.Parents = append(v.Parents, pc.Parent)
	}
	prof, err := tx.Profiles().Get(ctx, store.ProfileProject, name)
	if err != nil {
		return nil, err
	}
	v.Description = prof["description"]
	return v, nil
}

// ProjectQuery selects projects for ListProjects.
type ProjectQuery struct {
	Prefix, Member string
	IncludePending bool
	PageSize       int32
	PageToken      string
}

// ListProjects lists the projects the caller may read.
func (s *Social) ListProjects(ctx context.Context, p *auth.Principal, q ProjectQuery) ([]*ProjectView, string, error) {
	if err := s.authorize(ctx, p, opProjectsListProjects, policy.Account("member", q.Member)); err != nil {
		return nil, "", err
	}
	pg, err := stringPage(q.PageSize, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	f := store.ProjectFilter{Prefix: q.Prefix, IncludePending: q.IncludePending}
	// The projects the caller may read, or, when the query names another
	// member (an admin's question, the rule says), that member's.
	who := p.UID
	if q.Member != "" {
		who = q.Member
	}
	visible, err := s.visibleTo(ctx, who, opProjectsListProjects)
	if err != nil {
		return nil, "", err
	}
	f.Names = make([]string, 0, len(visible))
	for _, o := range visible {
		f.Names = append(f.Names, strings.TrimPrefix(o, "project:"))
	}
	var out []*ProjectView
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var projects []*domain.Project
		var err error
		projects, next, err = readPage(pg, func(after string, n int) ([]*domain.Project, error) {
			f.Page = store.Page{After: after, Limit: n}
			return tx.Projects().List(ctx, f)
		}, func(p *domain.Project) string { return p.Name }, nil)
		if err != nil {
			return err
		}
		for _, proj := range projects {
			v, err := projectView(ctx, tx, proj.Name)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// AddProjectUsers invites users into a project.
func (s *Social) AddProjectUsers(ctx context.Context, p *auth.Principal, name string, uids, rights []string) ([]Outcome, error) {
	if err := s.authorize(ctx, p, opProjectsAddUsers, policy.On("name", name)); err != nil {
		return nil, err
	}
	return s.invite(ctx, p, projectGroup, opProjectsAddUsers.Name, name, uids, rights)
}

// JoinProject asks to join a project.
func (s *Social) JoinProject(ctx context.Context, p *auth.Principal, name, message string) (string, error) {
	if err := s.authorize(ctx, p, opProjectsJoinProject, policy.None); err != nil {
		return "", err
	}
	return s.askToJoin(ctx, p, projectGroup, opProjectsJoinProject.Name, name, message)
}

// RemoveProjectUsers removes members (or lets the caller leave).
func (s *Social) RemoveProjectUsers(ctx context.Context, p *auth.Principal, name string, uids []string) ([]Outcome, error) {
	if err := s.authorize(ctx, p, opProjectsRemoveUsers, policy.On("name", name).ActingOn(uids)); err != nil {
		return nil, err
	}
	return s.removeMembers(ctx, p, projectGroup, opProjectsRemoveUsers.Name, name, uids)
}

// ChangeProjectRights sets a member's rights.
func (s *Social) ChangeProjectRights(ctx context.Context, p *auth.Principal, name, uid string, rights []string) (*domain.Membership, error) {
	if err := s.authorize(ctx, p, opProjectsChangeRights, policy.On("name", name)); err != nil {
		return nil, err
	}
	return s.changeRights(ctx, p, projectGroup, opProjectsChangeRights.Name, name, uid, rights)
}

// SetProjectOwner hands the project to one of its members. It returns
// the project as a reader sees it.
func (s *Social) SetProjectOwner(ctx context.Context, p *auth.Principal, name, uid string) (*ProjectView, error) {
	if err := s.authorize(ctx, p, opProjectsSetOwner, policy.On("name", name)); err != nil {
		return nil, err
	}
	var v *ProjectView
	err := s.update(ctx, &record{op: opProjectsSetOwner.Name, actor: p, object: domain.ProjectObject(name), detail: "owner=" + uid}, func(tx store.Tx) error {
		proj, err := tx.Projects().Get(ctx, name)
		if err != nil {
			return err
		}
		if _, err := tx.Projects().Member(ctx, name, uid); err != nil {
			if domain.HasCode(err, domain.CodeNotFound) {
				return domain.FailedPrecondition("%s is not a member of project %s; only a member can become its owner", uid, name)
			}
			return err
		}
		proj.Owner = uid
		if err := tx.Projects().Update(ctx, proj); err != nil {
			return err
		}
		if proj.State == domain.ProjectApproved {
			if err := s.makeOwnerMember(ctx, tx, proj); err != nil {
				return err
			}
		}
		if err := s.notify(ctx, tx, &domain.Notification{Recipient: uid, Sender: p.UID, Text: fmt.Sprintf("%s made you the owner of project %s", p.UID, name)}); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeProject, name); err != nil {
			return err
		}
		v, err = projectView(ctx, tx, name)
		return err
	})
	return v, err
}

// AddChildProject nests child in parent: child's members get rights in
// parent. Cycles are refused, checked in the transaction so that two
// opposite nestings at once cannot both succeed.
func (s *Social) AddChildProject(ctx context.Context, p *auth.Principal, parent, child string, rightNames []string) (*ProjectView, error) {
	if err := s.authorize(ctx, p, opProjectsAddChildProject, policy.On("parent", parent).And("child", child)); err != nil {
		return nil, err
	}
	rights, err := domain.ParseRights("rights", domain.ProjectRights, rightNames)
	if err != nil {
		return nil, err
	}
	var v *ProjectView
	err = s.update(ctx, &record{op: opProjectsAddChildProject.Name, actor: p, object: domain.ProjectObject(parent), detail: "child=" + child + " rights=" + rights.Encode()}, func(tx store.Tx) error {
		for _, n := range []string{parent, child} {
			proj, err := tx.Projects().Get(ctx, n)
			if err != nil {
				return err
			}
			if proj.State != domain.ProjectApproved {
				return domain.FailedPrecondition("project %s is waiting for an administrator's approval", n)
			}
		}
		if cyc, err := reaches(ctx, tx, child, parent); err != nil {
			return err
		} else if cyc {
			return domain.Invalid("child", "nesting.cycle", fmt.Sprintf("nesting %s in %s would make a cycle: %s already contains %s", child, parent, child, parent))
		}
		if err := tx.Projects().AddChild(ctx, &domain.ProjectChild{Parent: parent, Child: child, Rights: rights}); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeProject, parent); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeProject, child); err != nil {
			return err
		}
		var err error
		v, err = projectView(ctx, tx, parent)
		return err
	})
	return v, err
}

// reaches reports whether to is from itself or nested, at any depth, in from.
func reaches(ctx context.Context, tx store.Tx, from, to string) (bool, error) {
	seen := map[string]bool{}
	queue := []string{from}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			return true, nil
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		children, err := tx.Projects().Children(ctx, n)
		if err != nil {
			return false, err
		}
		for _, c := range children {
			queue = append(queue, c.Child)
		}
	}
	return false, nil
}

// RemoveChildProject undoes a nesting.
func (s *Social) RemoveChildProject(ctx context.Context, p *auth.Principal, parent, child string) (*ProjectView, error) {
	if err := s.authorize(ctx, p, opProjectsRemoveChildProject, policy.On("parent", parent).And("child", child)); err != nil {
		return nil, err
	}
	var v *ProjectView
	err := s.update(ctx, &record{op: opProjectsRemoveChildProject.Name, actor: p, object: domain.ProjectObject(parent), detail: "child=" + child}, func(tx store.Tx) error {
		if err := tx.Projects().RemoveChild(ctx, parent, child); err != nil {
			return err
		}
		for _, n := range []string{parent, child} {
			if err := tx.Changes().Append(ctx, store.ChangeProject, n); err != nil {
				return err
			}
		}
		var err error
		v, err = projectView(ctx, tx, parent)
		return err
	})
	return v, err
}

// namespaceEmpty refuses to remove a project while experiments or
// libraries are named in its namespace (name:…): they are their creators',
// and a later project of the same name must not gain its owner's power to
// remove them.
func namespaceEmpty(ctx context.Context, tx store.Tx, name string) error {
	xs, err := tx.Experiments().List(ctx, store.ExperimentFilter{Owner: name, Page: store.Page{Limit: 1}})
	if err != nil {
		return err
	}
	if len(xs) > 0 {
		return domain.FailedPrecondition("project %s still holds experiment %s (and perhaps more): remove them first", name, xs[0].ID)
	}
	ls, err := tx.Libraries().List(ctx, store.LibraryFilter{Owner: name, Page: store.Page{Limit: 1}})
	if err != nil {
		return err
	}
	if len(ls) > 0 {
		return domain.FailedPrecondition("project %s still holds library %s (and perhaps more): remove them first", name, ls[0].ID)
	}
	return nil
}

// RemoveProject deletes a project, its memberships, nestings and circles;
// its members are told.
func (s *Social) RemoveProject(ctx context.Context, p *auth.Principal, name string) error {
	if err := s.authorize(ctx, p, opProjectsRemoveProject, policy.On("name", name)); err != nil {
		return err
	}
	members, err := s.engine.ProjectMembers(ctx, name, false)
	if err != nil {
		return err
	}
	return s.update(ctx, &record{op: opProjectsRemoveProject.Name, actor: p, object: domain.ProjectObject(name)}, func(tx store.Tx) error {
		if err := namespaceEmpty(ctx, tx, name); err != nil {
			return err
		}
		if err := s.deleteProject(ctx, tx, name); err != nil {
			return err
		}
		for _, m := range members {
			if m.UID == p.UID {
				continue
			}
			if err := s.notify(ctx, tx, &domain.Notification{Recipient: m.UID, Sender: p.UID, Text: fmt.Sprintf("%s removed project %s", p.UID, name)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListProjectMembers lists members; effective adds those through nesting.
func (s *Social) ListProjectMembers(ctx context.Context, p *auth.Principal, name string, effective bool) ([]policy.Member, error) {
	if err := s.authorize(ctx, p, opProjectsListMembers, policy.On("name", name)); err != nil {
		return nil, err
	}
	return s.engine.ProjectMembers(ctx, name, effective)
}

// GetProjectProfileDescription describes the attributes of a project's
// profile.
func (s *Social) GetProjectProfileDescription(ctx context.Context, p *auth.Principal) (*domain.ProfileDescription, error) {
	if err := s.authorize(ctx, p, opProjectsGetProfileDescription, policy.None); err != nil {
		return nil, err
	}
	return s.describe(ctx, store.ProfileProject)
}

// GetProjectProfile returns a project's profile.
func (s *Social) GetProjectProfile(ctx context.Context, p *auth.Principal, name string) ([]domain.ProfileValue, error) {
	if err := s.authorize(ctx, p, opProjectsGetProjectProfile, policy.On("name", name)); err != nil {
		return nil, err
	}
	return s.getProfile(ctx, store.ProfileProject, name, func(tx store.Tx) error {
		_, err := tx.Projects().Get(ctx, name)
		return err
	})
}

// SetProjectProfile applies what it can of a profile change.
func (s *Social) SetProjectProfile(ctx context.Context, p *auth.Principal, name string, set map[string]string, clearAttrs []string) ([]domain.AttributeChange, error) {
	if err := s.authorize(ctx, p, opProjectsSetProjectProfile, policy.On("name", name)); err != nil {
		return nil, err
	}
	return s.setProfile(ctx, &record{op: opProjectsSetProjectProfile.Name, actor: p, object: domain.ProjectObject(name)}, store.ProfileProject, name, set, clearAttrs, func(tx store.Tx) error {
		_, err := tx.Projects().Get(ctx, name)
		return err
	})
}

// getProfile reads the visible profile of an object that exists.
func (s *base) getProfile(ctx context.Context, kind, id string, exists func(store.Tx) error) ([]domain.ProfileValue, error) {
	var values map[string]string
	var d *domain.ProfileDescription
	err := s.view(ctx, func(tx store.Tx) error {
		if err := exists(tx); err != nil {
			return err
		}
		var err error
		if d, err = s.descriptionIn(ctx, tx, kind); err != nil {
			return err
		}
		values, err = tx.Profiles().Get(ctx, kind, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d.Visible(values), nil
}

// setProfile applies a profile change to an object that exists.
func (s *base) setProfile(ctx context.Context, rec *record, kind, id string, set map[string]string, clearAttrs []string, exists func(store.Tx) error) ([]domain.AttributeChange, error) {
	var changes []domain.AttributeChange
	err := s.update(ctx, rec, func(tx store.Tx) error {
		if err := exists(tx); err != nil {
			return err
		}
		current, err := tx.Profiles().Get(ctx, kind, id)
		if err != nil {
			return err
		}
		d, err := s.descriptionIn(ctx, tx, kind)
		if err != nil {
			return err
		}
		if d, err = s.writer(ctx, rec.actor, d); err != nil {
			return err
		}
		next, ch := d.Apply(current, set, clearAttrs)
		changes = ch
		var changed []string
		for _, c := range ch {
			if c.Changed {
				changed = append(changed, c.Name)
			}
		}
		rec.detail = "changed: " + joinSorted(changed)
		if len(changed) == 0 {
			return nil
		}
		return tx.Profiles().Set(ctx, kind, id, next)
	})
	return changes, err
}

func joinSorted(names []string) string {
	names = slices.Clone(names)
	slices.Sort(names)
	return strings.Join(names, ",")
}
