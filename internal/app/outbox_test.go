package app_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// writeKEK writes a key-encryption key file (mode 0600) and returns its path.
func writeKEK(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trellis.kek")
	if err := os.WriteFile(p, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedAddr is an address where no mail server listens: mail to it stays
// pending.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestMailedTokensStaySecret: live confirmation and reset tokens are never
// in the store in clear (only their hash and, until delivery, the token
// sealed with the key-encryption key), and Admin.ListOutbox shows them only
// in the development outbox, when no mail server delivers mail.
func TestMailedTokensStaySecret(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		for _, delivered := range []bool{false, true} {
			name := string(kind) + "/dev-outbox"
			if delivered {
				name = string(kind) + "/mail-server"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				h := newServer(t, openStore(t, kind), func(c *app.Config) {
					c.KEKFile = writeKEK(t)
					if delivered {
						c.SMTP.Addr = closedAddr(t)
					}
				})
				adminTok := h.bootstrapAdmin()
				if _, err := h.users.Register(ctx, req(&trellisv1.RegisterRequest{
					Uid: "alice", Email: "alice@uni.example.edu", Password: userPassword,
					Profile: map[string]string{"name": "Alice", "phone": "+1 310 555 0100"},
				}, "")); err != nil {
					t.Fatal(err)
				}
				if _, err := h.users.RequestPasswordReset(ctx, req(&trellisv1.RequestPasswordResetRequest{Uid: "ops"}, "")); err != nil {
					t.Fatal(err)
				}

				// What a reader of the database or of a backup finds.
				var stored []*domain.Mail
				if err := h.srv.Store.View(ctx, func(tx store.Tx) error {
					var err error
					stored, err = tx.Outbox().List(ctx, store.OutboxFilter{})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if len(stored) != 2 {
					t.Fatalf("outbox holds %d mails, want 2", len(stored))
				}
				for _, m := range stored {
					if tok := tokenInMail.FindString(m.Body); tok != "" {
						t.Errorf("the stored body of %q holds a live token:\n%s", m.Subject, m.Body)
					}
					if len(m.SealedSecret) == 0 {
						t.Errorf("the stored mail %q has no sealed token", m.Subject)
					}
				}

				out, err := h.admin.ListOutbox(ctx, req(&trellisv1.ListOutboxRequest{}, adminTok))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range out.Msg.Messages {
					match := tokenInMail.FindStringSubmatch(m.Body)
					if delivered {
						if match != nil || !strings.Contains(m.Body, domain.MailRedacted) {
							t.Errorf("with a mail server, ListOutbox shows %q as:\n%s\nwant the token redacted", m.Subject, m.Body)
						}
						continue
					}
					if match == nil {
						t.Fatalf("the development outbox shows %q without its token:\n%s", m.Subject, m.Body)
					}
					for _, s := range stored {
						if bytes.Contains(s.SealedSecret, []byte(match[1])) {
							t.Errorf("the token of %q is stored in clear beside the body", m.Subject)
						}
					}
				}
				if delivered {
					return
				}
				// The development outbox's tokens work: the README tour.
				tok, _ := h.lastMailTo("alice@uni.example.edu")
				if _, err := h.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: tok}, "")); err != nil {
					t.Fatalf("confirm with the outbox's token: %v", err)
				}
			})
		}
	}
}
