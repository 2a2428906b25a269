// Package domain holds Trellis's vocabulary: its types, names, rights and
// validation rules, and the one error type every layer speaks. It does no I/O.
package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error. The transport layer maps each code to exactly one
// protocol code, so callers in every language see the same vocabulary.
type Code int

const (
	CodeInternal Code = iota
	CodeNotFound
	CodeAlreadyExists
	CodeInvalidArgument
	CodeFailedPrecondition
	CodeUnauthenticated
	CodePermissionDenied
	CodeResourceExhausted
	CodeAborted
	CodeUnavailable
)

var codeNames = map[Code]string{
	CodeInternal:           "internal",
	CodeNotFound:           "not_found",
	CodeAlreadyExists:      "already_exists",
	CodeInvalidArgument:    "invalid_argument",
	CodeFailedPrecondition: "failed_precondition",
	CodeUnauthenticated:    "unauthenticated",
	CodePermissionDenied:   "permission_denied",
	CodeResourceExhausted:  "resource_exhausted",
	CodeAborted:            "aborted",
	CodeUnavailable:        "unavailable",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Violation names one field and the rule it broke.
type Violation struct {
	Field       string
	Rule        string
	Description string
}

// Error is the typed error of Trellis. Message is safe to show the caller: it
// never holds a secret. Err, when set, is the underlying cause for logs; it is
// not shown to callers of internal errors.
type Error struct {
	Code       Code
	Message    string
	Violations []Violation
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Code == CodeInternal {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: X}) match on the code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// CodeOf returns the code of the first *Error in err's chain, CodeInternal
// when there is none, and -1 for nil.
func CodeOf(err error) Code {
	if err == nil {
		return -1
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// HasCode reports whether err carries code c.
func HasCode(err error, c Code) bool { return err != nil && CodeOf(err) == c }

func newf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

func NotFound(format string, args ...any) *Error { return newf(CodeNotFound, format, args...) }
func AlreadyExists(format string, args ...any) *Error {
	return newf(CodeAlreadyExists, format, args...)
}
func FailedPrecondition(format string, args ...any) *Error {
	return newf(CodeFailedPrecondition, format, args...)
}
func Unauthenticated(format string, args ...any) *Error {
	return newf(CodeUnauthenticated, format, args...)
}
func PermissionDenied(format string, args ...any) *Error {
	return newf(CodePermissionDenied, format, args...)
}
func ResourceExhausted(format string, args ...any) *Error {
	return newf(CodeResourceExhausted, format, args...)
}
func Aborted(format string, args ...any) *Error { return newf(CodeAborted, format, args...) }

// Unavailable says a party the operation needs (an identity provider, say)
// cannot be reached now; trying again later may work.
func Unavailable(format string, args ...any) *Error { return newf(CodeUnavailable, format, args...) }

// Internal wraps an unexpected failure. The caller sees only msg.
func Internal(err error, msg string) *Error {
	return &Error{Code: CodeInternal, Message: msg, Err: err}
}

// Invalid is an invalid-argument error with one violation.
func Invalid(field, rule, description string) *Error {
	return &Error{
		Code:       CodeInvalidArgument,
		Message:    field + ": " + description,
		Violations: []Violation{{Field: field, Rule: rule, Description: description}},
	}
}

// Violations collects field violations so a request can report all of them
// at once rather than the first only.
type Violations []Violation

// Add records a violation.
func (vs *Violations) Add(field, rule, description string) {
	*vs = append(*vs, Violation{Field: field, Rule: rule, Description: description})
}

// Check records the violations of err when it is an invalid-argument error
// and returns other errors unchanged, so validators compose.
func (vs *Violations) Check(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Code == CodeInvalidArgument {
		*vs = append(*vs, e.Violations...)
		return nil
	}
	return err
}

// Err returns an invalid-argument error carrying every violation, or nil.
func (vs Violations) Err() error {
	if len(vs) == 0 {
		return nil
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Field + ": " + v.Description
	}
	return &Error{Code: CodeInvalidArgument, Message: strings.Join(parts, "; "), Violations: vs}
}
