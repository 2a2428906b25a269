package password

import (
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		name     string
		uid      string
		password string
		want     []string // rules, in reporting order
	}{
		{"good", "alice", "violet staple orbit", nil},
		{"good unicode", "alice", "Ünïcødé-Päss✓", nil},
		{"exactly 10", "alice", "k7#Qz!m2Lp", nil},
		{"empty", "alice", "", []string{RuleTooShort, RuleRepetitive}},
		{"nine", "alice", "k7#Qz!m2L", []string{RuleTooShort}},
		// Ten runes but more than ten bytes: runes count, not bytes.
		{"ten runes", "alice", "äöüßéèêëïî", nil},
		{"too long", "alice", strings.Repeat("abcdefghij", 26), []string{RuleTooLong}},
		{"256 bytes ok", "alice", strings.Repeat("abcdefgh", 32), nil},
		{"contains uid", "alice", "xxAlice-likes-tea", []string{RuleContainsUID}},
		{"short uid ignored", "al", "always-albatross", nil},
		{"common", "alice", "Password123", []string{RuleCommon}},
		{"common walk", "alice", "QWERTYUIOP", []string{RuleCommon}},
		{"common digits", "alice", "1234567890", []string{RuleCommon}},
		{"common iloveyou12", "alice", "iloveyou12", []string{RuleCommon}},
		{"repetitive", "alice", "abababababab", []string{RuleRepetitive}},
		{"four distinct", "alice", "aabbccddaabbccdd", []string{RuleRepetitive}},
		{"five distinct", "alice", "aabbccddeeaabb", nil},
		{"several", "bob", "bobbobbob", []string{RuleTooShort, RuleContainsUID, RuleRepetitive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPolicy("new_password", tt.uid, tt.password)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("CheckPolicy = %v, want nil", err)
				}
				return
			}
			if !domain.HasCode(err, domain.CodeInvalidArgument) {
				t.Fatalf("CheckPolicy = %v, want invalid argument", err)
			}
			e := err.(*domain.Error)
			var got []string
			for _, v := range e.Violations {
				if v.Field != "new_password" {
					t.Errorf("violation field = %q, want new_password", v.Field)
				}
				if v.Description == "" {
					t.Errorf("violation %s has no description", v.Rule)
				}
				got = append(got, v.Rule)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("rules = %v, want %v", got, tt.want)
			}
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Fatalf("error %q echoes the password", err)
			}
		})
	}
}

func TestCommonListLoaded(t *testing.T) {
	if len(common) < 300 {
		t.Fatalf("common list has %d entries, want a few hundred", len(common))
	}
	for pw := range common {
		if pw != strings.ToLower(pw) || strings.TrimSpace(pw) != pw {
			t.Fatalf("entry %q is not normalized", pw)
		}
	}
}
