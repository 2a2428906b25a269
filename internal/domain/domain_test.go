package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateUID(t *testing.T) {
	tests := []struct {
		uid  string
		rule string // "" for valid
	}{
		{"alice", ""},
		{"_svc", ""},
		{"bob-2", ""},
		{"ab", ""},
		{strings.Repeat("a", 32), ""},
		{"", "uid.required"},
		{"a", "uid.length"},
		{strings.Repeat("a", 33), "uid.length"},
		{"Alice", "uid.format"},
		{"1alice", "uid.format"},
		{"-alice", "uid.format"},
		{"al ice", "uid.format"},
		{"al:ice", "uid.format"},
		{"root", "uid.reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.uid, func(t *testing.T) {
			err := ValidateUID("uid", tt.uid)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("ValidateUID(%q) = %v, want nil", tt.uid, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidArgument {
				t.Fatalf("ValidateUID(%q) = %v, want invalid argument", tt.uid, err)
			}
			if len(e.Violations) != 1 || e.Violations[0].Rule != tt.rule || e.Violations[0].Field != "uid" {
				t.Fatalf("violations = %+v, want rule %s on uid", e.Violations, tt.rule)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want, rule string
	}{
		{"alice@Example.ORG", "alice@example.org", ""},
		{" bob@uni.edu ", "bob@uni.edu", ""},
		{"Carol.X@host.example.com", "Carol.X@host.example.com", ""},
		{"", "", "email.required"},
		{"alice", "", "email.format"},
		{"Alice <alice@example.org>", "", "email.format"},
		{"alice@example", "", "email.format"},
		{strings.Repeat("a", 250) + "@b.cd", "", "email.length"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeEmail("email", tt.in)
			if tt.rule == "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Violations[0].Rule != tt.rule {
				t.Fatalf("NormalizeEmail(%q) error = %v, want rule %s", tt.in, err, tt.rule)
			}
		})
	}
}

func TestViolationsCollect(t *testing.T) {
	var vs Violations
	if err := vs.Check(ValidateUID("uid", "A")); err != nil {
		t.Fatal(err)
	}
	if err := vs.Check(fmt.Errorf("boom")); err == nil {
		t.Fatal("a non-validation error must pass through Check")
	}
	_, err := NormalizeEmail("email", "nope")
	if err := vs.Check(err); err != nil {
		t.Fatal(err)
	}
	err = vs.Err()
	if CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("code = %v", CodeOf(err))
	}
	var e *Error
	errors.As(err, &e)
	if len(e.Violations) != 2 || e.Violations[0].Field != "uid" || e.Violations[1].Field != "email" {
		t.Fatalf("violations = %+v", e.Violations)
	}
	if !strings.Contains(e.Message, "uid:") || !strings.Contains(e.Message, "email:") {
		t.Fatalf("message %q does not name both fields", e.Message)
	}
}

func TestErrorCodes(t *testing.T) {
	wrapped := fmt.Errorf("context: %w", NotFound("user %q not found", "x"))
	if CodeOf(wrapped) != CodeNotFound || !HasCode(wrapped, CodeNotFound) {
		t.Fatalf("wrapped code = %v", CodeOf(wrapped))
	}
	if !errors.Is(wrapped, &Error{Code: CodeNotFound}) {
		t.Fatal("errors.Is by code failed")
	}
	if CodeOf(errors.New("plain")) != CodeInternal || CodeOf(nil) != -1 {
		t.Fatal("plain errors are internal, nil is -1")
	}
	in := Internal(errors.New("disk on fire"), "store failed")
	if !strings.Contains(in.Error(), "disk on fire") {
		t.Fatal("internal errors keep their cause for logs")
	}
}

func TestProfileValidateNew(t *testing.T) {
	good := map[string]string{"name": "Alice Liddell", "email": "alice@example.org", "phone": "+1 310 555 0100"}
	if err := UserProfile.ValidateNew(good); err != nil {
		t.Fatalf("valid profile refused: %v", err)
	}
	bad := map[string]string{"name": "", "email": "alice@example.org", "phone": "call me", "shoe_size": "9", "uid": "x"}
	err := UserProfile.ValidateNew(bad)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want validation error, got %v", err)
	}
	rules := map[string]string{}
	for _, v := range e.Violations {
		rules[v.Field] = v.Rule
	}
	want := map[string]string{"profile.name": "profile.required", "profile.phone": "profile.format", "profile.shoe_size": "profile.unknown", "profile.uid": "profile.read_only"}
	for f, r := range want {
		if rules[f] != r {
			t.Errorf("field %s: rule %q, want %q (all: %v)", f, rules[f], r, rules)
		}
	}
}

func TestProfileApply(t *testing.T) {
	current := map[string]string{"name": "Alice", "email": "a@b.org", "phone": "+1 310 555 0100", "city": "Los Angeles"}
	next, changes := UserProfile.Apply(current,
		map[string]string{"name": "Alice L.", "phone": "not a phone", "title": "Dr", "bogus": "x", "country": ""},
		[]string{"city", "name2", "email", "uid"})
	got := map[string]AttributeChange{}
	for _, c := range changes {
		got[c.Name] = c
	}
	tests := []struct {
		name    string
		changed bool
		rule    string
	}{
		{"name", true, ""},
		{"phone", false, RuleFormat},
		{"title", true, ""},
		{"bogus", false, RuleUnknown},
		{"country", false, ""}, // clearing an unset optional attribute changes nothing
		{"city", true, ""},
		{"name2", false, RuleUnknown},
		{"email", false, RuleRequired},
		{"uid", false, RuleReadOnly},
	}
	for _, tt := range tests {
		c, ok := got[tt.name]
		if !ok {
			t.Errorf("%s: not reported", tt.name)
			continue
		}
		if c.Changed != tt.changed || c.Rule != tt.rule {
			t.Errorf("%s: changed=%v rule=%q, want changed=%v rule=%q", tt.name, c.Changed, c.Rule, tt.changed, tt.rule)
		}
		if c.Rule != "" && c.Reason == "" {
			t.Errorf("%s: failure without a reason", tt.name)
		}
	}
	if next["name"] != "Alice L." || next["title"] != "Dr" || next["phone"] != current["phone"] {
		t.Errorf("next = %v", next)
	}
	if _, ok := next["city"]; ok {
		t.Error("city was not cleared")
	}
	if current["name"] != "Alice" {
		t.Error("Apply modified its input")
	}
}

func TestProfileVisibleOrder(t *testing.T) {
	vs := UserProfile.Visible(map[string]string{"name": "A"})
	if len(vs) != 14 || vs[0].Name != "uid" || vs[len(vs)-1].Name != "phone" {
		t.Fatalf("visible = %+v", vs)
	}
}

func TestCanLogIn(t *testing.T) {
	tests := []struct {
		state UserState
		code  Code
	}{
		{UserActive, -1},
		{UserPendingEmail, CodeFailedPrecondition},
		{UserLocked, CodePermissionDenied},
		{UserDisabled, CodePermissionDenied},
	}
	for _, tt := range tests {
		u := &User{UID: "alice", State: tt.state}
		if got := CodeOf(u.CanLogIn()); got != tt.code {
			t.Errorf("%s: code %v, want %v", tt.state, got, tt.code)
		}
	}
	err := (&User{UID: "alice", State: UserPendingEmail}).CanLogIn()
	if !strings.Contains(err.Error(), "trellis user confirm") || !strings.Contains(err.Error(), "ResendConfirmation") {
		t.Errorf("pending message must say how to confirm or resend: %v", err)
	}
}

func TestParseUserState(t *testing.T) {
	for _, s := range []string{"active", "locked", "disabled"} {
		if _, err := ParseUserState("state", s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"pending_email", "frozen", ""} {
		if _, err := ParseUserState("state", s); CodeOf(err) != CodeInvalidArgument {
			t.Errorf("%s: want invalid argument, got %v", s, err)
		}
	}
}

// The refusals of a malformed owner:name speak of the kind named.
func TestParseOwnedIDMessages(t *testing.T) {
	tests := []struct {
		noun, id, want string
	}{
		{"experiment", "ping", "an experiment is named owner:name"},
		{"library", "classics", "a library is named owner:name"},
		{"experiment", "alice:Ping", "an experiment's name is 1 to 64 characters"},
		{"library", "alice:Classics", "a library's name is 1 to 64 characters"},
	}
	for _, tt := range tests {
		_, _, err := ParseOwnedID("id", tt.noun, tt.id)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseOwnedID(%q, %q) = %v, want %q", tt.noun, tt.id, err, tt.want)
		}
	}
}

func TestAuditEventBound(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	e := &AuditEvent{Actor: huge, OnBehalfOf: huge, Operation: huge, Object: "user:" + huge, RequestID: huge, Detail: huge}
	e.Bound()
	for name, c := range map[string]struct {
		got string
		max int
	}{
		"actor": {e.Actor, AuditFieldMax}, "on_behalf_of": {e.OnBehalfOf, AuditFieldMax}, "operation": {e.Operation, AuditFieldMax},
		"object": {e.Object, AuditFieldMax}, "request_id": {e.RequestID, AuditFieldMax}, "detail": {e.Detail, AuditDetailMax},
	} {
		if len(c.got) > c.max || !strings.HasSuffix(c.got, "…") {
			t.Errorf("%s: %d bytes (bound %d), ends %q", name, len(c.got), c.max, c.got[max(0, len(c.got)-8):])
		}
	}
	// A cut falls between characters, never inside one.
	s := Truncate(strings.Repeat("é", 200), 11)
	if !utf8.ValidString(s) || len(s) > 11 {
		t.Errorf("Truncate cut a character: %q", s)
	}
	if got := Truncate("user:alice", 256); got != "user:alice" {
		t.Errorf("a short string was changed: %q", got)
	}
}

// TestValidPermissions: what GetValidPermissions says exists is exactly
// what ParseRights accepts for each kind, each right with a description.
func TestValidPermissions(t *testing.T) {
	vocab := map[string]Rights{
		"project": ProjectRights, "circle": CircleRights, "experiment": ExperimentRights,
		"library": LibraryRights, "realization": RealizationRights,
	}
	for _, kind := range PermissionKinds {
		ps, err := ValidPermissions("kind", kind)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range ps {
			if p.Description == "" {
				t.Errorf("%s right %s has no description", kind, p.Name)
			}
			names = append(names, p.Name)
		}
		got, err := ParseRights("rights", vocab[kind], names)
		if err != nil || got != vocab[kind] || len(names) != len(vocab[kind].Names()) {
			t.Errorf("%s: valid permissions %v, vocabulary %v (%v)", kind, names, vocab[kind].Names(), err)
		}
	}
	if _, err := ValidPermissions("kind", "spaceship"); CodeOf(err) != CodeInvalidArgument {
		t.Errorf("unknown kind: %v", err)
	}
}
