// Package mail delivers the outbox. Operations write their mail into the
// store's outbox in their own transaction, so a message exists exactly when
// the operation committed; a Sender then hands pending messages to an SMTP
// server. Without one, the outbox is where admins read mail
// (Admin.ListOutbox), so the embedded default needs no mail server.
package mail

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	// Addr is host:port of the SMTP server (submission, e.g. :587).
	Addr string
	From string
	// Username and Password, when set, authenticate with PLAIN (net/smtp
	// refuses PLAIN without TLS except to localhost).
	Username, Password string
}

// MaxAttempts is how often a message is tried before it is left failed.
const MaxAttempts = 8

// Sender delivers pending outbox messages.
type Sender struct {
	cfg SMTPConfig
	st  store.Store
	// sealer opens the mailed tokens waiting in the outbox.
	sealer keys.Sealer
	// KeepBodies keeps a message's body (its token excepted) once
	// delivered; by default only the record that it was sent stays. The
	// janitor drops kept bodies after their retention (see app.Config).
	KeepBodies bool
	log        *slog.Logger
	now        func() time.Time
	// send is smtp.SendMail; tests replace it.
	send func(addr string, a smtp.Auth, from string, to []string, msg []byte) error
}

// NewSender returns a sender for cfg; sealer (keys.Plain when nil) opens
// the tokens the service sealed into the outbox.
func NewSender(cfg SMTPConfig, st store.Store, sealer keys.Sealer, log *slog.Logger) *Sender {
	if sealer == nil {
		sealer = keys.Plain()
	}
	return &Sender{cfg: cfg, st: st, sealer: sealer, log: log, now: time.Now, send: smtp.SendMail}
}

// DeliverPending sends what is pending, oldest first, and records each
// outcome. It returns how many were sent.
func (s *Sender) DeliverPending(ctx context.Context) (int, error) {
	var pending []*domain.Mail
	if err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		pending, err = tx.Outbox().Pending(ctx, 50)
		return err
	}); err != nil {
		return 0, err
	}
	sent := 0
	for _, m := range pending {
		if m.Attempts >= MaxAttempts || ctx.Err() != nil {
			continue
		}
		err := s.deliver(m)
		rerr := s.st.Update(ctx, func(tx store.Tx) error {
			if err != nil {
				return tx.Outbox().MarkFailed(ctx, m.ID, err.Error())
			}
			return tx.Outbox().MarkSent(ctx, m.ID, s.now(), s.KeepBodies)
		})
		if rerr != nil {
			return sent, rerr
		}
		if err != nil {
			s.log.Warn("mail delivery failed", "id", m.ID, "attempt", m.Attempts+1, "err", err)
			continue
		}
		sent++
	}
	return sent, nil
}

func (s *Sender) deliver(m *domain.Mail) error {
	var a smtp.Auth
	if s.cfg.Username != "" {
		host, _, err := net.SplitHostPort(s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("smtp address %q: %w", s.cfg.Addr, err)
		}
		a = smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, host)
	}
	out := *m
	if m.SealedSecret != nil {
		tok, err := s.sealer.Open(m.SealedSecret)
		if err != nil {
			return fmt.Errorf("open the mailed token: %w", err)
		}
		out.Body = domain.RenderMail(m.Body, string(tok))
	}
	return s.send(s.cfg.Addr, a, s.cfg.From, []string{m.To}, Format(s.cfg.From, &out, s.now()))
}

// Format renders a message, its token already in the body, as RFC 5322 text.
func Format(from string, m *domain.Mail, now time.Time) []byte {
	var b strings.Builder
	header := func(k, v string) {
		// Header values come from Trellis itself, but strip line breaks
		// anyway: a header injection would be a way to forge mail.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		b.WriteString(k + ": " + v + "\r\n")
	}
	header("From", from)
	header("To", m.To)
	header("Subject", m.Subject)
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<trellis-%d-%d@%s>", m.ID, m.CreatedAt.UnixNano(), domainOf(from)))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.Trim(addr[i+1:], "> ")
	}
	return "trellis"
}
