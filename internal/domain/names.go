package domain

import (
	"net/mail"
	"regexp"
	"strings"
)

// uidPattern is the portable Unix login name (POSIX portable filename set,
// lower case, not starting with a digit or '-'), because a uid becomes a login
// name at the sites.
var uidPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)

const (
	UIDMinLen = 2
	UIDMaxLen = 32
	// EmailMaxLen follows RFC 5321's path limit.
	EmailMaxLen = 254
)

const uidRule = "a uid is 2 to 32 characters: lower-case letters, digits, '_' or '-', starting with a letter or '_'"

// reservedUIDs are names a researcher may not take because sites or Trellis
// itself give them a meaning.
var reservedUIDs = map[string]bool{
	"root": true, "admin": true, "daemon": true, "bin": true, "sys": true,
	"nobody": true, "operator": true, "trellis": true, "system": true,
}

// ValidateUID checks a user id against the uid rule.
func ValidateUID(field, uid string) error {
	switch {
	case uid == "":
		return Invalid(field, "uid.required", "a uid is required; "+uidRule)
	case len(uid) < UIDMinLen || len(uid) > UIDMaxLen:
		return Invalid(field, "uid.length", "uid must be 2 to 32 characters long; "+uidRule)
	case !uidPattern.MatchString(uid):
		return Invalid(field, "uid.format", "uid "+quote(uid)+" is not a valid login name; "+uidRule)
	case reservedUIDs[uid]:
		return Invalid(field, "uid.reserved", "uid "+quote(uid)+" is reserved for the system")
	}
	return nil
}

// NormalizeEmail validates an e-mail address and returns it in the form
// Trellis stores: the bare address, domain part lower-cased.
func NormalizeEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", Invalid(field, "email.required", "an e-mail address is required")
	}
	if len(email) > EmailMaxLen {
		return "", Invalid(field, "email.length", "an e-mail address is at most 254 characters")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", Invalid(field, "email.format", "not a valid e-mail address (expected local@domain)")
	}
	at := strings.LastIndexByte(email, '@')
	domain := strings.ToLower(email[at+1:])
	if !strings.Contains(domain, ".") && domain != "localhost" {
		return "", Invalid(field, "email.format", "the e-mail domain must be a fully qualified name")
	}
	return email[:at+1] + domain, nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + s + "\""
}
