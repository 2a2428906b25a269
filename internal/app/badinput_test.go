package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/store"
)

func TestRegisterBadInput(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	h.bootstrapAdmin() // the operator reads what was left behind
	h.newUser("taken")
	good := func() *trellisv1.RegisterRequest {
		return &trellisv1.RegisterRequest{
			Uid: "newbie", Email: "newbie@uni.example.edu", Password: "a perfectly fine passphrase",
			Profile: map[string]string{"name": "New Bie", "phone": "+1 310 555 0100"},
		}
	}
	tests := []struct {
		name   string
		mutate func(*trellisv1.RegisterRequest)
		code   connect.Code
		field  string
		rule   string
	}{
		{"duplicate uid", func(r *trellisv1.RegisterRequest) { r.Uid = "taken" }, connect.CodeAlreadyExists, "", ""},
		{"duplicate email, other case", func(r *trellisv1.RegisterRequest) { r.Email = "TAKEN@uni.example.edu" }, connect.CodeAlreadyExists, "", ""},
		{"invalid uid", func(r *trellisv1.RegisterRequest) { r.Uid = "New Bie" }, connect.CodeInvalidArgument, "uid", "uid.format"},
		{"short uid", func(r *trellisv1.RegisterRequest) { r.Uid = "n" }, connect.CodeInvalidArgument, "uid", "uid.length"},
		{"invalid email", func(r *trellisv1.RegisterRequest) { r.Email = "newbie-at-uni" }, connect.CodeInvalidArgument, "email", "email.format"},
		{"weak password: short", func(r *trellisv1.RegisterRequest) { r.Password = "short" }, connect.CodeInvalidArgument, "password", "password.too_short"},
		{"weak password: common", func(r *trellisv1.RegisterRequest) { r.Password = "password123" }, connect.CodeInvalidArgument, "password", "password.common"},
		{"weak password: uid", func(r *trellisv1.RegisterRequest) { r.Password = "newbie-newbie-2026" }, connect.CodeInvalidArgument, "password", "password.contains_uid"},
		{"unknown attribute", func(r *trellisv1.RegisterRequest) { r.Profile["favourite_colour"] = "blue" }, connect.CodeInvalidArgument, "profile.favourite_colour", "profile.unknown"},
		{"read-only attribute", func(r *trellisv1.RegisterRequest) { r.Profile["uid"] = "someone" }, connect.CodeInvalidArgument, "profile.uid", "profile.read_only"},
		{"bad format", func(r *trellisv1.RegisterRequest) { r.Profile["phone"] = "call me maybe" }, connect.CodeInvalidArgument, "profile.phone", "profile.format"},
		{"missing required attribute", func(r *trellisv1.RegisterRequest) { delete(r.Profile, "name") }, connect.CodeInvalidArgument, "profile.name", "profile.required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.mutate(r)
			_, err := h.users.Register(ctx, req(r, ""))
			wantCode(t, err, tt.code)
			if tt.field != "" {
				if got := violations(err)[tt.field]; got != tt.rule {
					t.Fatalf("violation on %s = %q, want %q (all %v)", tt.field, got, tt.rule, violations(err))
				}
				if !strings.Contains(err.Error(), tt.field) {
					t.Fatalf("message %q does not name the field", err)
				}
			}
			if strings.Contains(err.Error(), r.Password) {
				t.Fatal("error echoes the password")
			}
		})
	}
	// Nothing half-written: the refused registrations left no account and
	// no mail behind.
	users, _, err := h.srv.Service.Accounts.ListUsers(ctx, operator, "newbie", 10, "")
	if err != nil || len(users) != 0 {
		t.Fatalf("refused registrations left %v (%v)", users, err)
	}
	mail, _, err := h.srv.Service.Accounts.ListOutbox(ctx, operator, "newbie@uni.example.edu", 10, "")
	if err != nil || len(mail) != 0 {
		t.Fatalf("refused registrations mailed %d messages", len(mail))
	}
	// Several violations are reported together.
	_, err = h.users.Register(ctx, req(&trellisv1.RegisterRequest{Uid: "X", Email: "nope", Password: "x"}, ""))
	v := violations(err)
	for _, f := range []string{"uid", "email", "password", "profile.name", "profile.phone"} {
		if v[f] == "" {
			t.Errorf("no violation reported for %s (all %v)", f, v)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	h := newHarness(t, sqlite)
	post := func(contentType string, body []byte) (int, string) {
		r, _ := http.NewRequest(http.MethodPost, h.url+"/trellis.v1.Auth/Login", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		resp, err := h.http.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	tests := []struct {
		name        string
		contentType string
		body        []byte
		code        string
	}{
		{"malformed JSON", "application/json", []byte(`{"uid": "alice", `), `"code":"invalid_argument"`},
		{"wrong JSON type", "application/json", []byte(`{"uid": 42}`), `"code":"invalid_argument"`},
		{"malformed protobuf", "application/proto", []byte{0xff, 0xff, 0xff, 0x0f}, `"code":"invalid_argument"`},
		{"oversized body", "application/json", []byte(`{"uid":"` + strings.Repeat("a", 17<<20) + `"}`), `"code":"resource_exhausted"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.contentType, tt.body)
			if status == http.StatusOK || !strings.Contains(body, tt.code) {
				t.Fatalf("status %d body %.200s, want %s", status, body, tt.code)
			}
		})
	}
}

type foreignKey struct {
	kid  string
	priv ed25519.PrivateKey
}

func (f foreignKey) Signer() (string, ed25519.PrivateKey) { return f.kid, f.priv }

func TestBadTokens(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	tok := h.newUser("frank")
	who, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, tok))
	if err != nil {
		t.Fatal(err)
	}
	iss := h.srv.Service.Config().Issuer
	claims := func(exp time.Time) token.Claims {
		return token.Claims{
			Issuer: iss, Subject: "frank", Audience: []string{"trellis"}, SessionID: who.Msg.SessionId,
			ID: "x", IssuedAt: exp.Add(-time.Hour), NotBefore: exp.Add(-time.Hour), Expiry: exp,
		}
	}
	expired, err := token.Sign(h.srv.Keys, claims(time.Now().Add(-time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	unknownKey, err := token.Sign(foreignKey{kid: "not-ours", priv: priv}, claims(time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	payload := []byte(parts[1])
	payload[len(payload)/2] ^= 1
	tampered := parts[0] + "." + string(payload) + "." + parts[2]
	wrongAud := claims(time.Now().Add(time.Hour))
	wrongAud.Audience = []string{"someone-else"}
	otherAud, _ := token.Sign(h.srv.Keys, wrongAud)

	tests := []struct {
		name, header, want string
	}{
		{"no credentials", "", "credentials"},
		{"not bearer", `Digest username="frank"`, "Bearer"},
		// HTTP Basic is the local backend's (see backends_test.go).
		{"basic, unknown uid", "Basic Zm9vOmJhcg==", "invalid uid or password"},
		{"expired", "Bearer " + expired, "expired"},
		{"tampered", "Bearer " + tampered, ""},
		{"unknown key", "Bearer " + unknownKey, "unknown key"},
		{"other audience", "Bearer " + otherAud, "audience"},
		{"garbage", "Bearer a.b.c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := connect.NewRequest(&trellisv1.WhoAmIRequest{})
			if tt.header != "" {
				r.Header().Set("Authorization", tt.header)
			}
			_, err := h.auth.WhoAmI(ctx, r)
			wantCode(t, err, connect.CodeUnauthenticated)
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(tt.header, "Bearer ")) && tt.header != "" {
				t.Fatal("error echoes the credential")
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	h.newUser("grace")
	login := func(uid, pw string) error {
		_, err := h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: uid, Password: pw}, ""))
		return err
	}
	errWrong := login("grace", "not her password at all")
	errUnknown := login("no-such-user", "not her password at all")
	wantCode(t, errWrong, connect.CodeUnauthenticated)
	wantCode(t, errUnknown, connect.CodeUnauthenticated)
	if errWrong.Error() != errUnknown.Error() {
		t.Fatalf("wrong password %q and unknown uid %q answer differently", errWrong, errUnknown)
	}
	// After repeated failures the account cools down, even for the right
	// password, and says for how long.
	for range 5 {
		_ = login("grace", "still not her password")
	}
	err := login("grace", userPassword)
	wantCode(t, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), "try again in") {
		t.Fatalf("back-off error %q does not say when", err)
	}
	// The failures are audited.
	var failures int
	if err := h.srv.Store.View(ctx, func(tx store.Tx) error {
		evs, err := tx.Audit().List(ctx, store.AuditFilter{Object: "user:grace", Operation: "trellis.v1.Auth/Login"})
		for _, e := range evs {
			if e.Outcome != "ok" {
				failures++
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if failures < 6 {
		t.Fatalf("audited %d refused logins, want at least 6", failures)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	h := newHarness(t, sqlite)
	for path, want := range map[string]string{
		"/healthz":               "ok",
		"/readyz":                "ready",
		"/.well-known/jwks.json": `"crv":"Ed25519"`,
		"/metrics":               "go_goroutines",
	} {
		resp, err := h.http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), want) {
			t.Errorf("%s: %d %.200s", path, resp.StatusCode, b.String())
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
	}
	// Calls are counted by operation and code.
	h.call(t, "trellis.v1.Auth/WhoAmI", "{}", "")
	resp, _ := h.http.Get(h.url + "/metrics")
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(b.String(), `trellis_rpc_requests_total{code="unauthenticated",operation="trellis.v1.Auth/WhoAmI"} 1`) {
		t.Errorf("metrics lack the WhoAmI call:\n%s", grepLines(b.String(), "trellis_rpc"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
