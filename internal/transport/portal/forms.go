package portal

import (
	"errors"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// form is a form's state when it is drawn again: the values given, and the
// service's errors, by field and for the whole form.
type form struct {
	Values map[string]string
	Errors map[string]string
	// Error is the message of an error that names no field.
	Error string
}

func newForm() *form { return &form{Values: map[string]string{}, Errors: map[string]string{}} }

// Value and Err read the maps from templates without missing-key noise.
func (f *form) Value(name string) string { return f.Values[name] }
func (f *form) Err(name string) string   { return f.Errors[name] }

// HasErrors reports whether the form is drawn again because of errors.
func (f *form) HasErrors() bool { return f.Error != "" || len(f.Errors) > 0 }

// explain puts a service error on the form: each field violation next to
// its field (a profile attribute's "profile.NAME" next to NAME), anything
// else at the top. It reports false for an error that is no user's to fix
// (internal, or a refusal), which the caller answers with its page.
func (f *form) explain(err error, fields ...string) bool {
	var de *domain.Error
	if !errors.As(err, &de) {
		return false
	}
	switch de.Code {
	case domain.CodeInvalidArgument, domain.CodeAlreadyExists, domain.CodeFailedPrecondition, domain.CodeResourceExhausted:
	default:
		return false
	}
	known := map[string]bool{}
	for _, f := range fields {
		known[f] = true
	}
	placed := false
	for _, v := range de.Violations {
		field := strings.TrimPrefix(v.Field, "profile.")
		// A list's element ("redirect_uris[1]") goes next to the list.
		if i := strings.IndexByte(field, '['); i > 0 && known[field[:i]] {
			field = field[:i]
		}
		if known[field] {
			if f.Errors[field] == "" {
				f.Errors[field] = v.Description
			}
			placed = true
		}
	}
	if !placed || len(de.Violations) == 0 {
		f.Error = de.Message
	}
	return true
}

// attrField is one generated form field for a profile attribute.
type attrField struct {
	domain.Attribute
	Value    string
	Error    string
	Outcome  string // after a save: "changed", "unchanged", or empty
	ReadOnly bool
	Secret   bool // write-only: shown empty, never echoed
	// InputType is the HTML input type the data type calls for.
	InputType string
	Step      string
}

// attrFields draws a profile description as form fields, in its order,
// with the values and errors of f. skip names attributes drawn elsewhere
// (the registration form's uid and email).
func attrFields(d *domain.ProfileDescription, f *form, skip ...string) []attrField {
	var out []attrField
	for _, a := range d.Attributes() {
		if a.Access == domain.NoAccess || contains(skip, a.Name) {
			continue
		}
		af := attrField{Attribute: a, Value: f.Values[a.Name], Error: f.Errors[a.Name], InputType: "text"}
		switch a.Access {
		case domain.ReadOnly:
			af.ReadOnly = true
		case domain.WriteOnly:
			af.Secret, af.InputType, af.Value = true, "password", ""
		}
		switch a.DataType {
		case domain.TypeInt:
			af.InputType, af.Step = "number", "1"
		case domain.TypeFloat:
			af.InputType, af.Step = "number", "any"
		}
		out = append(out, af)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
