package password

import (
	_ "embed"
	"strings"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Policy limits. MaxBytes is far above what people type or password managers
// generate, and keeps arbitrary payloads out of the hasher.
const (
	MinRunes         = 10
	MaxBytes         = 256
	MinDistinctRunes = 5
	minUIDRunes      = 3
)

// Rules reported in domain violations.
const (
	RuleTooShort    = "password.too_short"
	RuleTooLong     = "password.too_long"
	RuleContainsUID = "password.contains_uid"
	RuleCommon      = "password.common"
	RuleRepetitive  = "password.repetitive"
)

//go:embed common.txt
var commonText string

// common holds the embedded list, lower-cased.
var common = func() map[string]struct{} {
	m := make(map[string]struct{}, 1200)
	for _, line := range strings.Split(commonText, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	return m
}()

// CheckPolicy checks a new password for account uid and returns nil or an
// invalid-argument error naming field with every rule the password breaks.
// Messages state the rules; they never repeat the password.
func CheckPolicy(field, uid, password string) error {
	var vs domain.Violations
	if utf8.RuneCountInString(password) < MinRunes {
		vs.Add(field, RuleTooShort, "a password needs at least 10 characters")
	}
	if len(password) > MaxBytes {
		vs.Add(field, RuleTooLong, "a password may have at most 256 bytes")
	}
	lower := strings.ToLower(password)
	if utf8.RuneCountInString(uid) >= minUIDRunes && strings.Contains(lower, strings.ToLower(uid)) {
		vs.Add(field, RuleContainsUID, "a password must not contain the user name")
	}
	if _, ok := common[lower]; ok {
		vs.Add(field, RuleCommon, "this password is on the list of common passwords; choose a less guessable one")
	}
	if distinctRunes(password, MinDistinctRunes) < MinDistinctRunes {
		vs.Add(field, RuleRepetitive, "a password needs at least 5 different characters")
	}
	return vs.Err()
}

// distinctRunes counts the distinct runes of s, stopping at enough.
func distinctRunes(s string, enough int) int {
	seen := make(map[rune]struct{}, enough)
	for _, r := range s {
		seen[r] = struct{}{}
		if len(seen) >= enough {
			break
		}
	}
	return len(seen)
}
