package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type circles struct{ *tx }

const (
	circleColumns       = "id, owner, name, created_at"
	circleMemberColumns = "circle, uid, rights, added_at"
)

func scanCircle(row scanner) (*domain.Circle, error) {
	var c domain.Circle
	var created int64
	if err := row.Scan(&c.ID, &c.Owner, &c.Name, &created); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMicros(created)
	return &c, nil
}

func (s circles) Create(ctx context.Context, c *domain.Circle) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO circles ("+circleColumns+") VALUES (?, ?, ?, ?)",
			c.ID, c.Owner, c.Name, micros(c.CreatedAt))
		return err
	})
	if _, dup := s.f.duplicate(err); dup { // the id is the only unique key
		return domain.AlreadyExists("circle %q already exists", c.ID)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create circle: %w", err)
	}
	return nil
}

func (s circles) Get(ctx context.Context, id string) (*domain.Circle, error) {
	c, err := scanCircle(s.queryRow(ctx, "SELECT "+circleColumns+" FROM circles WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("circle %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get circle: %w", err)
	}
	return c, nil
}

func (s circles) List(ctx context.Context, f store.CircleFilter) ([]*domain.Circle, error) {
	if f.IDs != nil && len(f.IDs) == 0 {
		return nil, nil // restricted to no circle at all
	}
	var w where
	w.add("id > ?", f.Page.After)
	if f.Owner != "" {
		w.add("owner = ?", f.Owner)
	}
	if f.IDs != nil {
		addIn(&w, "id", f.IDs)
	}
	out, err := collect(ctx, s.tx, scanCircle, "SELECT "+circleColumns+" FROM circles"+w.String()+
		" ORDER BY id LIMIT ?", append(w.args, pageLimit(f.Page.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list circles: %w", err)
	}
	return out, nil
}

func (s circles) SetOwner(ctx context.Context, id, owner string) error {
	return s.execOne(ctx, "set circle owner", domain.NotFound("circle %q not found", id), "UPDATE circles SET owner = ? WHERE id = ?", owner, id)
}

// Delete relies on ON DELETE CASCADE for the memberships.
func (s circles) Delete(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete circle", domain.NotFound("circle %q not found", id), "DELETE FROM circles WHERE id = ?", id)
}

func (s circles) DeleteOwnedBy(ctx context.Context, owner string) ([]string, error) {
	ids, err := collect(ctx, s.tx, func(row scanner) (id string, err error) {
		return id, row.Scan(&id)
	}, "DELETE FROM circles WHERE owner = ? RETURNING id", owner)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: delete circles of %s: %w", owner, err)
	}
	slices.Sort(ids) // RETURNING has no order
	return ids, nil
}

// SetMember keeps added_at when the membership exists, as projects do.
func (s circles) SetMember(ctx context.Context, m *domain.Membership) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO circle_members ("+circleMemberColumns+") VALUES (?, ?, ?, ?) "+
			"ON CONFLICT (circle, uid) DO UPDATE SET rights = excluded.rights",
			m.Group, m.UID, m.Rights.Encode(), micros(m.AddedAt))
		return err
	})
	if err != nil && s.f.foreignKey(err) {
		if merr := s.firstMissing(ctx, circleRow(m.Group), userRow(m.UID)); merr != nil {
			return merr
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set circle member: %w", err)
	}
	return nil
}

// noMember explains why (id, uid) has no membership row.
func (s circles) noMember(ctx context.Context, id, uid string) error {
	if err := s.firstMissing(ctx, circleRow(id)); err != nil {
		return err
	}
	return domain.NotFound("%s is not a member of circle %s", uid, id)
}

func (s circles) RemoveMember(ctx context.Context, id, uid string) error {
	n, err := s.execAffected(ctx, "DELETE FROM circle_members WHERE circle = ? AND uid = ?", id, uid)
	if err != nil {
		return fmt.Errorf("sqlstore: remove circle member: %w", err)
	}
	if n == 0 {
		return s.noMember(ctx, id, uid)
	}
	return nil
}

func (s circles) Member(ctx context.Context, id, uid string) (*domain.Membership, error) {
	m, err := scanMembership(s.queryRow(ctx, "SELECT "+circleMemberColumns+
		" FROM circle_members WHERE circle = ? AND uid = ?", id, uid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.noMember(ctx, id, uid)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get circle member: %w", err)
	}
	return m, nil
}

func (s circles) Members(ctx context.Context, id string) ([]*domain.Membership, error) {
	out, err := collect(ctx, s.tx, scanMembership, "SELECT "+circleMemberColumns+
		" FROM circle_members WHERE circle = ? ORDER BY uid", id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list circle members: %w", err)
	}
	if len(out) == 0 {
		// No members, or no circle: tell them apart.
		return nil, s.firstMissing(ctx, circleRow(id))
	}
	return out, nil
}

func (s circles) MembershipsOf(ctx context.Context, uid string) ([]*domain.Membership, error) {
	out, err := collect(ctx, s.tx, scanMembership, "SELECT "+circleMemberColumns+
		" FROM circle_members WHERE uid = ? ORDER BY circle", uid)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list circle memberships: %w", err)
	}
	return out, nil
}

func (s circles) All(ctx context.Context) ([]*domain.Circle, error) {
	out, err := collect(ctx, s.tx, scanCircle, "SELECT "+circleColumns+" FROM circles ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load circles: %w", err)
	}
	return out, nil
}

func (s circles) AllMembers(ctx context.Context) ([]*domain.Membership, error) {
	out, err := collect(ctx, s.tx, scanMembership, "SELECT "+circleMemberColumns+
		" FROM circle_members ORDER BY circle, uid")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load circle members: %w", err)
	}
	return out, nil
}
