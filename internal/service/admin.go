package service

import (
	"context"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/policy"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// AuditQuery selects audit events.
type AuditQuery struct {
	Actor, Object, Operation string
	Since                    time.Time
	// Until, when set, keeps only events before it.
	Until     time.Time
	PageSize  int32
	PageToken string
}

// ListAuditEvents pages through the audit record, newest first.
func (s *Accounts) ListAuditEvents(ctx context.Context, p *auth.Principal, q AuditQuery) ([]*domain.AuditEvent, string, error) {
	if err := s.authorize(ctx, p, opAdminListAuditEvents, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := idPage(q.PageSize, q.PageToken)
	if err != nil {
		return nil, "", err
	}
	var evs []*domain.AuditEvent
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		evs, next, err = readPage(pg, func(before int64, n int) ([]*domain.AuditEvent, error) {
			return tx.Audit().List(ctx, store.AuditFilter{Actor: q.Actor, Object: q.Object, Operation: q.Operation, Since: q.Since, Until: q.Until, BeforeID: before, Limit: n})
		}, func(e *domain.AuditEvent) int64 { return e.ID }, nil)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return evs, next, nil
}

// ListOutbox pages through mail, newest first, with mailed tokens redacted
// unless this is the development outbox (see Config.MailDelivered).
func (s *Accounts) ListOutbox(ctx context.Context, p *auth.Principal, to string, pageSize int32, pageToken string) ([]*domain.Mail, string, error) {
	if err := s.authorize(ctx, p, opAdminListOutbox, policy.None); err != nil {
		return nil, "", err
	}
	pg, err := idPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	var mail []*domain.Mail
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		mail, next, err = readPage(pg, func(before int64, n int) ([]*domain.Mail, error) {
			return tx.Outbox().List(ctx, store.OutboxFilter{To: to, BeforeID: before, Limit: n})
		}, func(m *domain.Mail) int64 { return m.ID }, nil)
		return err
	})
	if err != nil {
		return nil, "", err
	}
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
