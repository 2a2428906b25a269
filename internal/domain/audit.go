package domain

import "time"

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
	Body      string
	SentAt    time.Time // zero until delivered
	LastError string
	Attempts  int
}
