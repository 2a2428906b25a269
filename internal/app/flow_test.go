package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/store"
)

// TestAccountLifecycle walks a researcher through Trellis on both stores:
// register, confirm, log in, profile, password, refresh, logout.
func TestAccountLifecycle(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()

			reg, err := h.users.Register(ctx, req(&trellisv1.RegisterRequest{
				Uid: "alice", Email: "alice@Uni.Example.EDU", Password: "rabbit hole 2026!",
				Profile: map[string]string{"name": "Alice Liddell", "phone": "+44 1865 270000", "affiliation": "Oxford"},
			}, ""))
			if err != nil {
				t.Fatal(err)
			}
			if u := reg.Msg.User; u.State != trellisv1.UserState_USER_STATE_PENDING_EMAIL || u.Email != "alice@uni.example.edu" {
				t.Fatalf("registered user = %v", u)
			}

			// Pending accounts cannot log in, and are told how to confirm.
			_, err = h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: "alice", Password: "rabbit hole 2026!"}, ""))
			wantCode(t, err, connect.CodeFailedPrecondition)
			if !strings.Contains(err.Error(), "confirm") {
				t.Fatalf("pending login error does not say how to confirm: %v", err)
			}

			// The confirmation mail sits in the outbox, readable by admins.
			out, err := h.admin.ListOutbox(ctx, req(&trellisv1.ListOutboxRequest{To: "alice@uni.example.edu"}, adminTok))
			if err != nil || len(out.Msg.Messages) != 1 {
				t.Fatalf("outbox: %v %v", out, err)
			}
			tok, _ := h.lastMailTo("alice@uni.example.edu")
			conf, err := h.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: tok}, ""))
			if err != nil || conf.Msg.User.State != trellisv1.UserState_USER_STATE_ACTIVE || !conf.Msg.User.EmailVerified {
				t.Fatalf("confirm: %v %v", conf, err)
			}
			// A token works once.
			_, err = h.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: tok}, ""))
			wantCode(t, err, connect.CodeInvalidArgument)
			if v := violations(err); v["token"] != "token.unknown" {
				t.Fatalf("reused token violations = %v", v)
			}

			toks := h.login("alice", "rabbit hole 2026!")
			who, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, toks.AccessToken))
			if err != nil || who.Msg.Uid != "alice" || who.Msg.Admin || who.Msg.SessionId != toks.SessionId {
				t.Fatalf("whoami: %v %v", who, err)
			}

			// Profile: read, then a set that partly fails, reported per attribute.
			prof, err := h.users.GetUserProfile(ctx, req(&trellisv1.GetUserProfileRequest{}, toks.AccessToken))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, a := range prof.Msg.Attributes {
				got[a.Name] = a.Value
			}
			if got["name"] != "Alice Liddell" || got["email"] != "alice@uni.example.edu" || got["affiliation"] != "Oxford" {
				t.Fatalf("profile = %v", got)
			}
			set, err := h.users.SetUserProfile(ctx, req(&trellisv1.SetUserProfileRequest{
				Set:   map[string]string{"title": "Dr", "phone": "not-a-phone", "shoe_size": "7", "city": "Oxford"},
				Clear: []string{"name"},
			}, toks.AccessToken))
			if err != nil {
				t.Fatal(err)
			}
			results := map[string]*trellisv1.AttributeChange{}
			for _, c := range set.Msg.Changes {
				results[c.Name] = c
			}
			for name, rule := range map[string]string{"title": "", "city": "", "phone": "format", "shoe_size": "unknown", "name": "required"} {
				c := results[name]
				if c == nil || c.Rule != rule || c.Changed != (rule == "") {
					t.Errorf("%s: %v, want rule %q", name, c, rule)
				}
			}
			prof, _ = h.users.GetUserProfile(ctx, req(&trellisv1.GetUserProfileRequest{}, toks.AccessToken))
			for _, a := range prof.Msg.Attributes {
				got[a.Name] = a.Value
			}
			if got["title"] != "Dr" || got["city"] != "Oxford" || got["phone"] != "+44 1865 270000" || got["name"] != "Alice Liddell" {
				t.Fatalf("profile after set = %v", got)
			}

			// Password change: the old one stops working.
			_, err = h.users.ChangePassword(ctx, req(&trellisv1.ChangePasswordRequest{CurrentPassword: "wrong one entirely", NewPassword: "through the looking glass"}, toks.AccessToken))
			wantCode(t, err, connect.CodeInvalidArgument)
			if _, err := h.users.ChangePassword(ctx, req(&trellisv1.ChangePasswordRequest{CurrentPassword: "rabbit hole 2026!", NewPassword: "through the looking glass"}, toks.AccessToken)); err != nil {
				t.Fatal(err)
			}
			_, err = h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: "alice", Password: "rabbit hole 2026!"}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)

			// Refresh rotates; the used refresh token ends the session.
			ref, err := h.auth.Refresh(ctx, req(&trellisv1.RefreshRequest{RefreshToken: toks.RefreshToken}, ""))
			if err != nil || ref.Msg.Tokens.SessionId != toks.SessionId || ref.Msg.Tokens.RefreshToken == toks.RefreshToken {
				t.Fatalf("refresh: %v %v", ref, err)
			}
			if _, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, ref.Msg.Tokens.AccessToken)); err != nil {
				t.Fatalf("refreshed token refused: %v", err)
			}
			_, err = h.auth.Refresh(ctx, req(&trellisv1.RefreshRequest{RefreshToken: toks.RefreshToken}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)
			_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, ref.Msg.Tokens.AccessToken))
			wantCode(t, err, connect.CodeUnauthenticated)

			// Logout: the session's token is refused afterwards.
			toks = h.login("alice", "through the looking glass")
			if _, err := h.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, toks.AccessToken)); err != nil {
				t.Fatal(err)
			}
			_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, toks.AccessToken))
			wantCode(t, err, connect.CodeUnauthenticated)

			// Everything above is in the audit record.
			aud, err := h.admin.ListAuditEvents(ctx, req(&trellisv1.ListAuditEventsRequest{Object: "user:alice", PageSize: 100}, adminTok))
			if err != nil {
				t.Fatal(err)
			}
			ops := map[string]int{}
			for _, e := range aud.Msg.Events {
				ops[e.Operation+" "+e.Outcome]++
				if e.RequestId == "" {
					t.Errorf("audit event without request id: %v", e)
				}
			}
			for _, want := range []string{
				"trellis.v1.Users/Register ok", "trellis.v1.Users/ConfirmEmail ok", "trellis.v1.Auth/Login ok",
				"trellis.v1.Users/SetUserProfile ok", "trellis.v1.Users/ChangePassword ok",
				"trellis.v1.Auth/Login unauthenticated", "trellis.v1.Auth/Login failed_precondition",
			} {
				if ops[want] == 0 {
					t.Errorf("audit lacks %q; has %v", want, ops)
				}
			}
			for _, e := range aud.Msg.Events {
				for _, secret := range []string{"rabbit hole", "looking glass", tok, toks.RefreshToken} {
					if strings.Contains(e.Detail, secret) {
						t.Fatalf("audit event leaks a secret: %v", e)
					}
				}
			}
		})
	}
}

func TestPasswordReset(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	userTok := h.newUser("bob")
	// Unknown accounts get the same answer, and no mail.
	if _, err := h.users.RequestPasswordReset(ctx, req(&trellisv1.RequestPasswordResetRequest{Uid: "nobody-here"}, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.users.RequestPasswordReset(ctx, req(&trellisv1.RequestPasswordResetRequest{Uid: "bob"}, "")); err != nil {
		t.Fatal(err)
	}
	tok, mail := h.lastMailTo("bob@uni.example.edu")
	if !strings.Contains(mail.Subject, "Reset") {
		t.Fatalf("newest mail is %q", mail.Subject)
	}
	_, err := h.users.ResetPassword(ctx, req(&trellisv1.ResetPasswordRequest{Token: tok, NewPassword: "short"}, ""))
	wantCode(t, err, connect.CodeInvalidArgument)
	if v := violations(err); v["new_password"] != "password.too_short" {
		t.Fatalf("violations = %v", v)
	}
	// A refused attempt does not use the token up.
	if _, err := h.users.ResetPassword(ctx, req(&trellisv1.ResetPasswordRequest{Token: tok, NewPassword: "a brand new passphrase"}, "")); err != nil {
		t.Fatal(err)
	}
	_, err = h.users.ResetPassword(ctx, req(&trellisv1.ResetPasswordRequest{Token: tok, NewPassword: "a second new passphrase"}, ""))
	wantCode(t, err, connect.CodeInvalidArgument)
	// The reset ended bob's sessions.
	_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, userTok))
	wantCode(t, err, connect.CodeUnauthenticated)
	h.login("bob", "a brand new passphrase")
}

func TestExpiredConfirmation(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	_, err := h.users.Register(ctx, req(&trellisv1.RegisterRequest{
		Uid: "carol", Email: "carol@uni.example.edu", Password: userPassword,
		Profile: map[string]string{"name": "Carol", "phone": "+1 310 555 0100"},
	}, ""))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := h.lastMailTo("carol@uni.example.edu")
	// Resending supersedes the first token.
	if _, err := h.users.ResendConfirmation(ctx, req(&trellisv1.ResendConfirmationRequest{Uid: "carol"}, "")); err != nil {
		t.Fatal(err)
	}
	second, _ := h.lastMailTo("carol@uni.example.edu")
	if first == second {
		t.Fatal("resend mailed the same token")
	}
	_, err = h.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: first}, ""))
	wantCode(t, err, connect.CodeInvalidArgument)

	if _, err := h.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: second}, "")); err != nil {
		t.Fatal(err)
	}

	// An expired token: presented to a replica whose clock is past the
	// token's 48 hours.
	_, err = h.users.Register(ctx, req(&trellisv1.RegisterRequest{
		Uid: "erin", Email: "erin@uni.example.edu", Password: userPassword,
		Profile: map[string]string{"name": "Erin", "phone": "+1 310 555 0100"},
	}, ""))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := h.lastMailTo("erin@uni.example.edu")
	later := newServer(t, h.srv.Store, func(c *app.Config) { c.Now = func() time.Time { return time.Now().Add(49 * time.Hour) } })
	_, err = later.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: expired}, ""))
	wantCode(t, err, connect.CodeInvalidArgument)
	if v := violations(err); v["token"] != "token.expired" {
		t.Fatalf("violations = %v", v)
	}
}

func TestRevocationReachesOtherReplicas(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			st := openStore(t, kind)
			// Replicas behind one name share the public URL, hence the issuer.
			sameURL := func(c *app.Config) { c.PublicURL = "https://trellis.test" }
			a := newServer(t, st, sameURL)
			b := newServer(t, st, sameURL)
			ctx := context.Background()
			tok := a.newUser("dave")
			// Replica b verifies a's token offline (shared key set).
			who, err := b.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, tok))
			if err != nil {
				t.Fatalf("replica b refused a's token: %v", err)
			}
			// b's feed tells when it passes the revocation on. (Only a
			// revocation records a change of a session.)
			revoked := make(chan struct{})
			var once sync.Once
			b.srv.Feed.On(store.ChangeSession, func(id string) {
				if id == who.Msg.SessionId {
					once.Do(func() { close(revoked) })
				}
			})
			if _, err := a.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, tok)); err != nil {
				t.Fatal(err)
			}
			// Refused at once by a, and by b once its feed, which polls,
			// brought the change.
			_, err = a.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, tok))
			wantCode(t, err, connect.CodeUnauthenticated)
			select {
			case <-revoked:
			case <-time.After(5 * time.Second):
				t.Fatal("replica b's feed did not bring the revocation within 5 s")
			}
			_, err = b.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, tok))
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
}

// TestStrictRevocation: with strict revocation a logout on one replica is
// refused by another from the moment it is acknowledged, however seldom
// that replica polls the change feed; without it the other replica goes on
// accepting the token until its feed brings the change (here, never: it
// polls once an hour).
func TestStrictRevocation(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		for _, strict := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/strict=%v", kind, strict), func(t *testing.T) {
				st := openStore(t, kind)
				cfg := func(c *app.Config) {
					c.PublicURL = "https://trellis.test"
					c.FeedInterval = time.Hour
					c.StrictRevocation = strict
				}
				a := newServer(t, st, cfg)
				b := newServer(t, st, cfg)
				ctx := context.Background()
				tok := a.newUser("dave")
				if _, err := b.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, tok)); err != nil {
					t.Fatalf("replica b refused a's token: %v", err)
				}
				if _, err := a.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, tok)); err != nil {
					t.Fatal(err)
				}
				_, err := b.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, tok))
				if strict {
					wantCode(t, err, connect.CodeUnauthenticated)
				} else if err != nil {
					t.Errorf("without strict revocation b learnt of the logout before its feed polled: %v", err)
				}
			})
		}
	}
}
