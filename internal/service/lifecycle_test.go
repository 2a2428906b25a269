package service

import (
	"slices"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func TestUIDCandidates(t *testing.T) {
	for _, tt := range []struct {
		uid, name, email string
		first            []string
	}{
		{"alice", "Alice Liddell", "al@wonder.example.org", []string{"aliddell", "aliceliddell", "al", "alice2", "alice3"}},
		{"jdoe", "Jean-Luc  O'Doe", "jdoe@example.org", []string{"jodoe", "jeanluc", "jeanlucodoe", "jdoe2"}},
		{"x1", "", "", []string{"x12", "x13"}},
		// Nothing that is not a valid uid: a name starting with a digit,
		// a reserved name.
		{"bob", "9 Root", "root@example.org", []string{"9root", "bob2"}},
	} {
		got := uidCandidates(tt.uid, tt.name, tt.email)
		for _, c := range got {
			if err := domain.ValidateUID("uid", c); err != nil {
				t.Errorf("%s: candidate %q is not a valid uid: %v", tt.uid, c, err)
			}
			if c == tt.uid {
				t.Errorf("%s: the taken uid is suggested", tt.uid)
			}
		}
		want := slices.DeleteFunc(slices.Clone(tt.first), func(c string) bool { return domain.ValidateUID("uid", c) != nil })
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Errorf("uidCandidates(%q, %q, %q) starts %v, want %v", tt.uid, tt.name, tt.email, got[:min(len(got), len(want)+1)], want)
		}
	}
	long := strings.Repeat("a", domain.UIDMaxLen)
	for _, c := range uidCandidates(long, "", "") {
		if len(c) > domain.UIDMaxLen {
			t.Errorf("candidate %q too long", c)
		}
	}
}
