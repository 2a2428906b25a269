package sqlstore

import (
	"context"
	"fmt"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Administered profile attribute definitions (migration 0021).

const attributeColumns = "name, description, access, optional, data_type, format, format_description, length_hint, ordering_hint, max_length, system"

func scanAttribute(r scanner) (domain.Attribute, error) {
	var a domain.Attribute
	var access, dataType string
	err := r.Scan(&a.Name, &a.Description, &access, &a.Optional, &dataType, &a.Format, &a.FormatDescription,
		&a.LengthHint, &a.OrderingHint, &a.MaxLength, &a.System)
	a.Access, a.DataType = domain.Access(access), domain.DataType(dataType)
	return a, err
}

func (s profiles) Attributes(ctx context.Context, kind string) ([]domain.Attribute, error) {
	out, err := collect(ctx, s.tx, scanAttribute,
		"SELECT "+attributeColumns+" FROM profile_attributes WHERE kind = ? ORDER BY ordering_hint, name", kind)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list profile attributes: %w", err)
	}
	return out, nil
}

func (s profiles) AddAttribute(ctx context.Context, kind string, a domain.Attribute) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO profile_attributes (kind, "+attributeColumns+") VALUES (?, "+placeholders(11)+")",
			kind, a.Name, a.Description, string(a.Access), a.Optional, string(a.DataType), a.Format, a.FormatDescription,
			a.LengthHint, a.OrderingHint, a.MaxLength, a.System)
		return err
	})
	if _, dup := s.f.duplicate(err); dup { // (kind, name) is the only unique key
		return domain.AlreadyExists("%s profile attribute %q already exists", kind, a.Name)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: add profile attribute: %w", err)
	}
	return nil
}

func (s profiles) UpdateAttribute(ctx context.Context, kind string, a domain.Attribute) error {
	res, err := s.exec(ctx, `UPDATE profile_attributes SET description = ?, access = ?, optional = ?, data_type = ?,
		format = ?, format_description = ?, length_hint = ?, ordering_hint = ?, max_length = ?, system = ?
		WHERE kind = ? AND name = ?`,
		a.Description, string(a.Access), a.Optional, string(a.DataType), a.Format, a.FormatDescription,
		a.LengthHint, a.OrderingHint, a.MaxLength, a.System, kind, a.Name)
	if err != nil {
		return fmt.Errorf("sqlstore: update profile attribute: %w", err)
	}
	return attributeTouched(res, kind, a.Name)
}

func (s profiles) RemoveAttribute(ctx context.Context, kind, name string) error {
	res, err := s.exec(ctx, "DELETE FROM profile_attributes WHERE kind = ? AND name = ?", kind, name)
	if err != nil {
		return fmt.Errorf("sqlstore: remove profile attribute: %w", err)
	}
	if err := attributeTouched(res, kind, name); err != nil {
		return err
	}
	if _, err := s.exec(ctx, "DELETE FROM profiles WHERE kind = ? AND name = ?", kind, name); err != nil {
		return fmt.Errorf("sqlstore: remove profile attribute values: %w", err)
	}
	return nil
}

func attributeTouched(res interface{ RowsAffected() (int64, error) }, kind, name string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: profile attribute: %w", err)
	}
	if n == 0 {
		return domain.NotFound("%s profile attribute %q not found", kind, name)
	}
	return nil
}
