package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type projects struct{ *tx }

const (
	projectColumns       = "name, owner, state, vetting, created_at, approved_at"
	projectMemberColumns = "project, uid, rights, added_at"
	projectChildColumns  = "parent, child, rights"
)

func scanProject(row scanner) (*domain.Project, error) {
	var p domain.Project
	var state string
	var created, approved int64
	if err := row.Scan(&p.Name, &p.Owner, &state, &p.Vetting, &created, &approved); err != nil {
		return nil, err
	}
	p.State = domain.ProjectState(state)
	p.CreatedAt, p.ApprovedAt = fromMicros(created), fromMicros(approved)
	return &p, nil
}

func scanProjectChild(row scanner) (*domain.ProjectChild, error) {
	var c domain.ProjectChild
	var rights string
	if err := row.Scan(&c.Parent, &c.Child, &rights); err != nil {
		return nil, err
	}
	c.Rights = domain.DecodeRights(rights)
	return &c, nil
}

func (s projects) Create(ctx context.Context, p *domain.Project) error {
	if err := s.claimName(ctx, p.Name, nameProject); err != nil {
		return err
	}
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO projects ("+projectColumns+") VALUES (?, ?, ?, ?, ?, ?)",
			p.Name, p.Owner, string(p.State), p.Vetting, micros(p.CreatedAt), micros(p.ApprovedAt))
		return err
	})
	if err != nil {
		// The caller's transaction may go on: the claim goes too.
		if rerr := s.releaseName(ctx, p.Name, nameProject); rerr != nil {
			return rerr
		}
	}
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup: // the name is the table's only unique key
		return domain.AlreadyExists("project %q already exists", p.Name)
	case s.f.foreignKey(err): // the owner is the only reference
		return domain.NotFound("user %q not found", p.Owner)
	}
	return fmt.Errorf("sqlstore: create project: %w", err)
}

func (s projects) Get(ctx context.Context, name string) (*domain.Project, error) {
	p, err := scanProject(s.queryRow(ctx, "SELECT "+projectColumns+" FROM projects WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("project %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get project: %w", err)
	}
	return p, nil
}

func (s projects) List(ctx context.Context, f store.ProjectFilter) ([]*domain.Project, error) {
	if f.Names != nil && len(f.Names) == 0 {
		return nil, nil // restricted to no project at all
	}
	var w where
	w.add("name > ?", f.Page.After)
	end, bounded := prefixEnd(f.Prefix)
	if f.Prefix != "" {
		// A range of the primary key, as in users.List.
		w.add("name >= ?", f.Prefix)
		if bounded {
			w.add("name < ?", end)
		}
	}
	if !f.IncludePending {
		w.add("state = ?", string(domain.ProjectApproved))
	}
	if f.Names != nil {
		addIn(&w, "name", f.Names)
	}
	out, err := collect(ctx, s.tx, scanProject, "SELECT "+projectColumns+" FROM projects"+w.String()+
		" ORDER BY name LIMIT ?", append(w.args, pageLimit(f.Page.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list projects: %w", err)
	}
	if f.Prefix != "" && !bounded {
		// Only when the prefix has no upper bound: cut what lies past it.
		n := 0
		for n < len(out) && strings.HasPrefix(out[n].Name, f.Prefix) {
			n++
		}
		out = out[:n]
	}
	return out, nil
}

func (s projects) Update(ctx context.Context, p *domain.Project) error {
	var n int64
	err := s.guard(ctx, func() (err error) {
		n, err = s.execAffected(ctx, "UPDATE projects SET owner = ?, state = ?, vetting = ?, approved_at = ? WHERE name = ?",
			p.Owner, string(p.State), p.Vetting, micros(p.ApprovedAt), p.Name)
		return err
	})
	switch {
	case err == nil && n == 0:
		return domain.NotFound("project %q not found", p.Name)
	case err == nil:
		return nil
	case s.f.foreignKey(err):
		return domain.NotFound("user %q not found", p.Owner)
	}
	return fmt.Errorf("sqlstore: update project: %w", err)
}

// Delete relies on the foreign keys' ON DELETE CASCADE for memberships and
// nestings in both directions, so no row is left pointing at the name (and a
// later project of that name starts clean). The name is freed with it.
func (s projects) Delete(ctx context.Context, name string) error {
	if err := s.execOne(ctx, "delete project", domain.NotFound("project %q not found", name), "DELETE FROM projects WHERE name = ?", name); err != nil {
		return err
	}
	return s.releaseName(ctx, name, nameProject)
}

// SetMember keeps added_at when the membership exists: changing someone's
// rights does not change when they joined.
func (s projects) SetMember(ctx context.Context, m *domain.Membership) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO project_members ("+projectMemberColumns+") VALUES (?, ?, ?, ?) "+
			"ON CONFLICT (project, uid) DO UPDATE SET rights = excluded.rights",
			m.Group, m.UID, m.Rights.Encode(), micros(m.AddedAt))
		return err
	})
	if err != nil && s.f.foreignKey(err) {
		if merr := s.firstMissing(ctx, projectRow(m.Group), userRow(m.UID)); merr != nil {
			return merr
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set project member: %w", err)
	}
	return nil
}

// noMember explains why (project, uid) has no membership row.
func (s projects) noMember(ctx context.Context, project, uid string) error {
	if err := s.firstMissing(ctx, projectRow(project)); err != nil {
		return err
	}
	return domain.NotFound("%s is not a member of project %s", uid, project)
}

func (s projects) RemoveMember(ctx context.Context, project, uid string) error {
	n, err := s.execAffected(ctx, "DELETE FROM project_members WHERE project = ? AND uid = ?", project, uid)
	if err != nil {
		return fmt.Errorf("sqlstore: remove project member: %w", err)
	}
	if n == 0 {
		return s.noMember(ctx, project, uid)
	}
	return nil
}

func (s projects) Member(ctx context.Context, project, uid string) (*domain.Membership, error) {
	m, err := scanMembership(s.queryRow(ctx, "SELECT "+projectMemberColumns+
		" FROM project_members WHERE project = ? AND uid = ?", project, uid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.noMember(ctx, project, uid)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get project member: %w", err)
	}
	return m, nil
}

func (s projects) Members(ctx context.Context, project string) ([]*domain.Membership, error) {
	out, err := collect(ctx, s.tx, scanMembership, "SELECT "+projectMemberColumns+
		" FROM project_members WHERE project = ? ORDER BY uid", project)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list project members: %w", err)
	}
	if len(out) == 0 {
		// No members, or no project: tell them apart.
		return nil, s.firstMissing(ctx, projectRow(project))
	}
	return out, nil
}

func (s projects) MembershipsOf(ctx context.Context, uid string) ([]*domain.Membership, error) {
	out, err := collect(ctx, s.tx, scanMembership, "SELECT "+projectMemberColumns+
		" FROM project_members WHERE uid = ? ORDER BY project", uid)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list memberships: %w", err)
	}
	return out, nil
}

func (s projects) AddChild(ctx context.Context, c *domain.ProjectChild) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO project_children ("+projectChildColumns+") VALUES (?, ?, ?)",
			c.Parent, c.Child, c.Rights.Encode())
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup:
		return domain.AlreadyExists("project %s is already nested in %s", c.Child, c.Parent)
	case s.f.foreignKey(err):
		if merr := s.firstMissing(ctx, projectRow(c.Parent), projectRow(c.Child)); merr != nil {
			return merr
		}
	}
	return fmt.Errorf("sqlstore: add project child: %w", err)
}

func (s projects) RemoveChild(ctx context.Context, parent, child string) error {
	n, err := s.execAffected(ctx, "DELETE FROM project_children WHERE parent = ? AND child = ?", parent, child)
	if err != nil {
		return fmt.Errorf("sqlstore: remove project child: %w", err)
	}
	if n == 0 {
		if merr := s.firstMissing(ctx, projectRow(parent), projectRow(child)); merr != nil {
			return merr
		}
		return domain.NotFound("project %s is not nested in %s", child, parent)
	}
	return nil
}

func (s projects) Children(ctx context.Context, parent string) ([]*domain.ProjectChild, error) {
	return s.edges(ctx, "parent", parent, "child")
}

func (s projects) Parents(ctx context.Context, child string) ([]*domain.ProjectChild, error) {
	return s.edges(ctx, "child", child, "parent")
}

// edges lists the nestings whose column end is name, ordered by the other
// end; not-found when there is no such project.
func (s projects) edges(ctx context.Context, end, name, other string) ([]*domain.ProjectChild, error) {
	out, err := collect(ctx, s.tx, scanProjectChild, "SELECT "+projectChildColumns+
		" FROM project_children WHERE "+end+" = ? ORDER BY "+other, name)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list project nestings: %w", err)
	}
	if len(out) == 0 {
		return nil, s.firstMissing(ctx, projectRow(name))
	}
	return out, nil
}

func (s projects) All(ctx context.Context) ([]*domain.Project, error) {
	out, err := collect(ctx, s.tx, scanProject, "SELECT "+projectColumns+" FROM projects ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load projects: %w", err)
	}
	return out, nil
}

func (s projects) AllMembers(ctx context.Context) ([]*domain.Membership, error) {
	out, err := collect(ctx, s.tx, scanMembership, "SELECT "+projectMemberColumns+
		" FROM project_members ORDER BY project, uid")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load project members: %w", err)
	}
	return out, nil
}

func (s projects) AllChildren(ctx context.Context) ([]*domain.ProjectChild, error) {
	out, err := collect(ctx, s.tx, scanProjectChild, "SELECT "+projectChildColumns+
		" FROM project_children ORDER BY parent, child")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load project nestings: %w", err)
	}
	return out, nil
}
