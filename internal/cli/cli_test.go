package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

func TestLoginSavesCredentials(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := newEnv(t, srv)
	r := e.run(apptest.Password+"\n", "login", "alice", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("login: code %d, stderr %q", r.code, r.err)
	}
	if !strings.HasPrefix(r.out, "Logged in as alice (session expires ") {
		t.Errorf("stdout = %q", r.out)
	}

	fi, err := os.Stat(e.credentialsPath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %v, want 0700", di.Mode().Perm())
	}
	c := e.credentials()
	if c.Server != srv.URL || c.UID != "alice" || c.AccessToken == "" || c.RefreshToken == "" ||
		c.SessionID == "" || !c.AccessTokenExpiresAt.After(time.Now()) || !c.SessionExpiresAt.After(c.AccessTokenExpiresAt) {
		t.Errorf("saved credentials %+v", c)
	}
	// What was saved is the server's session for alice.
	who := must(srv.Clients(c.AccessToken).Auth.WhoAmI(bg, req(&trellisv1.WhoAmIRequest{})))(t)
	if who.GetUid() != "alice" || who.GetSessionId() != c.SessionID {
		t.Errorf("the saved token stands for %q, session %q", who.GetUid(), who.GetSessionId())
	}
	// No temporary files left behind by the atomic write.
	entries, _ := os.ReadDir(e.dir)
	if len(entries) != 1 {
		t.Errorf("config dir holds %d entries, want only the credentials file", len(entries))
	}
	for _, s := range []string{r.out, r.err} {
		if strings.Contains(s, c.AccessToken) || strings.Contains(s, c.RefreshToken) || strings.Contains(s, apptest.Password) {
			t.Errorf("output reveals a secret: %q", s)
		}
	}
}

func TestLoginPasswordInput(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	// The wrong password is bob's alone: failures slow an account's logins
	// down.
	srv.NewUser(t, "bob")
	tests := []struct {
		name, uid, stdin string
		args             []string
		wantCode         int
		wantErr          string
	}{
		{"crlf trimmed", "alice", apptest.Password + "\r\n", []string{"--password-stdin"}, 0, ""},
		{"no final newline", "alice", apptest.Password, []string{"--password-stdin"}, 0, ""},
		{"only first line", "alice", apptest.Password + "\nsomething else\n", []string{"--password-stdin"}, 0, ""},
		{"empty stdin", "alice", "", []string{"--password-stdin"}, 1, "error: no password on standard input\n"},
		{"not a terminal", "alice", apptest.Password + "\n", nil, 1, "use --password-stdin"},
		{"wrong password", "bob", "nope\n", []string{"--password-stdin"}, 1, "error: invalid uid or password\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, srv)
			r := e.run(tt.stdin, append([]string{"login", tt.uid}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.err, tt.wantErr) {
				t.Errorf("code %d stderr %q; want %d containing %q", r.code, r.err, tt.wantCode, tt.wantErr)
			}
			_, err := os.Stat(e.credentialsPath())
			if saved := err == nil; saved != (tt.wantCode == 0) {
				t.Fatalf("credentials saved = %v", saved)
			}
			if tt.wantCode == 0 {
				if got := whoAmI(t, srv, e.credentials().AccessToken); got != tt.uid {
					t.Errorf("the saved token stands for %q", got)
				}
			}
		})
	}
}

// Authenticated calls carry the saved login: the server answers them as the
// logged-in user, and would refuse them without it.
func TestAuthenticatedCalls(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "bob")
	e := as(t, srv, apptest.AdminUID)
	tests := []struct {
		args  []string
		check func(t *testing.T, r result)
	}{
		{[]string{"whoami"}, outHas("ops")},
		{[]string{"user", "show"}, outHas("uid:            ops\n")},
		{[]string{"user", "list"}, outHas("bob ")},
		{[]string{"user", "profile", "bob"}, outHas("Bob Tester")},
		{[]string{"admin", "outbox"}, outHas(apptest.Email("bob"))},
		{[]string{"admin", "audit", "--since", "24h"}, outHas("trellis.v1.Users/Register")},
		{[]string{"admin", "user-state", "bob", "locked"}, func(t *testing.T, r result) {
			u := must(srv.Admin(t).Users.GetUser(bg, req(&trellisv1.GetUserRequest{Uid: "bob"})))(t)
			if u.GetUser().GetState() != trellisv1.UserState_USER_STATE_LOCKED {
				t.Errorf("bob is %v on the server", u.GetUser().GetState())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run("", tt.args...)
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			tt.check(t, r)
		})
	}
	// The same calls without a login are the server's to refuse.
	for _, tt := range tests {
		if r := newEnv(t, srv).run("", tt.args...); r.code != 1 || !strings.Contains(r.err, "not logged in to "+srv.URL) {
			t.Errorf("%q without a login: %+v", tt.args, r)
		}
	}
}

// outHas checks that the output contains want.
func outHas(want string) func(t *testing.T, r result) {
	return func(t *testing.T, r result) {
		t.Helper()
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
}

// Calls that need no credentials send none: the server refuses any call
// that presents a bad token, so a saved token it refuses would fail them.
func TestAnonymousCallsSendNoCredentials(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	e.editCredentials(func(c *credentials) { c.AccessToken, c.RefreshToken = "not-a-token", "" })
	if r := e.run("", "whoami"); r.code != 1 {
		t.Fatalf("the server accepted the bad token: %+v", r)
	}
	if r := e.run("", "version"); r.code != 0 || !strings.Contains(r.out, "server version") {
		t.Errorf("version: %+v", r)
	}
	r := e.run("pw 12345678\n", "user", "register", "--uid", "carol", "--email", "carol@example.org",
		"--name", "Carol", "--phone", "+1 310 555 0100", "--password-stdin")
	if r.code != 0 {
		t.Errorf("register: %+v", r)
	}
	if r := e.run("", "user", "reset-password", "alice"); r.code != 0 || !strings.Contains(r.out, "reset mails per") {
		t.Errorf("reset-password (the answer states the account's limit of reset mail): %+v", r)
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	tests := []struct {
		name        string
		ttl         time.Duration
		wantRefresh bool
	}{
		{"expired", -time.Minute, true},
		{"within leeway", 10 * time.Second, true},
		{"fresh", 10 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := as(t, srv, "alice")
			e.editCredentials(func(c *credentials) { c.AccessTokenExpiresAt = time.Now().Add(tt.ttl) })
			before := e.credentials()
			r := e.run("", "whoami")
			if r.code != 0 || !strings.Contains(r.out, "alice") {
				t.Fatalf("code %d, out %q, stderr %q", r.code, r.out, r.err)
			}
			after := e.credentials()
			if refreshed := after.AccessToken != before.AccessToken; refreshed != tt.wantRefresh {
				t.Errorf("refreshed = %v, want %v", refreshed, tt.wantRefresh)
			}
			if (after.RefreshToken != before.RefreshToken) != tt.wantRefresh {
				t.Errorf("refresh token rotated = %v, want %v", after.RefreshToken != before.RefreshToken, tt.wantRefresh)
			}
			if tt.wantRefresh && !after.AccessTokenExpiresAt.After(time.Now().Add(time.Minute)) {
				t.Errorf("saved expiry %v not renewed", after.AccessTokenExpiresAt)
			}
			if after.SessionID != before.SessionID {
				t.Errorf("session %q became %q", before.SessionID, after.SessionID)
			}
			if got := whoAmI(t, srv, after.AccessToken); got != "alice" {
				t.Errorf("the saved token stands for %q", got)
			}
			if fi, err := os.Stat(e.credentialsPath()); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("credentials after refresh: %v, %v", fi.Mode(), err)
			}
		})
	}
}

// Commands run in parallel (a script with xargs -P) with an expired token
// refresh once: the others wait for the lock and adopt the rotated tokens
// rather than present the spent refresh token, which would make the server
// revoke the session.
func TestConcurrentRefreshSpendsTokenOnce(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	e.editCredentials(func(c *credentials) { c.AccessTokenExpiresAt = time.Now().Add(-time.Minute) })
	const n = 6
	codes := make(chan result, n)
	for range n {
		go func() { codes <- e.run("", "whoami") }()
	}
	for range n {
		if r := <-codes; r.code != 0 {
			t.Errorf("code %d, stderr %q", r.code, r.err)
		}
	}
	// The session lives on: its saved refresh token is the current one.
	c := e.credentials()
	resp := must(srv.Clients("").Auth.Refresh(bg, req(&trellisv1.RefreshRequest{RefreshToken: c.RefreshToken})))(t)
	if got := whoAmI(t, srv, resp.GetTokens().GetAccessToken()); got != "alice" {
		t.Errorf("after the refresh the session stands for %q", got)
	}
}

// A token the server refuses although it looks valid (a rotated key, a
// skewed clock) is refreshed once and the call repeated.
func TestRefreshAfterRefusal(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	e.editCredentials(func(c *credentials) { c.AccessToken = tamper(c.AccessToken) })
	refused := e.credentials().AccessToken
	if got := whoAmI(t, srv, refused); got != "" {
		t.Fatalf("the server accepts the tampered token for %q", got)
	}
	r := e.run("", "user", "show")
	if r.code != 0 || !strings.Contains(r.out, "alice") {
		t.Fatalf("code %d, out %q, stderr %q", r.code, r.out, r.err)
	}
	if got := e.credentials().AccessToken; got == refused || whoAmI(t, srv, got) != "alice" {
		t.Errorf("saved token not renewed")
	}
}

// tamper returns a JWT whose signature no longer matches.
func tamper(jwt string) string {
	i := strings.LastIndexByte(jwt, '.')
	sig := []byte(jwt[i+1:])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	return jwt[:i+1] + string(sig)
}

func TestRefreshRefused(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	// The session ends on the server (logged out elsewhere, say).
	must(e.api().Auth.Logout(bg, req(&trellisv1.LogoutRequest{})))(t)
	e.editCredentials(func(c *credentials) { c.AccessTokenExpiresAt = time.Now().Add(-time.Minute) })
	r := e.run("", "whoami")
	if r.code != 1 || r.err != "error: session expired or revoked: run `trellis login alice` again\n" {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

// TRELLIS_TOKEN is used as is: never refreshed, and preferred to the
// saved login. (Not parallel: it sets the environment.)
func TestTokenEnvOverrides(t *testing.T) {
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	srv.NewUser(t, "robot")
	robot := srv.Login(t, "robot", apptest.Password).GetAccessToken()
	for _, withFile := range []bool{false, true} {
		t.Run(map[bool]string{false: "no file", true: "expired file"}[withFile], func(t *testing.T) {
			e := newEnv(t, srv)
			var before *credentials
			if withFile {
				e.login("alice")
				e.editCredentials(func(c *credentials) { c.AccessTokenExpiresAt = time.Now().Add(-time.Minute) })
				before = e.credentials()
			}
			t.Setenv(EnvToken, robot)
			r := e.run("", "whoami")
			if r.code != 0 || !strings.Contains(r.out, "robot") {
				t.Fatalf("code %d, out %q, err %q", r.code, r.out, r.err)
			}
			if withFile && *e.credentials() != *before {
				t.Errorf("the saved login was refreshed with TRELLIS_TOKEN set")
			}
		})
	}
}

func TestNotLoggedIn(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	e := newEnv(t, srv)
	r := e.run("", "whoami")
	if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to "+srv.URL) {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

// Saved credentials are never sent to a server other than theirs: the
// command fails before it connects, which a server that refuses
// connections shows.
func TestCredentialsBoundToServer(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	other := closedURL(t)
	r := e.run("", "--server", other, "whoami")
	if r.code != 1 || !strings.Contains(r.err, "the saved login is for "+srv.URL+", not "+other) {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

// Without --server or TRELLIS_SERVER, commands go to the server of the login.
func TestServerFromCredentials(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	if r := e.exec("", "--config-dir", e.dir, "whoami"); r.code != 0 || !strings.Contains(r.out, "alice") {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

// With --output json a command prints the server's response: the same
// message the API returns for the same call.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "bob")
	e := as(t, srv, apptest.AdminUID)
	api := srv.Admin(t)
	tests := []struct {
		args []string
		msg  proto.Message
		want func() proto.Message
	}{
		{[]string{"user", "show", "bob"}, &trellisv1.GetUserResponse{},
			func() proto.Message {
				return must(api.Users.GetUser(bg, req(&trellisv1.GetUserRequest{Uid: "bob"})))(t)
			}},
		{[]string{"whoami"}, &trellisv1.WhoAmIResponse{},
			func() proto.Message { return must(e.api().Auth.WhoAmI(bg, req(&trellisv1.WhoAmIRequest{})))(t) }},
		{[]string{"user", "list", "--all"}, &trellisv1.ListUsersResponse{},
			func() proto.Message { return must(api.Users.ListUsers(bg, req(&trellisv1.ListUsersRequest{})))(t) }},
		{[]string{"user", "profile"}, &trellisv1.GetUserProfileResponse{},
			func() proto.Message {
				return must(api.Users.GetUserProfile(bg, req(&trellisv1.GetUserProfileRequest{Uid: "ops"})))(t)
			}},
		{[]string{"user", "describe-profile"}, &trellisv1.GetProfileDescriptionResponse{},
			func() proto.Message {
				return must(api.Users.GetProfileDescription(bg, req(&trellisv1.GetProfileDescriptionRequest{})))(t)
			}},
		{[]string{"admin", "outbox"}, &trellisv1.ListOutboxResponse{},
			func() proto.Message { return must(api.Admin.ListOutbox(bg, req(&trellisv1.ListOutboxRequest{})))(t) }},
		{[]string{"admin", "audit", "--actor", "bob"}, &trellisv1.ListAuditEventsResponse{},
			func() proto.Message {
				return must(api.Admin.ListAuditEvents(bg, req(&trellisv1.ListAuditEventsRequest{Actor: "bob"})))(t)
			}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run("", append([]string{"--output", "json"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			if err := protojson.Unmarshal([]byte(r.out), tt.msg); err != nil {
				t.Fatalf("output is not the response in JSON: %v\n%s", err, r.out)
			}
			if want := tt.want(); !proto.Equal(tt.msg, want) {
				t.Errorf("printed %v\nthe server says %v", tt.msg, want)
			}
		})
	}
}

// JSON output is the same from run to run (protojson alone varies its
// whitespace on purpose), so that scripts and golden files can compare it.
func TestJSONOutputStable(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "bob")
	e := as(t, srv, "bob")
	r := e.run("", "--output", "json", "user", "show", "bob")
	u := must(e.api().Users.GetUser(bg, req(&trellisv1.GetUserRequest{Uid: "bob"})))(t).GetUser()
	want := `{
  "user": {
    "uid": "bob",
    "email": "bob@uni.example.edu",
    "emailVerified": true,
    "state": "USER_STATE_ACTIVE",
    "createdAt": ` + protojson.Format(u.GetCreatedAt()) + `,
    "updatedAt": ` + protojson.Format(u.GetUpdatedAt()) + `
  }
}
`
	if r.out != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.out, want)
	}
	if again := e.run("", "--output", "json", "user", "show", "bob"); again.out != r.out {
		t.Errorf("second run:\n%s\nfirst:\n%s", again.out, r.out)
	}
}

func TestGroupWithoutSubcommandShowsHelp(t *testing.T) {
	t.Parallel()
	r := offline(t).run("", "user")
	if r.code != 0 || !strings.Contains(r.out, "Available Commands") {
		t.Errorf("%+v", r)
	}
}

func TestLoginJSONHidesTokens(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := newEnv(t, srv)
	r := e.run(apptest.Password+"\n", "--output", "json", "login", "alice", "--password-stdin")
	var who trellisv1.WhoAmIResponse
	if r.code != 0 || protojson.Unmarshal([]byte(r.out), &who) != nil || who.GetUid() != "alice" {
		t.Fatalf("login json: %+v", r)
	}
	c := e.credentials()
	if who.GetSessionId() != c.SessionID {
		t.Errorf("printed session %q, saved %q", who.GetSessionId(), c.SessionID)
	}
	if strings.Contains(r.out, c.AccessToken) || strings.Contains(r.out, c.RefreshToken) {
		t.Errorf("json output reveals tokens: %s", r.out)
	}
}

func TestVersionJSON(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	r := newEnv(t, srv).run("", "--output", "json", "version")
	var v struct {
		Client map[string]string `json:"client"`
		Server json.RawMessage   `json:"server"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.out), &v) != nil || v.Client["version"] == "" {
		t.Fatalf("version json: %+v", r)
	}
	var sv trellisv1.GetVersionResponse
	if err := protojson.Unmarshal(v.Server, &sv); err != nil {
		t.Fatalf("server part %s: %v", v.Server, err)
	}
	want := must(srv.Clients("").Info.GetVersion(bg, req(&trellisv1.GetVersionRequest{})))(t)
	if sv.GetVersion() != want.GetVersion() || sv.GetApiVersion() != want.GetApiVersion() || sv.GetGoVersion() != want.GetGoVersion() {
		t.Errorf("server part %v, the server says %v", &sv, want)
	}
}

func TestBadOutputFlag(t *testing.T) {
	t.Parallel()
	r := offline(t).run("", "--output", "yaml", "version")
	if r.code != 1 || !strings.Contains(r.err, `must be "text" or "json"`) || !strings.Contains(r.err, "--help") {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

func TestProfileSet(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	srv.NewUser(t, "bob")
	// alice's URL is set, so that clearing it changes something.
	must(srv.As(t, "alice").Users.SetUserProfile(bg, req(&trellisv1.SetUserProfileRequest{Set: map[string]string{"URL": "https://alice.example.org"}})))(t)
	tests := []struct {
		name      string
		uid, as   string
		args      []string
		wantOut   string
		wantCode  int
		wantAttrs map[string]string // on the server afterwards; "" is unset
	}{
		{
			name:      "one failed",
			uid:       "alice",
			as:        "alice",
			args:      []string{"name=Alice Tester", "phone=call me", "title=Dr, PhD", "--clear", "URL"},
			wantOut:   "name: unchanged\nphone: failed: a telephone number: digits, spaces, and + ( ) . - only, e.g. +1 310 555 0100 (format)\ntitle: changed\nURL: changed\n",
			wantCode:  1,
			wantAttrs: map[string]string{"name": "Alice Tester", "phone": "+1 310 555 0100", "title": "Dr, PhD", "URL": ""},
		},
		{
			name:      "an admin sets another's",
			uid:       "bob",
			as:        apptest.AdminUID,
			args:      []string{"--uid", "bob", "title=Prof"},
			wantOut:   "title: changed\n",
			wantAttrs: map[string]string{"title": "Prof"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := as(t, srv, tt.as)
			r := e.run("", append([]string{"user", "profile", "set"}, tt.args...)...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %d, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut)
			}
			p := must(srv.Admin(t).Users.GetUserProfile(bg, req(&trellisv1.GetUserProfileRequest{Uid: tt.uid})))(t)
			got := map[string]string{}
			for _, a := range p.GetAttributes() {
				got[a.GetName()] = a.GetValue()
			}
			for k, v := range tt.wantAttrs {
				if got[k] != v {
					t.Errorf("%s's %s is %q on the server, want %q", tt.uid, k, got[k], v)
				}
			}
		})
	}
}

func TestProfileSetUsage(t *testing.T) {
	t.Parallel()
	e := offline(t)
	for _, args := range [][]string{{}, {"novalue"}, {"=x"}, {"a=1", "a=2"}} {
		r := e.run("", append([]string{"user", "profile", "set"}, args...)...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: ") || strings.Contains(r.err, "request to") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.err)
		}
	}
}

func TestFieldViolationsPrinted(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	r := newEnv(t, srv).run("pw 12345678\n", "user", "register", "--uid", "Bad!", "--email", "b@example.org",
		"--name", "B", "--phone", "x", "--password-stdin")
	want := "error: the request is not valid\n" +
		"  uid: uid \"Bad!\" is not a valid login name; a uid is 2 to 32 characters: lower-case letters, digits, '_' or '-', starting with a letter or '_' (uid.format)\n" +
		"  profile.phone: a telephone number: digits, spaces, and + ( ) . - only, e.g. +1 310 555 0100 (profile.format)\n"
	if r.code != 1 || r.err != want {
		t.Errorf("code %d, stderr:\n%s\nwant:\n%s", r.code, r.err, want)
	}
}

// A registration through the client, confirmed through the client, is an
// account that logs in with the password given.
func TestRegister(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	e := newEnv(t, srv)
	r := e.run("s3cret pass\n", "user", "register", "--uid", "bob", "--email", "bob@example.org",
		"--name", "Bob Builder", "--phone", "+1 310 555 0100", "--affiliation", "USC",
		"--profile", "title=Dr, PhD", "--password-stdin")
	if r.code != 0 || !strings.Contains(r.out, "confirmation e-mail was sent to bob@example.org") {
		t.Fatalf("%+v", r)
	}
	admin := srv.Admin(t)
	u := must(admin.Users.GetUser(bg, req(&trellisv1.GetUserRequest{Uid: "bob"})))(t).GetUser()
	if u.GetEmail() != "bob@example.org" || u.GetState() != trellisv1.UserState_USER_STATE_PENDING_EMAIL {
		t.Errorf("on the server: %v", u)
	}
	p := must(admin.Users.GetUserProfile(bg, req(&trellisv1.GetUserProfileRequest{Uid: "bob"})))(t)
	got := map[string]string{}
	for _, a := range p.GetAttributes() {
		got[a.GetName()] = a.GetValue()
	}
	for k, v := range map[string]string{"name": "Bob Builder", "phone": "+1 310 555 0100", "affiliation": "USC",
		"title": "Dr, PhD", "email": "bob@example.org"} {
		if got[k] != v {
			t.Errorf("profile %s = %q, want %q", k, got[k], v)
		}
	}

	r = e.run("", "user", "confirm", srv.MailToken(t, "bob@example.org"))
	if r.code != 0 || r.out != "Confirmed bob@example.org for bob (account active).\n" {
		t.Errorf("confirm: %+v", r)
	}
	if got := whoAmI(t, srv, srv.Login(t, "bob", "s3cret pass").GetAccessToken()); got != "bob" {
		t.Errorf("bob's login stands for %q", got)
	}

	r = e.run("pw\n", "user", "register", "--uid", "bob", "--email", "bob@example.org", "--password-stdin")
	if r.code != 1 || !strings.Contains(r.err, `required flag(s) "name", "phone" not set`) {
		t.Errorf("missing flags: %+v", r)
	}
}

func TestPasswd(t *testing.T) {
	t.Parallel()
	const newPassword = "through the looking glass"
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	srv.NewUser(t, "bob")
	tests := []struct {
		name, as, uid, stdin string
		args                 []string
		wantOut              string
	}{
		{"own", "alice", "alice", apptest.Password + "\n" + newPassword + "\n", nil, "Changed your password.\n"},
		{"admin no current", apptest.AdminUID, "bob", newPassword + "\n", []string{"bob", "--no-current"}, "Changed bob's password.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := as(t, srv, tt.as)
			r := e.run(tt.stdin, append([]string{"user", "passwd", "--password-stdin"}, tt.args...)...)
			if r.code != 0 || r.out != tt.wantOut {
				t.Fatalf("%+v", r)
			}
			if got := whoAmI(t, srv, srv.Login(t, tt.uid, newPassword).GetAccessToken()); got != tt.uid {
				t.Errorf("the new password logs in %q", got)
			}
			if _, err := srv.Clients("").Auth.Login(bg, req(&trellisv1.LoginRequest{Uid: tt.uid, Password: apptest.Password})); err == nil {
				t.Error("the old password still logs in")
			}
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	tests := []struct {
		name    string
		revoke  bool // the session is already gone on the server
		wantOut string
	}{
		{"live session", false, "Logged out alice.\n"},
		{"session already gone", true, "Logged out alice.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := as(t, srv, "alice")
			saved := e.credentials()
			if tt.revoke {
				must(e.api().Auth.Logout(bg, req(&trellisv1.LogoutRequest{})))(t)
			}
			r := e.run("", "logout")
			if r.code != 0 || r.out != tt.wantOut {
				t.Fatalf("code %d, out %q, stderr %q", r.code, r.out, r.err)
			}
			if _, err := os.Stat(e.credentialsPath()); err == nil {
				t.Error("credentials kept")
			}
			// The session is over on the server: its refresh token renews
			// nothing.
			if _, err := srv.Clients("").Auth.Refresh(bg, req(&trellisv1.RefreshRequest{RefreshToken: saved.RefreshToken})); err == nil {
				t.Error("the session outlived the logout")
			}
		})
	}
}

func TestLogoutServerUnreachableKeepsCredentials(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	// The saved server now refuses connections.
	gone := closedURL(t)
	e.editCredentials(func(c *credentials) { c.Server = gone })
	r := e.exec("", "--config-dir", e.dir, "logout")
	if r.code != 1 || !strings.Contains(r.err, "request to "+gone+" failed") {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(e.credentialsPath()); err != nil {
		t.Errorf("credentials removed although the session may be open: %v", err)
	}
}

func TestUserListAllFollowsPages(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	for _, u := range []string{"u0", "u1", "u2", "u3"} {
		srv.NewUser(t, u)
	}
	e := as(t, srv, apptest.AdminUID)
	r := e.run("", "user", "list", "--all", "--page-size", "2")
	if r.code != 0 || r.err != "" {
		t.Fatalf("%+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	var uids []string
	for _, l := range lines[1:] {
		uids = append(uids, strings.Fields(l)[0])
	}
	if !strings.HasPrefix(lines[0], "UID ") || !slices.Equal(uids, []string{"ops", "u0", "u1", "u2", "u3"}) {
		t.Errorf("table:\n%s", r.out)
	}
	// Columns line up: EMAIL starts at the same offset on every line.
	col := strings.Index(lines[0], "EMAIL")
	for _, l := range lines[1:] {
		if strings.Index(l, "@") < col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("misaligned row %q", l)
		}
	}

	r = e.run("", "user", "list", "--page-size", "2")
	if r.code != 0 || strings.Count(r.out, "\n") != 3 || !regexp.MustCompile(`--page-token \S+ `).MatchString(r.err) {
		t.Fatalf("one page: %+v", r)
	}
	// The hint's token continues where the page ended.
	tok := regexp.MustCompile(`--page-token (\S+) `).FindStringSubmatch(r.err)[1]
	r = e.run("", "user", "list", "--page-size", "2", "--page-token", tok)
	if r.code != 0 || !strings.Contains(r.out, "\nu1 ") || !strings.Contains(r.out, "\nu2 ") {
		t.Errorf("second page: %+v", r)
	}
}

func TestOutboxText(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, apptest.AdminUID)
	m := must(srv.Admin(t).Admin.ListOutbox(bg, req(&trellisv1.ListOutboxRequest{PageSize: 1})))(t).GetMessages()[0]
	r := e.run("", "admin", "outbox")
	for _, want := range []string{"id:", "to:", apptest.Email("alice"), "subject:", m.GetSubject(), srv.MailToken(t, apptest.Email("alice"))} {
		if !strings.Contains(r.out, want) {
			t.Errorf("outbox missing %q:\n%s", want, r.out)
		}
	}
}

// A mail's body reaches the terminal without control characters, except
// line breaks and tabs. (No mail a real server writes carries any: its
// bodies hold only uids, addresses and tokens, all validated.)
func TestOutboxMessageCleaned(t *testing.T) {
	var b strings.Builder
	err := printOutboxMessage(&b, &trellisv1.OutboxMessage{Id: 7, To: "alice@example.org", Subject: "Hi", Body: "Your token: tok-123\n\x1b[31mno escapes\tplease\n"})
	if err != nil || !strings.Contains(b.String(), "\nYour token: tok-123\n?[31mno escapes\tplease\n") || strings.Contains(b.String(), "\x1b") {
		t.Errorf("printed %q, %v", b.String(), err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"login"},
		{"user", "show", "a", "b"},
		{"user", "list", "--bogus"},
		{"admin", "user-state", "bob", "sleeping"},
		{"admin", "set-admin", "bob", "maybe"},
		{"admin", "audit", "--since", "last tuesday"},
		{"user", "reset-password"},
		{"user", "reset-password", "bob", "--token", "t"},
		{"nosuch"},
		{"user", "lsit"},
		{"admin", "nosuch"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := offline(t).run("", args...)
			if r.code != 1 || !strings.HasPrefix(r.err, "error: ") || !strings.Contains(r.err, "--help' for usage") {
				t.Errorf("code %d, stderr %q", r.code, r.err)
			}
		})
	}
}

func TestExecuteExitCodes(t *testing.T) {
	root := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(&cobra.Command{Use: "deny", RunE: func(*cobra.Command, []string) error { return ExitError{Code: 3} }})
	root.AddCommand(&cobra.Command{Use: "ok", RunE: func(*cobra.Command, []string) error { return nil }})
	for args, want := range map[string]int{"deny": 3, "ok": 0} {
		var out, errb strings.Builder
		root.SetArgs([]string{args})
		if got := Execute(root, Streams{In: strings.NewReader(""), Out: &out, Err: &errb}); got != want || errb.Len() != 0 {
			t.Errorf("%s: exit %d, stderr %q; want %d, silent", args, got, errb.String(), want)
		}
	}
}

func TestAdminCommandIsShared(t *testing.T) {
	root := NewRoot(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	admin := AdminCommand(root)
	if admin.Name() != "admin" {
		t.Fatalf("AdminCommand returned %q", admin.Name())
	}
	admin.AddCommand(&cobra.Command{Use: "bootstrap", Run: func(*cobra.Command, []string) {}})
	if c, _, err := root.Find([]string{"admin", "bootstrap"}); err != nil || c.Name() != "bootstrap" {
		t.Errorf("bootstrap not found under admin: %v", err)
	}
	if c, _, err := root.Find([]string{"admin", "outbox"}); err != nil || c.Name() != "outbox" {
		t.Errorf("outbox lost: %v", err)
	}
	if !root.SilenceErrors || !root.SilenceUsage {
		t.Error("root must leave error printing to Execute")
	}
}

// Every command the client promises exists.
func TestCommandTree(t *testing.T) {
	root := NewRoot(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	for _, path := range []string{
		"login", "logout", "whoami", "version",
		"user register", "user confirm", "user resend-confirmation", "user show", "user list",
		"user profile", "user profile set", "user passwd", "user reset-password", "user describe-profile",
		"admin outbox", "admin audit", "admin user-state", "admin set-admin",
		"user close", "admin user create", "admin user remove", "admin import users",
	} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c.CommandPath() != "trellis "+path {
			t.Errorf("%s: found %q, %v", path, c.CommandPath(), err)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"-1h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestCorruptCredentials(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := newEnv(t, srv)
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, credentialsFileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run("", "whoami"); r.code != 1 || !strings.Contains(r.err, "log in again") {
		t.Errorf("whoami: %+v", r)
	}
	// Login replaces a corrupt file.
	if r := e.run(apptest.Password+"\n", "login", "alice", "--password-stdin"); r.code != 0 {
		t.Errorf("login: %+v", r)
	}
	if got := whoAmI(t, srv, e.credentials().AccessToken); got != "alice" {
		t.Errorf("the saved token stands for %q", got)
	}
}
