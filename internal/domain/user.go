package domain

import (
	"fmt"
	"time"
)

// UserState is where an account stands.
type UserState string

const (
	// UserPendingEmail: registered, e-mail not yet confirmed; cannot log in.
	UserPendingEmail UserState = "pending_email"
	UserActive       UserState = "active"
	// UserLocked: temporarily barred (by an admin); sessions revoked.
	UserLocked UserState = "locked"
	// UserDisabled: permanently barred; sessions revoked.
	UserDisabled UserState = "disabled"
)

// ParseUserState accepts the states an admin may set.
func ParseUserState(field, s string) (UserState, error) {
	switch st := UserState(s); st {
	case UserActive, UserLocked, UserDisabled:
		return st, nil
	case UserPendingEmail:
		return "", Invalid(field, "state.not_settable", "pending_email is entered by registering, not set")
	}
	return "", Invalid(field, "state.unknown", fmt.Sprintf("unknown state %s; one of active, locked, disabled", quote(s)))
}

// User is a researcher's account. The password hash is not part of it: it
// travels only between the store and the password checker.
type User struct {
	UID           string
	Email         string
	EmailVerified bool
	State         UserState
	Admin         bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// CanLogIn explains why an account may not open a session, or returns nil.
func (u *User) CanLogIn() error {
	switch u.State {
	case UserActive:
		return nil
	case UserPendingEmail:
		return FailedPrecondition("the e-mail address of %s is not confirmed yet: use the token mailed to it (trellis user confirm TOKEN), or ask for a new one with Users.ResendConfirmation", u.UID)
	case UserLocked:
		return PermissionDenied("account %s is locked; contact the testbed operators", u.UID)
	default:
		return PermissionDenied("account %s is disabled", u.UID)
	}
}
