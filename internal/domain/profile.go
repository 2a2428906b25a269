package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Access says who may read and write a profile attribute.
type Access string

const (
	ReadOnly  Access = "read_only"
	ReadWrite Access = "read_write"
	WriteOnly Access = "write_only"
	NoAccess  Access = "no_access"
)

// DataType is the type of a profile attribute's value.
type DataType string

const (
	TypeString DataType = "string"
	TypeInt    DataType = "int"
	TypeFloat  DataType = "float"
	TypeOpaque DataType = "opaque"
	// TypeList is a comma-separated list; the format applies to each item.
	TypeList DataType = "list"
)

// Attribute describes one attribute of a self-describing profile.
type Attribute struct {
	Name              string
	Description       string
	Access            Access
	Optional          bool
	DataType          DataType
	Format            string // full-match regular expression; empty for any
	FormatDescription string
	LengthHint        int
	OrderingHint      int
	// MaxLength bounds the value in characters; 0 means DefaultAttributeMax.
	MaxLength int
	// System marks an attribute the system depends on (a user's e-mail): it
	// can be re-described and re-formatted but not removed, nor its type,
	// access or optionality changed.
	System bool

	format *regexp.Regexp
}

// DefaultAttributeMax bounds attribute values that set no limit of their own.
const DefaultAttributeMax = 1024

// ProfileDescription is the ordered list of a profile's attributes.
type ProfileDescription struct {
	attrs  []Attribute
	byName map[string]int
	admin  bool // see AsAdmin
}

// NewProfileDescription compiles formats once; it panics on a bad pattern,
// since it serves program constants. Descriptions read from the store are
// built with BuildProfileDescription.
func NewProfileDescription(attrs ...Attribute) *ProfileDescription {
	d, err := BuildProfileDescription(attrs)
	if err != nil {
		panic(err)
	}
	return d
}

// BuildProfileDescription compiles the attributes' formats once and orders
// them by their ordering hint.
func BuildProfileDescription(attrs []Attribute) (*ProfileDescription, error) {
	d := &ProfileDescription{byName: map[string]int{}}
	for _, a := range attrs {
		if a.Format != "" {
			re, err := regexp.Compile(`^(?:` + a.Format + `)$`)
			if err != nil {
				return nil, fmt.Errorf("profile attribute %q: format: %w", a.Name, err)
			}
			a.format = re
		}
		if a.MaxLength == 0 {
			a.MaxLength = DefaultAttributeMax
		}
		d.byName[a.Name] = len(d.attrs)
		d.attrs = append(d.attrs, a)
	}
	slices.SortStableFunc(d.attrs, func(a, b Attribute) int { return a.OrderingHint - b.OrderingHint })
	for i, a := range d.attrs {
		d.byName[a.Name] = i
	}
	return d, nil
}

// AsAdmin returns the description as an administrator writes it: read-only
// attributes are settable too. The attributes are shared, not copied.
func (d *ProfileDescription) AsAdmin() *ProfileDescription {
	c := *d
	c.admin = true
	return &c
}

// writable reports whether the writer of this description may set a.
func (d *ProfileDescription) writable(a Attribute) bool {
	switch a.Access {
	case ReadWrite, WriteOnly:
		return true
	case ReadOnly:
		return d.admin
	}
	return false
}

// Attribute definition limits.
const (
	AttributeNameMaxLen        = 64
	AttributeDescriptionMaxLen = 1000
	AttributeFormatMaxLen      = 1000
	AttributeMaxLengthLimit    = 65536
)

var attributeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

// ValidateAttribute checks an administered attribute definition: a name,
// a known type and access, a format that compiles, sane limits.
func ValidateAttribute(a Attribute) error {
	var vs Violations
	if len(a.Name) > AttributeNameMaxLen || !attributeName.MatchString(a.Name) {
		vs.Add("name", "format", fmt.Sprintf("a letter, then letters, digits, '_', '.' or '-'; at most %d characters", AttributeNameMaxLen))
	}
	switch a.DataType {
	case TypeString, TypeInt, TypeFloat, TypeOpaque, TypeList:
	default:
		vs.Add("data_type", "enum", "one of string, int, float, opaque, list")
	}
	switch a.Access {
	case ReadOnly, ReadWrite, WriteOnly, NoAccess:
	default:
		vs.Add("access", "enum", "one of read_only, read_write, write_only, no_access")
	}
	if len(a.Format) > AttributeFormatMaxLen {
		vs.Add("format", "too_long", fmt.Sprintf("at most %d bytes", AttributeFormatMaxLen))
	} else if a.Format != "" {
		if _, err := regexp.Compile(a.Format); err != nil {
			vs.Add("format", "regexp", "not a valid regular expression: "+err.Error())
		}
	}
	if len(a.Description) > AttributeDescriptionMaxLen {
		vs.Add("description", "too_long", fmt.Sprintf("at most %d bytes", AttributeDescriptionMaxLen))
	}
	if len(a.FormatDescription) > AttributeDescriptionMaxLen {
		vs.Add("format_description", "too_long", fmt.Sprintf("at most %d bytes", AttributeDescriptionMaxLen))
	}
	if a.MaxLength < 0 || a.MaxLength > AttributeMaxLengthLimit {
		vs.Add("max_length", "range", fmt.Sprintf("between 0 (the default, %d) and %d", DefaultAttributeMax, AttributeMaxLengthLimit))
	}
	if a.LengthHint < 0 || a.LengthHint > AttributeMaxLengthLimit {
		vs.Add("length_hint", "range", fmt.Sprintf("between 0 and %d", AttributeMaxLengthLimit))
	}
	return vs.Err()
}

// Attributes returns the attributes in display order.
func (d *ProfileDescription) Attributes() []Attribute { return slices.Clone(d.attrs) }

// Lookup finds an attribute by name.
func (d *ProfileDescription) Lookup(name string) (Attribute, bool) {
	i, ok := d.byName[name]
	if !ok {
		return Attribute{}, false
	}
	return d.attrs[i], true
}

// Profile failure rules, reported per attribute.
const (
	RuleUnknown  = "unknown"
	RuleReadOnly = "read_only"
	RuleFormat   = "format"
	RuleRequired = "required"
	RuleType     = "type"
	RuleTooLong  = "too_long"
)

// AttributeChange is the outcome of setting one attribute.
type AttributeChange struct {
	Name    string
	Changed bool
	Rule    string // why it failed; empty when it changed or was unchanged
	Reason  string
}

// CheckValue checks a value against the attribute's type, length and format.
// It returns the failing rule and a reason, or "".
func (a Attribute) CheckValue(v string) (rule, reason string) {
	if !utf8.ValidString(v) {
		return RuleFormat, "value is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(v); n > a.MaxLength {
		return RuleTooLong, fmt.Sprintf("value is %d characters; at most %d", n, a.MaxLength)
	}
	switch a.DataType {
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return RuleType, "value must be an integer"
		}
	case TypeFloat:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return RuleType, "value must be a number"
		}
	}
	if a.format == nil {
		return "", ""
	}
	items := []string{v}
	if a.DataType == TypeList {
		items = strings.Split(v, ",")
		for i := range items {
			items[i] = strings.TrimSpace(items[i])
		}
	}
	if slices.ContainsFunc(items, func(it string) bool { return !a.format.MatchString(it) }) {
		desc := a.FormatDescription
		if desc == "" {
			desc = "must match " + a.Format
		}
		return RuleFormat, desc
	}
	return "", ""
}

// ValidateNew checks a complete profile given at creation: every required
// attribute present, every value well-formed, no unknown or read-only
// attribute. Violations name the field as "profile.NAME".
func (d *ProfileDescription) ValidateNew(values map[string]string) error {
	var vs Violations
	for name, v := range values {
		a, ok := d.Lookup(name)
		switch {
		case !ok:
			vs.Add("profile."+name, "profile."+RuleUnknown, "no such profile attribute")
		case !d.writable(a):
			vs.Add("profile."+name, "profile."+RuleReadOnly, "attribute is read-only")
		default:
			if rule, reason := a.CheckValue(v); rule != "" {
				vs.Add("profile."+name, "profile."+rule, reason)
			}
		}
	}
	for _, a := range d.attrs {
		if !a.Optional && d.writable(a) && values[a.Name] == "" {
			vs.Add("profile."+a.Name, "profile."+RuleRequired, "attribute is required")
		}
	}
	slices.SortFunc(vs, func(a, b Violation) int { return cmpString(a.Field, b.Field) })
	return vs.Err()
}

// Apply computes the profile that results from setting and clearing the given
// attributes on current. It applies what it can and reports every attribute
// named, changed or failed with the reason; current is not modified.
func (d *ProfileDescription) Apply(current, set map[string]string, clear []string) (map[string]string, []AttributeChange) {
	next := make(map[string]string, len(current))
	for k, v := range current {
		next[k] = v
	}
	var changes []AttributeChange
	for _, name := range sortedKeys(set) {
		v := set[name]
		a, ok := d.Lookup(name)
		switch {
		case !ok:
			changes = append(changes, AttributeChange{Name: name, Rule: RuleUnknown, Reason: "no such profile attribute"})
		case !d.writable(a):
			changes = append(changes, AttributeChange{Name: name, Rule: RuleReadOnly, Reason: "attribute is read-only"})
		case v == "" && !a.Optional:
			changes = append(changes, AttributeChange{Name: name, Rule: RuleRequired, Reason: "attribute is required and cannot be empty"})
		default:
			if v != "" {
				if rule, reason := a.CheckValue(v); rule != "" {
					changes = append(changes, AttributeChange{Name: name, Rule: rule, Reason: reason})
					continue
				}
			}
			changed := next[name] != v
			if v == "" {
				delete(next, name)
			} else {
				next[name] = v
			}
			changes = append(changes, AttributeChange{Name: name, Changed: changed})
		}
	}
	for _, name := range clear {
		if _, dup := set[name]; dup {
			changes = append(changes, AttributeChange{Name: name, Rule: RuleUnknown, Reason: "attribute is both set and cleared"})
			continue
		}
		a, ok := d.Lookup(name)
		switch {
		case !ok:
			changes = append(changes, AttributeChange{Name: name, Rule: RuleUnknown, Reason: "no such profile attribute"})
		case !d.writable(a):
			changes = append(changes, AttributeChange{Name: name, Rule: RuleReadOnly, Reason: "attribute is read-only"})
		case !a.Optional:
			changes = append(changes, AttributeChange{Name: name, Rule: RuleRequired, Reason: "attribute is required and cannot be cleared"})
		default:
			_, had := next[name]
			delete(next, name)
			changes = append(changes, AttributeChange{Name: name, Changed: had})
		}
	}
	return next, changes
}

// Visible returns the attributes a reader may see, in display order, with
// their values.
func (d *ProfileDescription) Visible(values map[string]string) []ProfileValue {
	out := make([]ProfileValue, 0, len(d.attrs))
	for _, a := range d.attrs {
		if a.Access == WriteOnly || a.Access == NoAccess {
			continue
		}
		out = append(out, ProfileValue{Name: a.Name, Value: values[a.Name], Access: a.Access})
	}
	return out
}

// ProfileValue is an attribute's value as a reader sees it.
type ProfileValue struct {
	Name   string
	Value  string
	Access Access
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Profile attribute patterns.
const (
	emailFormat = `[^@\s]+@[^@\s]+\.[^@\s]+`
	phoneFormat = `\+?[0-9][0-9 ().-]{5,30}[0-9]`
	urlFormat   = `https?://\S+`
)

// The built-in profiles below are what migration 0021 seeds the store's
// administered attribute definitions with; the service reads definitions
// from the store, never from these (storetest checks the two agree).

// UserProfile is the DETER user profile: the attributes every user carries.
// The uid and e-mail attributes mirror the account: the uid is read-only, and
// changing the e-mail mails a confirmation to the new address, which takes
// effect when confirmed.
var UserProfile = NewProfileDescription(
	Attribute{Name: "uid", Description: "User id (login name at the sites)", Access: ReadOnly, DataType: TypeString, LengthHint: 32, OrderingHint: 0, MaxLength: UIDMaxLen, System: true},
	Attribute{Name: "name", Description: "Full name", Access: ReadWrite, DataType: TypeString, LengthHint: 40, OrderingHint: 10, MaxLength: 200, System: true},
	Attribute{Name: "title", Description: "Title or position", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 40, OrderingHint: 20, MaxLength: 200},
	Attribute{Name: "email", Description: "E-mail address", Access: ReadWrite, DataType: TypeString, Format: emailFormat, FormatDescription: "an e-mail address: local@domain", LengthHint: 40, OrderingHint: 30, MaxLength: EmailMaxLen, System: true},
	Attribute{Name: "affiliation", Description: "Institution", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 40, OrderingHint: 40, MaxLength: 200},
	Attribute{Name: "affiliation_abbrev", Description: "Abbreviated institution name", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 10, OrderingHint: 50, MaxLength: 32},
	Attribute{Name: "URL", Description: "Home page", Access: ReadWrite, Optional: true, DataType: TypeString, Format: urlFormat, FormatDescription: "an http or https URL", LengthHint: 60, OrderingHint: 60, MaxLength: 500},
	Attribute{Name: "address1", Description: "Postal address, line 1", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 40, OrderingHint: 70, MaxLength: 200},
	Attribute{Name: "address2", Description: "Postal address, line 2", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 40, OrderingHint: 80, MaxLength: 200},
	Attribute{Name: "city", Description: "City", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 20, OrderingHint: 90, MaxLength: 100},
	Attribute{Name: "state", Description: "State or province", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 20, OrderingHint: 100, MaxLength: 100},
	Attribute{Name: "zip", Description: "Postal code", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 10, OrderingHint: 110, MaxLength: 20},
	Attribute{Name: "country", Description: "Country", Access: ReadWrite, Optional: true, DataType: TypeString, LengthHint: 20, OrderingHint: 120, MaxLength: 100},
	Attribute{Name: "phone", Description: "Telephone number", Access: ReadWrite, DataType: TypeString, Format: phoneFormat, FormatDescription: "a telephone number: digits, spaces, and + ( ) . - only, e.g. +1 310 555 0100", LengthHint: 20, OrderingHint: 130, MaxLength: 40},
)
