package sqlstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/trellis-testbed/trellis/internal/domain"
)

type grants struct{ *tx }

const grantColumns = "object, circle, rights"

func scanGrant(row scanner) (*domain.Grant, error) {
	var g domain.Grant
	var rights string
	if err := row.Scan(&g.Object, &g.Circle, &rights); err != nil {
		return nil, err
	}
	g.Rights = domain.DecodeRights(rights)
	return &g, nil
}

// Set upserts: no constraint but the key can fail, and the key is what
// ON CONFLICT resolves, so no guard is needed.
func (s grants) Set(ctx context.Context, g *domain.Grant) error {
	var err error
	if g.Rights == 0 {
		_, err = s.exec(ctx, "DELETE FROM grants WHERE object = ? AND circle = ?", g.Object, g.Circle)
	} else {
		_, err = s.exec(ctx, "INSERT INTO grants ("+grantColumns+") VALUES (?, ?, ?) "+
			"ON CONFLICT (object, circle) DO UPDATE SET rights = excluded.rights",
			g.Object, g.Circle, g.Rights.Encode())
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set grant: %w", err)
	}
	return nil
}

func (s grants) List(ctx context.Context, object string) ([]*domain.Grant, error) {
	out, err := collect(ctx, s.tx, scanGrant, "SELECT "+grantColumns+" FROM grants WHERE object = ? ORDER BY circle", object)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list grants: %w", err)
	}
	return out, nil
}

func (s grants) DeleteObject(ctx context.Context, object string) error {
	if _, err := s.exec(ctx, "DELETE FROM grants WHERE object = ?", object); err != nil {
		return fmt.Errorf("sqlstore: delete grants of object: %w", err)
	}
	return nil
}

// DeleteCircle removes every grant to the circles and returns the objects
// that held one, ordered, so the caller can record their change.
func (s grants) DeleteCircle(ctx context.Context, circles ...string) ([]string, error) {
	if len(circles) == 0 {
		return nil, nil
	}
	var w where
	addIn(&w, "circle", circles)
	objects, err := collect(ctx, s.tx, func(row scanner) (o string, err error) {
		return o, row.Scan(&o)
	}, "DELETE FROM grants"+w.String()+" RETURNING object", w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: delete grants to circles: %w", err)
	}
	slices.Sort(objects) // RETURNING has no order
	return slices.Compact(objects), nil
}

func (s grants) All(ctx context.Context) ([]*domain.Grant, error) {
	out, err := collect(ctx, s.tx, scanGrant, "SELECT "+grantColumns+" FROM grants ORDER BY object, circle")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load grants: %w", err)
	}
	return out, nil
}
