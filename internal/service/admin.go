package service

import (
	"context"
	"encoding/base64"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/policy"
	"strconv"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func pageLimit(size int32) (int, error) {
	switch {
	case size < 0:
		return 0, domain.Invalid("page_size", "page_size.range", "page_size must be between 0 and 1000")
	case size == 0:
		return defaultPageSize, nil
	case size > maxPageSize:
		return maxPageSize, nil
	}
	return int(size), nil
}

func encodeStringToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeStringToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", domain.Invalid("page_token", "page_token.malformed", "page_token is not one this server handed out")
	}
	return string(b), nil
}

func decodeIDToken(tok string) (int64, error) {
	if tok == "" {
		return 0, nil
	}
	s, err := decodeStringToken(tok)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, domain.Invalid("page_token", "page_token.malformed", "page_token is not one this server handed out")
	}
	return id, nil
}

func encodeIDToken(id int64) string { return encodeStringToken(strconv.FormatInt(id, 10)) }

// trimPage cuts a listing fetched with one row more than the page holds, and
// returns the next page's token (empty on the last page).
func trimPage[T any](rows []T, limit int, token func(last T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, token(rows[limit-1])
}

// AuditQuery selects audit events.
type AuditQuery struct {
	Actor, Object, Operation string
	Since                    time.Time
	PageSize                 int32
	PageToken                string
}

// ListAuditEvents pages through the audit record, newest first.
func (s *Accounts) ListAuditEvents(ctx context.Context, p *auth.Principal, q AuditQuery) ([]*domain.AuditEvent, string, error) {
	if err := s.authorize(ctx, p, opAdminListAuditEvents, policy.None); err != nil {
		return nil, "", err
	}
	limit, err := pageLimit(q.PageSize)
	if err != nil {
		return nil, "", err
	}
	before, err := decodeIDToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	var evs []*domain.AuditEvent
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		evs, err = tx.Audit().List(ctx, store.AuditFilter{Actor: q.Actor, Object: q.Object, Operation: q.Operation, Since: q.Since, BeforeID: before, Limit: limit + 1})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	evs, next := trimPage(evs, limit, func(e *domain.AuditEvent) string { return encodeIDToken(e.ID) })
	return evs, next, nil
}

// ListOutbox pages through mail, newest first, with mailed tokens redacted
// unless this is the development outbox (see Config.MailDelivered).
func (s *Accounts) ListOutbox(ctx context.Context, p *auth.Principal, to string, pageSize int32, pageToken string) ([]*domain.Mail, string, error) {
	if err := s.authorize(ctx, p, opAdminListOutbox, policy.None); err != nil {
		return nil, "", err
	}
	limit, err := pageLimit(pageSize)
	if err != nil {
		return nil, "", err
	}
	before, err := decodeIDToken(pageToken)
	if err != nil {
		return nil, "", err
	}
	var mail []*domain.Mail
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		mail, err = tx.Outbox().List(ctx, store.OutboxFilter{To: to, BeforeID: before, Limit: limit + 1})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	mail, next := trimPage(mail, limit, func(m *domain.Mail) string { return encodeIDToken(m.ID) })
	for _, m := range mail {
		m.Body = domain.RenderMail(m.Body, s.outboxSecret(m))
		m.SealedSecret = nil
	}
	return mail, next, nil
}

// outboxSecret is what ListOutbox shows of m's mailed token: the token
// itself only in the development outbox (no mail server, so the outbox is
// how the recipient gets it) and only while undelivered; otherwise it is
// redacted, and an administrator cannot take over the recipient's account.
func (s *Accounts) outboxSecret(m *domain.Mail) string {
	if s.cfg.MailDelivered || !m.SentAt.IsZero() || m.SealedSecret == nil {
		return domain.MailRedacted
	}
	tok, err := s.sealer.Open(m.SealedSecret)
	if err != nil {
		s.log.Warn("a mailed token in the outbox does not open (key-encryption key changed?)", "mail", m.ID, "err", err)
		return domain.MailRedacted
	}
	return string(tok)
}
