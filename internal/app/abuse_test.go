package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

const opLogin = "trellis.v1.Auth/Login"

// auditCount counts every audit record in the store.
func (h *harness) auditCount() int {
	h.t.Helper()
	n := 0
	err := h.srv.Store.View(context.Background(), func(tx store.Tx) error {
		var before int64
		for {
			evs, err := tx.Audit().List(context.Background(), store.AuditFilter{BeforeID: before, Limit: 500})
			if err != nil {
				return err
			}
			n += len(evs)
			if len(evs) < 500 {
				return nil
			}
			before = evs[len(evs)-1].ID
		}
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// failures reads the failed-login count of uid from client.
func (h *harness) failures(uid, client string) int {
	h.t.Helper()
	var n int
	err := h.srv.Store.View(context.Background(), func(tx store.Tx) (err error) {
		n, _, err = tx.LoginFailures().Get(context.Background(), uid, client)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestMalformedUIDStoresNothing: a uid of megabytes, given to any
// operation that takes one (Login, HTTP Basic, a challenge, a reset, a
// confirmation), is refused as invalid_argument naming the uid field before
// anything is stored: no failure count, no audit record.
func TestMalformedUIDStoresNothing(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			h.bootstrapAdmin()
			ctx := context.Background()
			huge := strings.Repeat("a", 4<<20)
			before := h.auditCount()
			calls := map[string]func() error{
				"Login": func() error {
					_, err := h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: huge, Password: "whatever it is"}, ""))
					return err
				},
				"RequestChallenge": func() error {
					_, err := h.auth.RequestChallenge(ctx, req(&trellisv1.RequestChallengeRequest{Uid: huge}, ""))
					return err
				},
				"RequestPasswordReset": func() error {
					_, err := h.users.RequestPasswordReset(ctx, req(&trellisv1.RequestPasswordResetRequest{Uid: huge}, ""))
					return err
				},
				"ResendConfirmation": func() error {
					_, err := h.users.ResendConfirmation(ctx, req(&trellisv1.ResendConfirmationRequest{Uid: huge}, ""))
					return err
				},
			}
			for name, call := range calls {
				err := call()
				wantCode(t, err, connect.CodeInvalidArgument)
				if rule := violations(err)["uid"]; rule != "uid.length" {
					t.Errorf("%s: violations %v, want uid.length on uid", name, violations(err))
				}
			}
			// A malformed uid in HTTP Basic credentials: a uid of the
			// megabyte that headers allow.
			r := h.basicWhoAmI(strings.Repeat("b", 700<<10), "whatever it is")
			wantRaw(t, "basic with a huge uid", r, http.StatusBadRequest, "invalid_argument", "uid must be 2 to 32 characters")
			r = h.basicWhoAmI("Not/A/Name", "whatever it is")
			wantRaw(t, "basic with a malformed uid", r, http.StatusBadRequest, "invalid_argument", "not a valid login name")

			if after := h.auditCount(); after != before {
				t.Errorf("%d audit records written for malformed uids", after-before)
			}
			if n := h.failures(huge, "127.0.0.1"); n != 0 {
				t.Errorf("a failed login counted for the huge uid: %d", n)
			}
		})
	}
}

// TestAnonymousAuditRecordsAreBounded: what an anonymous caller sends
// (here an external login's id) goes into a refusal's audit record cut to
// its bound.
func TestAnonymousAuditRecordsAreBounded(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	huge := strings.Repeat("x", 1<<20)
	_, err := h.srv.Service.Federation.LinkExternalLogin(context.Background(), nil, huge, "link", "alice", "whatever it is")
	if err == nil {
		t.Fatal("a link of an unknown external login succeeded")
	}
	var evs []*domain.AuditEvent
	if err := h.srv.Store.View(context.Background(), func(tx store.Tx) (err error) {
		evs, err = tx.Audit().List(context.Background(), store.AuditFilter{Limit: 1})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Object, "external_login:xxx") {
		t.Fatalf("newest audit record %+v, want the refused link", evs)
	}
	if e := evs[0]; len(e.Object) > domain.AuditFieldMax || len(e.Detail) > domain.AuditDetailMax {
		t.Errorf("audit record keeps an object of %d bytes, detail of %d", len(e.Object), len(e.Detail))
	}
}

// clientFrom returns an HTTP client whose connections come from the local
// address ip (any of 127.0.0.0/8 reaches the loopback server).
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestParallelGuessingIsBackedOff: forty wrong passwords for one account,
// sent at once from one address, are counted before their passwords are
// checked: no more than the back-off allows are checked (each check is an
// Argon2id run, and answers unauthenticated), the rest are refused with
// resource_exhausted. The account's owner, logging in from another address,
// is not locked out; the guessing address is, even with the right password.
func TestParallelGuessingIsBackedOff(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			const after = 5
			h := newServer(t, openStore(t, kind), func(c *app.Config) {
				c.Service.LoginBackoffAfter = after
				c.Service.LoginBackoffBase = time.Hour
			})
			h.bootstrapAdmin()
			h.newUser("alice")
			ctx := context.Background()
			const n = 40
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: "alice", Password: "a guess at the password"}, ""))
				})
			}
			close(start)
			wg.Wait()
			checked, refused := 0, 0
			for i, err := range errs {
				switch connect.CodeOf(err) {
				case connect.CodeUnauthenticated:
					checked++
				case connect.CodeResourceExhausted:
					refused++
				default:
					t.Errorf("guess %d: %v", i, err)
				}
			}
			if checked > after || refused < n-after {
				t.Fatalf("of %d parallel guesses %d were checked and %d refused; want at most %d checked", n, checked, refused, after)
			}

			// The owner, from another address, logs in; with the right
			// password over HTTP Basic too.
			other := trellisv1connect.NewAuthClient(clientFrom(t, "127.0.0.2"), h.url)
			if _, err := other.Login(ctx, req(&trellisv1.LoginRequest{Uid: "alice", Password: userPassword}, "")); err != nil {
				t.Fatalf("the owner, from another address, is locked out: %v", err)
			}
			// The guessing address waits, whatever password it tries;
			// knocking on during the wait adds no audit records.
			records := h.auditCount()
			wantRaw(t, "basic from the guessing address", h.basicWhoAmI("alice", userPassword), http.StatusTooManyRequests, "resource_exhausted", "too many failed logins")
			for range 20 {
				h.basicWhoAmI("alice", "another guess at it")
			}
			if more := h.auditCount() - records; more > 1 {
				t.Errorf("21 refusals during one back-off wrote %d audit records, want at most 1", more)
			}
			if got := h.failures("alice", "127.0.0.1"); got != checked {
				t.Errorf("the guessing address has %d failures counted, want the %d checked", got, checked)
			}
			h.wantAudited(opLogin, "user:alice", "resource_exhausted", "login back-off")
		})
	}
}

// TestJanitorForgetsOldLoginFailures: failure counts older than the
// back-off's reset are deleted by the janitor; newer ones stay.
func TestJanitorForgetsOldLoginFailures(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	reset := h.srv.Service.Config().LoginFailureReset
	now := time.Now()
	if err := h.srv.Store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.LoginFailures().Record(ctx, "old", "192.0.2.1", now.Add(-reset-time.Minute)); err != nil {
			return err
		}
		_, err := tx.LoginFailures().Record(ctx, "new", "192.0.2.1", now.Add(-time.Minute))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Tidy(ctx); err != nil {
		t.Fatal(err)
	}
	if old, recent := h.failures("old", "192.0.2.1"), h.failures("new", "192.0.2.1"); old != 0 || recent != 1 {
		t.Errorf("after the janitor: old count %d (want 0), recent %d (want 1)", old, recent)
	}
}

// TestResetMailFlood: a burst of password-reset requests for one account,
// from several addresses (each within its own per-address limit), mails it
// no more than the account's limit; every answer is the same, for the
// account and for a uid without one, and states the limit.
func TestResetMailFlood(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			h.bootstrapAdmin()
			h.newUser("alice")
			ctx := context.Background()
			limit := h.srv.Service.Config().ResetMailLimit
			const n = 25
			clients := make([]trellisv1connect.UsersClient, 5)
			for i := range clients {
				clients[i] = trellisv1connect.NewUsersClient(clientFrom(t, "127.0.0."+string(rune('3'+i))), h.url)
			}
			answers := make([]string, 2*n)
			errs := make([]error, 2*n)
			var wg sync.WaitGroup
			for i := range 2 * n {
				uid := "alice"
				if i >= n {
					uid = "ghost"
				}
				wg.Go(func() {
					resp, err := clients[i%len(clients)].RequestPasswordReset(ctx, req(&trellisv1.RequestPasswordResetRequest{Uid: uid}, ""))
					if errs[i] = err; err == nil {
						answers[i] = resp.Msg.Message
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if answers[i] != answers[0] {
					t.Fatalf("answers differ: %q and %q", answers[i], answers[0])
				}
			}
			if want := fmt.Sprintf("at most %d reset mails per", limit); !strings.Contains(answers[0], want) {
				t.Errorf("answer %q does not say %q", answers[0], want)
			}
			var mail []*domain.Mail
			if err := h.srv.Store.View(ctx, func(tx store.Tx) (err error) {
				mail, err = tx.Outbox().List(ctx, store.OutboxFilter{To: "alice@uni.example.edu", Subject: "Reset your Trellis password"})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(mail) == 0 || len(mail) > limit {
				t.Errorf("%d requests mailed alice %d resets, want 1 to %d", n, len(mail), limit)
			}
		})
	}
}
