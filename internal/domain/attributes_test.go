package domain

import (
	"errors"
	"testing"
)

func TestValidateAttribute(t *testing.T) {
	good := Attribute{Name: "orcid", Access: ReadWrite, DataType: TypeString, Format: `[0-9-]+`}
	tests := []struct {
		name  string
		edit  func(*Attribute)
		field string // "" for valid
	}{
		{"valid", func(*Attribute) {}, ""},
		{"list type", func(a *Attribute) { a.DataType = TypeList }, ""},
		{"empty name", func(a *Attribute) { a.Name = "" }, "name"},
		{"name with a space", func(a *Attribute) { a.Name = "a b" }, "name"},
		{"unknown type", func(a *Attribute) { a.DataType = "date" }, "data_type"},
		{"unknown access", func(a *Attribute) { a.Access = "sometimes" }, "access"},
		{"bad regexp", func(a *Attribute) { a.Format = "([" }, "format"},
		{"negative limit", func(a *Attribute) { a.MaxLength = -1 }, "max_length"},
		{"huge limit", func(a *Attribute) { a.MaxLength = AttributeMaxLengthLimit + 1 }, "max_length"},
	}
	for _, tt := range tests {
		a := good
		tt.edit(&a)
		err := ValidateAttribute(a)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidArgument || len(e.Violations) != 1 || e.Violations[0].Field != tt.field {
			t.Errorf("%s: %v; want one violation of %s", tt.name, err, tt.field)
		}
	}
}

func TestReadOnlyWritableByAdmin(t *testing.T) {
	d := NewProfileDescription(
		Attribute{Name: "grant", Access: ReadOnly, Optional: true, DataType: TypeList, Format: `[A-Z]+-[0-9]+`},
		Attribute{Name: "secret", Access: NoAccess, Optional: true, DataType: TypeString},
	)
	_, ch := d.Apply(nil, map[string]string{"grant": "NSF-1"}, nil)
	if ch[0].Rule != RuleReadOnly {
		t.Errorf("a user sets a read-only attribute: %+v", ch[0])
	}
	admin := d.AsAdmin()
	next, ch := admin.Apply(nil, map[string]string{"grant": "NSF-1, NIH-2", "secret": "x"}, nil)
	if !ch[0].Changed || next["grant"] != "NSF-1, NIH-2" {
		t.Errorf("an admin sets a read-only list: %+v", ch[0])
	}
	if ch[1].Rule != RuleReadOnly {
		t.Errorf("an admin sets a no-access attribute: %+v", ch[1])
	}
	if _, ch := admin.Apply(nil, map[string]string{"grant": "NSF-1, nih"}, nil); ch[0].Rule != RuleFormat {
		t.Errorf("a list item off the format: %+v", ch[0])
	}
	if err := admin.ValidateNew(map[string]string{"grant": "NSF-1"}); err != nil {
		t.Errorf("an admin creates with a read-only attribute: %v", err)
	}
	if err := d.ValidateNew(map[string]string{"grant": "NSF-1"}); err == nil {
		t.Error("a user creates with a read-only attribute")
	}
	// AsAdmin shares, never changes, the description it came from.
	if _, ch := d.Apply(nil, map[string]string{"grant": "NSF-1"}, nil); ch[0].Rule != RuleReadOnly {
		t.Error("AsAdmin changed the original description")
	}
}

func TestBuildProfileDescriptionRefusesBadFormat(t *testing.T) {
	if _, err := BuildProfileDescription([]Attribute{{Name: "x", Format: "(["}}); err == nil {
		t.Fatal("a bad stored format compiled")
	}
}
