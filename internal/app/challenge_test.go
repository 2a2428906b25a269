package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/scram"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

const (
	opRequestChallenge  = "trellis.v1.Auth/RequestChallenge"
	opChallengeResponse = "trellis.v1.Auth/ChallengeResponse"
)

// challenge asks for a challenge of uid and fails the test on error.
func (h *harness) challenge(uid string, types ...string) *trellisv1.RequestChallengeResponse {
	h.t.Helper()
	resp, err := h.auth.RequestChallenge(context.Background(), req(&trellisv1.RequestChallengeRequest{Uid: uid, Types: types}, ""))
	if err != nil {
		h.t.Fatalf("RequestChallenge %s: %v", uid, err)
	}
	return resp.Msg
}

func scramChallenge(t *testing.T, c *trellisv1.RequestChallengeResponse) *scram.Challenge {
	t.Helper()
	sc := c.GetScramArgon2Id()
	if c.GetType() != scram.Type || sc == nil {
		t.Fatalf("challenge of type %q with scram parameters %v", c.GetType(), sc)
	}
	return &scram.Challenge{
		Salt: sc.GetSalt(), ServerNonce: sc.GetServerNonce(),
		Params: password.Params{
			MemoryKiB: sc.GetMemoryKib(), Time: sc.GetTime(), Threads: uint8(sc.GetThreads()),
			SaltLen: uint32(len(sc.GetSalt())), KeyLen: sc.GetKeyLength(),
		},
	}
}

// prove computes the client's answer to a scram challenge of uid with pw.
func prove(t *testing.T, uid, pw string, c *trellisv1.RequestChallengeResponse) (*trellisv1.ChallengeResponseRequest, *scram.Response) {
	t.Helper()
	r, err := scram.Respond(pw, uid, c.GetChallengeId(), scramChallenge(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return &trellisv1.ChallengeResponseRequest{ChallengeId: c.GetChallengeId(), ClientNonce: r.ClientNonce, ClientProof: r.ClientProof}, r
}

func (h *harness) answer(m *trellisv1.ChallengeResponseRequest) (*trellisv1.ChallengeResponseResponse, error) {
	resp, err := h.auth.ChallengeResponse(context.Background(), req(m, ""))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// wantRule checks err's code and that it names field with rule.
func wantRule(t *testing.T, err error, code connect.Code, field, rule string) {
	t.Helper()
	wantCode(t, err, code)
	if got := violations(err)[field]; got != rule {
		t.Fatalf("error %v: field %s rule %q, want %q (violations %v)", err, field, got, rule, violations(err))
	}
}

// whoami checks that an access token names uid.
func (h *harness) whoami(tok, uid string) {
	h.t.Helper()
	resp, err := h.auth.WhoAmI(context.Background(), req(&trellisv1.WhoAmIRequest{}, tok))
	if err != nil || resp.Msg.Uid != uid {
		h.t.Fatalf("WhoAmI = %v, %v; want %s", resp, err, uid)
	}
}

// audited returns the audit events of op, newest first.
func (h *harness) audited(op string) []*trellisv1.AuditEvent {
	h.t.Helper()
	evs, _, err := h.srv.Service.Accounts.ListAuditEvents(context.Background(), operator, service.AuditQuery{Operation: op, PageSize: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]*trellisv1.AuditEvent, len(evs))
	for i, e := range evs {
		out[i] = &trellisv1.AuditEvent{Actor: e.Actor, Operation: e.Operation, Object: e.Object, Outcome: e.Outcome, Detail: e.Detail}
	}
	return out
}

// wantAudited checks that an event of op on object with outcome and detail
// was recorded.
func (h *harness) wantAudited(op, object, outcome, detail string) {
	h.t.Helper()
	for _, e := range h.audited(op) {
		if e.Object == object && e.Outcome == outcome && e.Detail == detail {
			return
		}
	}
	h.t.Errorf("no audit event %s on %s with outcome %s and detail %q; have %v", op, object, outcome, detail, h.audited(op))
}

func TestChallengeLoginScram(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			h.bootstrapAdmin()
			h.newUser("alice")

			// No types: scram-argon2id, the server's preference.
			c := h.challenge("alice")
			if c.Type != scram.Type || c.ChallengeId == "" {
				t.Fatalf("challenge %v", c)
			}
			if until := time.Until(c.ExpiresAt.AsTime()); until < time.Minute+50*time.Second || until > 2*time.Minute+time.Second {
				t.Errorf("challenge valid for %s, want two minutes", until)
			}
			m, r := prove(t, "alice", userPassword, c)
			m.Uid = "alice"
			resp, err := h.answer(m)
			if err != nil {
				t.Fatalf("ChallengeResponse: %v", err)
			}
			// The client checks that the server holds alice's verifier.
			if err := r.VerifyServer(resp.ServerSignature); err != nil {
				t.Fatal(err)
			}
			h.whoami(resp.Tokens.AccessToken, "alice")
			h.wantAudited(opChallengeResponse, "user:alice", "ok", "challenge scram-argon2id")
			h.wantAudited(opRequestChallenge, "user:alice", "ok", "type scram-argon2id")

			// The same answer again: the challenge is used up.
			_, err = h.answer(m)
			wantRule(t, err, connect.CodeUnauthenticated, "challenge_id", "challenge_id.used")
			h.wantAudited(opChallengeResponse, "user:alice", "unauthenticated", "challenge unknown or already answered")

			// The refresh token works as Login's does.
			if _, err := h.auth.Refresh(context.Background(), req(&trellisv1.RefreshRequest{RefreshToken: resp.Tokens.RefreshToken}, "")); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
		})
	}
}

func TestChallengeLoginClear(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	h.newUser("alice")
	c := h.challenge("alice", "kerberos", "clear", scram.Type)
	if c.Type != "clear" || c.ScramArgon2Id != nil {
		t.Fatalf("challenge %v, want clear without parameters", c)
	}
	resp, err := h.answer(&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, Password: userPassword})
	if err != nil {
		t.Fatalf("ChallengeResponse: %v", err)
	}
	if len(resp.ServerSignature) != 0 {
		t.Error("a clear login has a server signature")
	}
	h.whoami(resp.Tokens.AccessToken, "alice")
	h.wantAudited(opChallengeResponse, "user:alice", "ok", "challenge clear")

	// A wrong password answers as Login's does.
	c = h.challenge("alice", "clear")
	_, err = h.answer(&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, Password: "not the password"})
	wantCode(t, err, connect.CodeUnauthenticated)
	_, loginErr := h.auth.Login(context.Background(), req(&trellisv1.LoginRequest{Uid: "alice", Password: "not the password"}, ""))
	if connect.CodeOf(loginErr) != connect.CodeUnauthenticated || err.Error() != loginErr.Error() {
		t.Errorf("clear challenge with a wrong password: %v; Login: %v", err, loginErr)
	}
	h.wantAudited(opChallengeResponse, "user:alice", "unauthenticated", "bad credentials")
}

func TestChallengeExpired(t *testing.T) {
	st := openStore(t, sqlite)
	h := newServer(t, st)
	h.bootstrapAdmin()
	h.newUser("alice")
	// Replicas on the same store whose clocks are ahead.
	at := func(d time.Duration) *harness {
		return newServer(t, st, func(c *app.Config) {
			c.Now = func() time.Time { return time.Now().Add(d) }
			c.PublicURL = h.srv.Service.Config().PublicURL
		})
	}
	nearly, late := at(2*time.Minute-5*time.Second), at(2*time.Minute+time.Second)

	c := h.challenge("alice")
	m, _ := prove(t, "alice", userPassword, c)
	_, err := late.answer(m)
	wantRule(t, err, connect.CodeUnauthenticated, "challenge_id", "challenge_id.expired")
	h.wantAudited(opChallengeResponse, "user:alice", "unauthenticated", "challenge expired")
	// Refused once, it is gone.
	_, err = nearly.answer(m)
	wantRule(t, err, connect.CodeUnauthenticated, "challenge_id", "challenge_id.used")

	// Just inside the two minutes it still works.
	c = h.challenge("alice")
	m, _ = prove(t, "alice", userPassword, c)
	if _, err := nearly.answer(m); err != nil {
		t.Fatalf("answer within two minutes: %v", err)
	}
}

// TestChallengeBoundToUID: a challenge is for the uid it was issued for.
func TestChallengeBoundToUID(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	h.newUser("alice")
	h.newUser("bob")

	// Answering bob's challenge while saying "I am alice".
	cb := h.challenge("bob")
	m, _ := prove(t, "alice", userPassword, cb)
	m.Uid = "alice"
	_, err := h.answer(m)
	wantRule(t, err, connect.CodeUnauthenticated, "uid", "uid.mismatch")
	h.wantAudited(opChallengeResponse, "user:bob", "unauthenticated", "challenge of another uid")

	// A proof computed on alice's challenge, presented with bob's id:
	// it proves nothing about bob, whatever the passwords.
	ca, cb := h.challenge("alice"), h.challenge("bob")
	m, _ = prove(t, "alice", userPassword, ca)
	m.ChallengeId = cb.ChallengeId
	_, err = h.answer(m)
	wantCode(t, err, connect.CodeUnauthenticated)
	if !strings.Contains(err.Error(), "invalid uid or password") {
		t.Errorf("transplanted proof: %v", err)
	}
	h.wantAudited(opChallengeResponse, "user:bob", "unauthenticated", "bad credentials")
	// alice's challenge is still good for alice.
	m, _ = prove(t, "alice", userPassword, ca)
	resp, err := h.answer(m)
	if err != nil {
		t.Fatal(err)
	}
	h.whoami(resp.Tokens.AccessToken, "alice")
}

// TestChallengeUnknownUID: an unknown uid gets a challenge like anyone's, and
// its answer fails exactly as a wrong password does.
func TestChallengeUnknownUID(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	h.newUser("alice")

	mine, ghost, ghost2 := h.challenge("alice"), h.challenge("ghost"), h.challenge("ghost")
	rs, gs, gs2 := mine.ScramArgon2Id, ghost.ScramArgon2Id, ghost2.ScramArgon2Id
	if !bytes.Equal(gs.Salt, gs2.Salt) {
		t.Error("an unknown uid's salt changes from one challenge to the next; a real account's does not")
	}
	if len(gs.Salt) != len(rs.Salt) || gs.MemoryKib != rs.MemoryKib || gs.Time != rs.Time ||
		gs.Threads != rs.Threads || gs.KeyLength != rs.KeyLength || len(gs.ServerNonce) != len(rs.ServerNonce) {
		t.Errorf("an unknown uid's challenge %v differs in shape from a real one %v", gs, rs)
	}
	if rs2 := h.challenge("alice").ScramArgon2Id; !bytes.Equal(rs.Salt, rs2.Salt) || bytes.Equal(rs.ServerNonce, rs2.ServerNonce) {
		t.Error("a real account's salt should stay and its nonce change")
	}

	wrong, _ := prove(t, "alice", "not the password", mine)
	_, wrongErr := h.answer(wrong)
	unknown, _ := prove(t, "ghost", userPassword, ghost)
	_, unknownErr := h.answer(unknown)
	wantCode(t, wrongErr, connect.CodeUnauthenticated)
	wantCode(t, unknownErr, connect.CodeUnauthenticated)
	if wrongErr.Error() != unknownErr.Error() {
		t.Errorf("a wrong proof says %q, an unknown uid %q: they must not differ", wrongErr, unknownErr)
	}
	h.wantAudited(opChallengeResponse, "user:alice", "unauthenticated", "bad credentials")
	h.wantAudited(opChallengeResponse, "user:ghost", "unauthenticated", "bad credentials")
}

// TestChallengeLegacyPassword: an account whose password predates challenge
// logins has no verifier; its first password login creates one.
func TestChallengeLegacyPassword(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	h.newUser("alice")
	ctx := context.Background()
	if err := h.srv.Store.Update(ctx, func(tx store.Tx) error {
		return tx.Users().SetScramVerifier(ctx, "alice", "")
	}); err != nil {
		t.Fatal(err)
	}
	decoy := h.challenge("alice")
	m, _ := prove(t, "alice", userPassword, decoy)
	_, err := h.answer(m)
	wantCode(t, err, connect.CodeUnauthenticated)

	h.login("alice", userPassword) // creates the verifier
	c := h.challenge("alice")
	if bytes.Equal(c.ScramArgon2Id.Salt, decoy.ScramArgon2Id.Salt) {
		t.Error("the verifier's salt is the decoy's")
	}
	m, _ = prove(t, "alice", userPassword, c)
	if _, err := h.answer(m); err != nil {
		t.Fatalf("scram login after the password login: %v", err)
	}
}

// TestChallengePasswordChange: a new password gets a new verifier at once.
func TestChallengePasswordChange(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	tok := h.newUser("alice")
	const next = "curiouser and curiouser"
	if _, err := h.users.ChangePassword(context.Background(), req(&trellisv1.ChangePasswordRequest{CurrentPassword: userPassword, NewPassword: next}, tok)); err != nil {
		t.Fatal(err)
	}
	m, _ := prove(t, "alice", userPassword, h.challenge("alice"))
	_, err := h.answer(m)
	wantCode(t, err, connect.CodeUnauthenticated)
	m, _ = prove(t, "alice", next, h.challenge("alice"))
	if _, err := h.answer(m); err != nil {
		t.Fatalf("scram login with the new password: %v", err)
	}
}

// TestChallengeBackoff: failed answers count as failed logins; requests are
// refused during the back-off; a success resets the count.
func TestChallengeBackoff(t *testing.T) {
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) {
		c.Service.LoginBackoffAfter = 3
		c.Service.LoginBackoffBase = time.Hour
	})
	h.bootstrapAdmin()
	h.newUser("alice")
	fail := func() {
		t.Helper()
		m, _ := prove(t, "alice", "wrong", h.challenge("alice"))
		_, err := h.answer(m)
		wantCode(t, err, connect.CodeUnauthenticated)
	}
	fail()
	fail()
	m, _ := prove(t, "alice", userPassword, h.challenge("alice"))
	if _, err := h.answer(m); err != nil {
		t.Fatal(err)
	}
	// The success reset the count: two more failures are not three.
	fail()
	fail()
	// An answer asked for before the back-off, presented during it, is
	// refused too.
	pending := h.challenge("alice")
	fail()
	_, err := h.auth.RequestChallenge(context.Background(), req(&trellisv1.RequestChallengeRequest{Uid: "alice"}, ""))
	wantCode(t, err, connect.CodeResourceExhausted)
	h.wantAudited(opRequestChallenge, "user:alice", "resource_exhausted", "login back-off")
	m, _ = prove(t, "alice", userPassword, pending)
	_, err = h.answer(m)
	wantCode(t, err, connect.CodeResourceExhausted)
	h.wantAudited(opChallengeResponse, "user:alice", "resource_exhausted", "login back-off")
	// Login shares the back-off.
	_, err = h.auth.Login(context.Background(), req(&trellisv1.LoginRequest{Uid: "alice", Password: userPassword}, ""))
	wantCode(t, err, connect.CodeResourceExhausted)
}

// TestChallengeAnsweredOnce races answers to one challenge: exactly one
// logs in.
func TestChallengeAnsweredOnce(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			h.bootstrapAdmin()
			h.newUser("alice")
			m, _ := prove(t, "alice", userPassword, h.challenge("alice"))
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = h.answer(m) })
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case violations(err)["challenge_id"] != "challenge_id.used":
					t.Errorf("a losing answer: %v", err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d answers logged in, want exactly 1", wins)
			}
		})
	}
}

func TestChallengeBadInput(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	h.newUser("alice")
	ctx := context.Background()
	ask := func(m *trellisv1.RequestChallengeRequest) error {
		_, err := h.auth.RequestChallenge(ctx, req(m, ""))
		return err
	}
	wantRule(t, ask(&trellisv1.RequestChallengeRequest{}), connect.CodeInvalidArgument, "uid", "uid.required")
	wantRule(t, ask(&trellisv1.RequestChallengeRequest{Uid: "Not A Uid"}), connect.CodeInvalidArgument, "uid", "uid.format")
	wantRule(t, ask(&trellisv1.RequestChallengeRequest{Uid: "alice", Types: []string{"kerberos"}}), connect.CodeInvalidArgument, "types", "types.unsupported")

	c := h.challenge("alice")
	good, _ := prove(t, "alice", userPassword, c)
	for name, tc := range map[string]struct {
		m           *trellisv1.ChallengeResponseRequest
		field, rule string
	}{
		"no id":         {&trellisv1.ChallengeResponseRequest{ClientNonce: good.ClientNonce, ClientProof: good.ClientProof}, "challenge_id", "challenge_id.required"},
		"bad id":        {&trellisv1.ChallengeResponseRequest{ChallengeId: "x y", ClientNonce: good.ClientNonce, ClientProof: good.ClientProof}, "challenge_id", "challenge_id.format"},
		"no answer":     {&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId}, "client_proof", "client_proof.required"},
		"both":          {&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, Password: "pw", ClientProof: good.ClientProof}, "password", "password.ambiguous"},
		"short proof":   {&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, ClientNonce: good.ClientNonce, ClientProof: good.ClientProof[:16]}, "client_proof", "client_proof.length"},
		"short nonce":   {&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, ClientNonce: good.ClientNonce[:8], ClientProof: good.ClientProof}, "client_nonce", "client_nonce.length"},
		"missing nonce": {&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, ClientProof: good.ClientProof}, "client_nonce", "client_nonce.length"},
		"bad uid":       {&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, Uid: "Not A Uid", ClientNonce: good.ClientNonce, ClientProof: good.ClientProof}, "uid", "uid.format"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.answer(tc.m)
			wantRule(t, err, connect.CodeInvalidArgument, tc.field, tc.rule)
		})
	}
	// Malformed answers did not use the challenge up.
	if _, err := h.answer(good); err != nil {
		t.Fatalf("the challenge after malformed answers: %v", err)
	}

	// An answer of the wrong type uses the challenge up, and is audited.
	c = h.challenge("alice")
	_, err := h.answer(&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, Password: userPassword})
	wantRule(t, err, connect.CodeInvalidArgument, "client_proof", "client_proof.required")
	h.wantAudited(opChallengeResponse, "user:alice", "invalid_argument", "answer of the wrong type")
	m, _ := prove(t, "alice", userPassword, c)
	_, err = h.answer(m)
	wantRule(t, err, connect.CodeUnauthenticated, "challenge_id", "challenge_id.used")

	c = h.challenge("alice", "clear")
	_, err = h.answer(&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, ClientNonce: good.ClientNonce, ClientProof: good.ClientProof})
	wantRule(t, err, connect.CodeInvalidArgument, "password", "password.required")
}

// TestChallengeSecretsStayOut: neither the password nor the proof reaches
// the audit record or an error.
func TestChallengeSecretsStayOut(t *testing.T) {
	h := newHarness(t, sqlite)
	h.bootstrapAdmin()
	h.newUser("alice")
	var secrets []string
	for _, pw := range []string{userPassword, "a wrong password"} {
		c := h.challenge("alice")
		m, _ := prove(t, "alice", pw, c)
		_, err := h.answer(m)
		secrets = append(secrets, base64.StdEncoding.EncodeToString(m.ClientProof), base64.RawURLEncoding.EncodeToString(m.ClientProof))
		if err != nil {
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %v holds the proof", err)
				}
			}
		}
		c = h.challenge("alice", "clear")
		_, _ = h.answer(&trellisv1.ChallengeResponseRequest{ChallengeId: c.ChallengeId, Password: pw})
		secrets = append(secrets, pw)
	}
	for _, op := range []string{opRequestChallenge, opChallengeResponse} {
		for _, e := range h.audited(op) {
			for _, s := range secrets {
				if strings.Contains(e.Detail+e.Object+e.Actor, s) {
					t.Errorf("audit event %v holds a secret", e)
				}
			}
		}
	}
}
