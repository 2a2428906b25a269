package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

// AuditEvent records one operation: who did what to which object, for whom,
// with what outcome. It never holds a secret.
type AuditEvent struct {
	ID         int64
	Time       time.Time
	Actor      string // uid, or "" for an anonymous caller
	OnBehalfOf string // the user a service acts for, if any
	Operation  string // e.g. "trellis.v1.Users/Register"
	Object     string // e.g. "user:alice"
	Outcome    string // "ok" or an error code
	RequestID  string
	Detail     string
}

// OutcomeOK marks a successful operation in the audit record.
const OutcomeOK = "ok"

// Mail is one message in the outbox.
type Mail struct {
	ID        int64
	CreatedAt time.Time
	To        string
	Subject   string
	// Body names the mailed token, if any, with MailSecret: the token
	// itself is never part of the body the store keeps.
	Body string
	// SealedSecret is the mailed token (a confirmation or reset token),
	// sealed with the key-encryption key, kept only until delivery.
	SealedSecret []byte
	SentAt       time.Time // zero until delivered
	LastError    string
	Attempts     int
}

// MailSecret stands for the mailed token in a Mail's body.
const MailSecret = "{{secret}}"

// MailRedacted replaces the mailed token in a body shown to someone who
// must not redeem it.
const MailRedacted = "[token redacted]"

// RenderMail puts secret (the opened SealedSecret, or MailRedacted) where
// body names it.
func RenderMail(body, secret string) string {
	return strings.ReplaceAll(body, MailSecret, secret)
}

// Bounds of what an audit record keeps. Anonymous callers cause records
// (failed logins, refusals) whose object and detail hold what they sent;
// cut to these bounds, no request makes a record large.
const (
	AuditFieldMax  = 256  // actor, on-behalf-of, operation, object, request id
	AuditDetailMax = 1024 // detail
)

// Bound cuts every string of e to its bound, at a character boundary, and
// marks a cut with "…".
func (e *AuditEvent) Bound() {
	for _, f := range []*string{&e.Actor, &e.OnBehalfOf, &e.Operation, &e.Object, &e.RequestID} {
		*f = Truncate(*f, AuditFieldMax)
	}
	e.Detail = Truncate(e.Detail, AuditDetailMax)
}

// Truncate returns s cut to at most max bytes at a character boundary,
// ending in "…" when it was cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	n := max - len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}
