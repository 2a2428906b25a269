package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/service"
)

const opBasic = "auth.basic"

// rawCall is one API call made with plain net/http and JSON, as curl makes
// it.
type rawCall struct {
	status int
	header http.Header
	body   map[string]any
}

func (r rawCall) str(k string) string { s, _ := r.body[k].(string); return s }

// rawPost posts body (JSON) to the API path with the given request headers.
func (h *harness) rawPost(path string, headers map[string]string, body string) rawCall {
	h.t.Helper()
	rq, err := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	rq.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		rq.Header.Set(k, v)
	}
	resp, err := h.http.Do(rq)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := rawCall{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out.body); err != nil {
			h.t.Fatalf("%s: answer %q is not JSON: %v", path, b, err)
		}
	}
	return out
}

func basicHeader(uid, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(uid+":"+pw))
}

// whoAmIWith calls Auth/WhoAmI with one header.
func (h *harness) whoAmIWith(name, value string) rawCall {
	h.t.Helper()
	return h.rawPost("/trellis.v1.Auth/WhoAmI", map[string]string{name: value}, "{}")
}

func (h *harness) basicWhoAmI(uid, pw string) rawCall {
	h.t.Helper()
	return h.whoAmIWith("Authorization", basicHeader(uid, pw))
}

// wantRaw checks a call's HTTP status, Connect code and that its message
// says each of words.
func wantRaw(t *testing.T, what string, r rawCall, status int, code string, words ...string) {
	t.Helper()
	if r.status != status || r.str("code") != code {
		t.Fatalf("%s: HTTP %d %v, want %d %q", what, r.status, r.body, status, code)
	}
	// A 401 names the schemes the server takes (RFC 9110).
	if ch := r.header.Get("WWW-Authenticate"); status == http.StatusUnauthorized && !strings.HasPrefix(ch, `Bearer realm="trellis"`) {
		t.Errorf("%s: 401 with WWW-Authenticate %q", what, ch)
	}
	for _, w := range words {
		if !strings.Contains(r.str("message"), w) {
			t.Errorf("%s: message %q does not say %q", what, r.str("message"), w)
		}
	}
}

func wantUID(t *testing.T, what string, r rawCall, uid string) {
	t.Helper()
	if r.status != http.StatusOK || r.str("uid") != uid {
		t.Fatalf("%s: HTTP %d %v, want %s", what, r.status, r.body, uid)
	}
	if r.str("sessionId") != "" {
		t.Errorf("%s: a backend's principal has session %q", what, r.str("sessionId"))
	}
	if b := r.str("backend"); b != "local" && b != "null" {
		t.Errorf("%s: WhoAmI names backend %q", what, b)
	}
}

func TestBasicAuth(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testBasicAuth(t, kind) })
	}
}

func testBasicAuth(t *testing.T, kind storeKind) {
	ctx := context.Background()
	st := openStore(t, kind)
	var logs lockedBuffer
	h := newServer(t, st, func(c *app.Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	other := newServer(t, st) // another replica
	adminTok := h.bootstrapAdmin()
	aliceTok := h.newUser("alice")
	h.newUser("bob")
	h.newUser("carol")
	secrets := []string{userPassword, adminPassword}

	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, header string
		status       int
		code, uid    string
		words        []string
	}{
		{"right password", basicHeader("alice", userPassword), 200, "", "alice", nil},
		{"scheme in lower case", "basic " + b64("alice:"+userPassword), 200, "", "alice", nil},
		{"admin", basicHeader("ops", adminPassword), 200, "", "ops", nil},
		{"wrong password", basicHeader("alice", "not the password at all"), 401, "unauthenticated", "", []string{"invalid uid or password"}},
		{"unknown uid", basicHeader("nosuchuser", userPassword), 401, "unauthenticated", "", []string{"invalid uid or password"}},
		{"not base64", "Basic %%%not-base64", 401, "unauthenticated", "", []string{"malformed Authorization header", "Basic base64(uid:password)"}},
		{"no colon", "Basic " + b64("alice"), 401, "unauthenticated", "", []string{"malformed Authorization header", "curl -u"}},
		{"empty uid", "Basic " + b64(":"+userPassword), 401, "unauthenticated", "", []string{"malformed Authorization header"}},
		{"unknown scheme", "Digest username=alice", 401, "unauthenticated", "", []string{"Bearer <access token>", "Basic base64(uid:password)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.whoAmIWith("Authorization", tt.header)
			if tt.uid != "" {
				wantUID(t, tt.name, r, tt.uid)
				if admin, _ := r.body["admin"].(bool); admin != (tt.uid == "ops") {
					t.Errorf("admin = %v for %s", admin, tt.uid)
				}
				return
			}
			wantRaw(t, tt.name, r, tt.status, tt.code, tt.words...)
			if rest := strings.TrimPrefix(tt.header, "Basic "); strings.Contains(r.str("message"), rest) {
				t.Errorf("message %q repeats the credentials", r.str("message"))
			}
		})
	}
	secrets = append(secrets, "not the password at all")
	// A wrong password and an unknown uid answer alike, and are audited as
	// failed logins.
	if a, b := h.basicWhoAmI("alice", "nope nope nope"), h.basicWhoAmI("nosuchuser", "nope nope nope"); a.str("message") != b.str("message") {
		t.Errorf("wrong password %q and unknown uid %q answer differently", a.str("message"), b.str("message"))
	}
	h.wantAudited(opBasic, "user:alice", "unauthenticated", "bad credentials")
	h.wantAudited(opBasic, "user:nosuchuser", "unauthenticated", "bad credentials")

	// The login back-off holds for HTTP Basic too, even for the right
	// password, and a success ends it.
	for range 5 {
		h.basicWhoAmI("carol", "wrong wrong wrong")
	}
	wantRaw(t, "basic during back-off", h.basicWhoAmI("carol", userPassword), 429, "resource_exhausted", "try again in")

	// A Basic principal has no session: logout says so, and revokes nothing.
	lo := h.rawPost("/trellis.v1.Auth/Logout", map[string]string{"Authorization": basicHeader("alice", userPassword)}, "{}")
	wantRaw(t, "logout with Basic", lo, 400, "failed_precondition", "no session")
	h.whoami(aliceTok, "alice")

	// The other replica remembers alice's password too; a new password
	// makes both forget the old one: this replica at once, the other
	// through the change feed.
	if ch := h.basicWhoAmI("alice", "not the password").header.Get("WWW-Authenticate"); !strings.Contains(ch, `Basic realm="trellis"`) {
		t.Errorf("401 with the local backend on: WWW-Authenticate %q, want Basic named", ch)
	}
	wantUID(t, "basic on the other replica", other.basicWhoAmI("alice", userPassword), "alice")
	wantUID(t, "basic again (remembered)", h.basicWhoAmI("alice", userPassword), "alice")
	const newPW = "through the looking glass"
	secrets = append(secrets, newPW)
	if _, err := h.users.ChangePassword(ctx, req(&trellisv1.ChangePasswordRequest{CurrentPassword: userPassword, NewPassword: newPW}, aliceTok)); err != nil {
		t.Fatal(err)
	}
	wantRaw(t, "old password after the change", h.basicWhoAmI("alice", userPassword), 401, "unauthenticated", "invalid uid or password")
	wantUID(t, "new password", h.basicWhoAmI("alice", newPW), "alice")
	eventually(t, "the other replica forgets the old password", func() error {
		return answers(other.basicWhoAmI("alice", userPassword), http.StatusUnauthorized)
	})

	// A locked account is refused at once, though its password was
	// verified and remembered a moment ago.
	wantUID(t, "bob", h.basicWhoAmI("bob", userPassword), "bob")
	wantUID(t, "bob again", h.basicWhoAmI("bob", userPassword), "bob")
	wantUID(t, "bob on the other replica", other.basicWhoAmI("bob", userPassword), "bob")
	if _, err := h.users.SetUserState(ctx, req(&trellisv1.SetUserStateRequest{Uid: "bob", State: trellisv1.UserState_USER_STATE_LOCKED}, adminTok)); err != nil {
		t.Fatal(err)
	}
	wantRaw(t, "locked bob", h.basicWhoAmI("bob", userPassword), 403, "permission_denied", "locked")
	eventually(t, "the other replica refuses locked bob", func() error {
		return answers(other.basicWhoAmI("bob", userPassword), http.StatusForbidden)
	})
	h.wantAudited(opBasic, "user:bob", "permission_denied", "account state locked")

	// Basic credentials act like any other: a write is audited as alice's.
	up := h.rawPost("/trellis.v1.Users/SetUserProfile", map[string]string{"Authorization": basicHeader("alice", newPW)}, `{"set":{"phone":"+1 310 555 0199"}}`)
	if up.status != http.StatusOK {
		t.Fatalf("SetUserProfile with Basic: %d %v", up.status, up.body)
	}
	found := false
	for _, e := range h.audited("trellis.v1.Users/SetUserProfile") {
		found = found || (e.Actor == "alice" && e.Object == "user:alice" && e.Outcome == "ok")
	}
	if !found {
		t.Errorf("no audit record of alice's profile change: %v", h.audited("trellis.v1.Users/SetUserProfile"))
	}

	// No password reaches the log, an error or the audit record.
	for _, s := range secrets {
		for _, form := range []string{s, b64(s), b64("alice:" + s)} {
			if strings.Contains(logs.String(), form) {
				t.Errorf("log holds a password (%q)", form)
			}
		}
	}
	evs, _, err := h.srv.Service.Accounts.ListAuditEvents(ctx, operator, service.AuditQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		for _, s := range secrets {
			if strings.Contains(e.Detail+e.Object+e.Actor, s) {
				t.Errorf("audit event %+v holds a password", e)
			}
		}
	}
}

// answers returns nil when r has the HTTP status, else an error saying what
// it was (for eventually).
func answers(r rawCall, status int) error {
	if r.status != status {
		return fmt.Errorf("HTTP %d %v, want %d", r.status, r.body, status)
	}
	return nil
}

// TestPasswordLoginDisabled: without the local backend, every password
// login is refused, and says why.
func TestPasswordLoginDisabled(t *testing.T) {
	ctx := context.Background()
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) { c.AuthBackends = []string{app.BackendNull} })
	if _, err := h.srv.Service.Bootstrap(ctx, "ops", "ops@testbed.example.org", adminPassword); err != nil {
		t.Fatal(err)
	}
	const disabled = "password login is disabled on this server"
	_, err := h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: "ops", Password: adminPassword}, ""))
	wantRefused(t, err, connect.CodeFailedPrecondition, disabled)
	_, err = h.auth.RequestChallenge(ctx, req(&trellisv1.RequestChallengeRequest{Uid: "ops"}, ""))
	wantRefused(t, err, connect.CodeFailedPrecondition, disabled)
	_, err = h.auth.ChallengeResponse(ctx, req(&trellisv1.ChallengeResponseRequest{ChallengeId: "abc", Password: adminPassword}, ""))
	wantRefused(t, err, connect.CodeFailedPrecondition, disabled)
	wantRaw(t, "basic", h.basicWhoAmI("ops", adminPassword), 400, "failed_precondition", disabled, "HTTP Basic")
	// Bearer tokens still work, and the null backend is in use.
	wantUID(t, "null", h.whoAmIWith(auth.NullUserHeader, "ops"), "ops")
}

func TestNullBackend(t *testing.T) {
	ctx := context.Background()
	var logs lockedBuffer
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) {
		c.AuthBackends = []string{app.BackendLocal, app.BackendNull}
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	adminTok := h.bootstrapAdmin()
	h.newUser("alice")

	tests := []struct {
		name, uid string
		status    int
		code      string
		words     []string
	}{
		{"admin", "ops", 200, "", nil},
		{"user", "alice", 200, "", nil},
		{"unknown uid", "nosuchuser", 401, "unauthenticated", []string{"no active account"}},
		{"not a uid", "Robert'); DROP", 401, "unauthenticated", []string{auth.NullUserHeader}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.whoAmIWith(auth.NullUserHeader, tt.uid)
			if got := r.header.Get(auth.NullWarningHeader); got != auth.NullWarning {
				t.Errorf("%s = %q", auth.NullWarningHeader, got)
			}
			if tt.status == 200 {
				wantUID(t, tt.name, r, tt.uid)
				if admin, _ := r.body["admin"].(bool); admin != (tt.uid == "ops") {
					t.Errorf("admin = %v", admin)
				}
				return
			}
			wantRaw(t, tt.name, r, tt.status, tt.code, tt.words...)
		})
	}
	// Every response carries the warning, the health check's too.
	resp, err := h.http.Get(h.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(auth.NullWarningHeader) != auth.NullWarning {
		t.Errorf("/healthz has no %s", auth.NullWarningHeader)
	}
	// The start said so, in capitals.
	if !strings.Contains(logs.String(), "level=WARN msg=\"NULL AUTHENTICATION BACKEND ENABLED: ANY CALLER MAY CLAIM ANY UID") {
		t.Errorf("no loud warning in the log:\n%s", logs.String())
	}
	// Basic works beside it, and a locked account is refused under both.
	wantUID(t, "basic beside null", h.basicWhoAmI("alice", userPassword), "alice")
	if _, err := h.users.SetUserState(ctx, req(&trellisv1.SetUserStateRequest{Uid: "alice", State: trellisv1.UserState_USER_STATE_LOCKED}, adminTok)); err != nil {
		t.Fatal(err)
	}
	wantRaw(t, "locked under null", h.whoAmIWith(auth.NullUserHeader, "alice"), 403, "permission_denied", "locked")
	wantRaw(t, "locked under basic", h.basicWhoAmI("alice", userPassword), 403, "permission_denied", "locked")
	lo := h.rawPost("/trellis.v1.Auth/Logout", map[string]string{auth.NullUserHeader: "ops"}, "{}")
	wantRaw(t, "logout under null", lo, 400, "failed_precondition", "null authentication backend", "no session")

	// A server without the null backend says nothing of it, and ignores
	// the header.
	plain := newHarness(t, sqlite)
	r := plain.whoAmIWith(auth.NullUserHeader, "ops")
	if r.header.Get(auth.NullWarningHeader) != "" || r.status != http.StatusUnauthorized {
		t.Errorf("server without null: HTTP %d, warning %q", r.status, r.header.Get(auth.NullWarningHeader))
	}
}

// TestAuthBackendsConfig: unknown names are refused, and the null backend
// runs on loopback only, TLS or not; Build and serve both refuse.
func TestAuthBackendsConfig(t *testing.T) {
	st := openStore(t, sqlite)
	params := password.TestParams()
	tests := []struct {
		name     string
		backends []string
		listen   string
		tls      bool
		want     string // "" for success
	}{
		{"default", nil, "127.0.0.1:0", false, ""},
		{"null on loopback", []string{"null"}, "127.0.0.1:0", false, ""},
		{"null on localhost", []string{"local", "null"}, "localhost:0", false, ""},
		{"null on ::1", []string{"null"}, "[::1]:0", false, ""},
		{"null on every address", []string{"null"}, "0.0.0.0:7700", false, "loopback"},
		{"null on every address with TLS", []string{"local", "null"}, "0.0.0.0:7700", true, "loopback"},
		{"null on a public address with TLS", []string{"null"}, "10.1.2.3:443", true, "loopback"},
		{"null without a port", []string{"null"}, "localhost", false, "--listen"},
		{"unknown", []string{"local", "ldap"}, "127.0.0.1:0", false, `unknown authentication backend "ldap"`},
		{"oidc without its flags", []string{"oidc"}, "127.0.0.1:0", false, "oidc"},
		{"twice", []string{"local", "local"}, "127.0.0.1:0", false, "twice"},
		{"none", []string{}, "127.0.0.1:0", false, "at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := app.Build(ctx, app.Config{Listen: tt.listen, TLSAuto: tt.tls, AuthBackends: tt.backends, PasswordParams: &params, Log: quietLog()}, st)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if got := strings.Join(app.ParseAuthBackends(" local , NULL,"), "|"); got != "local|null" {
		t.Errorf("ParseAuthBackends = %q", got)
	}

	// `trellis serve` refuses before it opens the store.
	for _, args := range [][]string{
		{"--auth-backends", "null", "--listen", "0.0.0.0:7700", "--tls-auto"},
		{"--auth-backends", "local,kerberos"},
		{"--auth-backends", " , "},
	} {
		root, admin := &cobra.Command{Use: "trellis"}, &cobra.Command{Use: "admin"}
		root.AddCommand(admin)
		app.AddCommands(root, admin)
		dir := t.TempDir()
		root.SetArgs(append([]string{"serve", "--data-dir", dir + "/data", "--log-level", "error"}, args...))
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "auth") {
			t.Errorf("serve %v = %v, want a refusal", args, err)
		}
	}
}

// BenchmarkWhoAmIBasic is WhoAmI with HTTP Basic credentials once the
// password is remembered (the first request pays an argon2id run), beside
// the same calls with a Bearer token:
//
//	go test -run '^$' -bench WhoAmIBasic -benchtime 3s ./internal/app/
func BenchmarkWhoAmIBasic(b *testing.B) {
	h := newServer(b, openStore(b, sqlite))
	tok := h.bootstrapAdmin()
	for _, bc := range []struct{ name, header string }{
		{"basic", basicHeader("ops", adminPassword)},
		{"bearer", "Bearer " + tok},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := connect.NewRequest(&trellisv1.WhoAmIRequest{})
					r.Header().Set("Authorization", bc.header)
					if _, err := h.auth.WhoAmI(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
