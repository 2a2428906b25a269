package mail

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// smtpServer is a minimal SMTP receiver on loopback: enough of RFC 5321 for
// net/smtp to deliver to it. reject makes it refuse recipients.
type smtpServer struct {
	ln     net.Listener
	mu     sync.Mutex
	got    []string
	reject bool
}

func newSMTPServer(t *testing.T) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *smtpServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *smtpServer) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { io.WriteString(c, line+"\r\n") }
	say("220 test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 test")
		case strings.HasPrefix(cmd, "MAIL FROM"):
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO"):
			s.mu.Lock()
			reject := s.reject
			s.mu.Unlock()
			if reject {
				say("550 no such mailbox")
			} else {
				say("250 ok")
			}
		case cmd == "DATA":
			say("354 go ahead")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			s.mu.Lock()
			s.got = append(s.got, msg.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func TestDeliverPending(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"alice@uni.example.edu", "bob@uni.example.edu"} {
		if err := st.Update(ctx, func(tx store.Tx) error {
			return tx.Outbox().Append(ctx, &domain.Mail{CreatedAt: time.Now(), To: to, Subject: "Hello\r\nBcc: evil@x.org", Body: "line one\nline two\n"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	srv := newSMTPServer(t)
	srv.reject = true
	s := NewSender(SMTPConfig{Addr: srv.ln.Addr().String(), From: "trellis@testbed.example.org"}, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))

	// A refusing server: nothing sent, the error is recorded, the mail stays
	// pending for the next pass.
	n, err := s.DeliverPending(ctx)
	if err != nil || n != 0 {
		t.Fatalf("refused pass: sent %d, err %v", n, err)
	}
	var pending []*domain.Mail
	st.View(ctx, func(tx store.Tx) error { pending, err = tx.Outbox().Pending(ctx, 10); return err })
	if len(pending) != 2 || pending[0].Attempts != 1 || !strings.Contains(pending[0].LastError, "550") {
		t.Fatalf("after refusal: %+v", pending)
	}

	srv.mu.Lock()
	srv.reject = false
	srv.mu.Unlock()
	if n, err := s.DeliverPending(ctx); err != nil || n != 2 {
		t.Fatalf("delivering: sent %d, err %v", n, err)
	}
	if n, err := s.DeliverPending(ctx); err != nil || n != 0 {
		t.Fatalf("second pass resent: %d, %v", n, err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.got) != 2 {
		t.Fatalf("server received %d messages", len(srv.got))
	}
	msg := srv.got[0]
	if !strings.Contains(msg, "To: alice@uni.example.edu\r\n") || !strings.Contains(msg, "line one\r\nline two\r\n") {
		t.Fatalf("message:\n%s", msg)
	}
	if strings.Contains(msg, "\r\nBcc:") {
		t.Fatalf("header injection got through:\n%s", msg)
	}
}

// TestDeliveredTokenLeavesTheStore: a mailed token reaches its recipient in
// clear, but the store holds it only sealed, and only until delivery; the
// body goes too unless the sender keeps bodies.
func TestDeliveredTokenLeavesTheStore(t *testing.T) {
	const token = "tok-3bY8qK1v9s0Zr7mW2xP4nL6eT5uA1cD8fG0hJ2kQ4wE"
	sealer, err := keys.NewAESGCM([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		ctx := context.Background()
		st, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/t.db")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		sealed, err := sealer.Seal([]byte(token))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Update(ctx, func(tx store.Tx) error {
			return tx.Outbox().Append(ctx, &domain.Mail{CreatedAt: time.Now(), To: "alice@uni.example.edu", Subject: "Reset",
				Body: "Your token is\n\n    " + domain.MailSecret + "\n", SealedSecret: sealed})
		}); err != nil {
			t.Fatal(err)
		}
		srv := newSMTPServer(t)
		s := NewSender(SMTPConfig{Addr: srv.ln.Addr().String(), From: "trellis@testbed.example.org"}, st, sealer, slog.New(slog.NewTextHandler(io.Discard, nil)))
		s.KeepBodies = keep
		if n, err := s.DeliverPending(ctx); err != nil || n != 1 {
			t.Fatalf("keep %v: sent %d, err %v", keep, n, err)
		}
		srv.mu.Lock()
		got := srv.got[0]
		srv.mu.Unlock()
		if !strings.Contains(got, "    "+token+"\r\n") {
			t.Errorf("keep %v: the recipient did not get the token:\n%s", keep, got)
		}
		var all []*domain.Mail
		st.View(ctx, func(tx store.Tx) error { all, err = tx.Outbox().List(ctx, store.OutboxFilter{}); return err })
		if len(all) != 1 || all[0].SentAt.IsZero() || all[0].SealedSecret != nil {
			t.Fatalf("keep %v: after delivery the outbox holds %+v, want the sent record without its secret", keep, all)
		}
		if wantBody := keep; (all[0].Body != "") != wantBody || strings.Contains(all[0].Body, token) {
			t.Errorf("keep %v: body after delivery %q", keep, all[0].Body)
		}
	}
}
