package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

func TestLoginSavesCredentials(t *testing.T) {
	e := newEnv(t)
	r := e.run(fakePassword+"\n", "login", "alice", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("login: code %d, stderr %q", r.code, r.err)
	}
	if !strings.HasPrefix(r.out, "Logged in as alice (session expires ") {
		t.Errorf("stdout = %q", r.out)
	}
	if got := e.srv.passwords; len(got) != 1 || got[0] != fakePassword {
		t.Errorf("server received passwords %q, want [%q]", got, fakePassword)
	}

	fi, err := os.Stat(filepath.Join(e.dir, credentialsFileName))
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
	if c.Server != e.server || c.UID != "alice" || c.AccessToken != "acc-1" || c.RefreshToken != "ref-1" ||
		c.SessionID != "sess-1" || c.AccessTokenExpiresAt.IsZero() || c.SessionExpiresAt.IsZero() {
		t.Errorf("saved credentials %+v", c)
	}
	// No temporary files left behind by the atomic write.
	entries, _ := os.ReadDir(e.dir)
	if len(entries) != 1 {
		t.Errorf("config dir holds %d entries, want only the credentials file", len(entries))
	}
	for _, s := range []string{r.out, r.err} {
		if strings.Contains(s, "acc-1") || strings.Contains(s, "ref-1") || strings.Contains(s, fakePassword) {
			t.Errorf("output reveals a secret: %q", s)
		}
	}
}

func TestLoginPasswordInput(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		wantCode    int
		wantErr     string
	}{
		{"crlf trimmed", fakePassword + "\r\n", []string{"--password-stdin"}, 0, ""},
		{"no final newline", fakePassword, []string{"--password-stdin"}, 0, ""},
		{"only first line", fakePassword + "\nsomething else\n", []string{"--password-stdin"}, 0, ""},
		{"empty stdin", "", []string{"--password-stdin"}, 1, "error: no password on standard input\n"},
		{"not a terminal", fakePassword + "\n", nil, 1, "use --password-stdin"},
		{"wrong password", "nope\n", []string{"--password-stdin"}, 1, "error: wrong user id or password\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.run(tt.stdin, append([]string{"login", "alice"}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.err, tt.wantErr) {
				t.Errorf("code %d stderr %q; want %d containing %q", r.code, r.err, tt.wantCode, tt.wantErr)
			}
			_, err := os.Stat(filepath.Join(e.dir, credentialsFileName))
			if saved := err == nil; saved != (tt.wantCode == 0) {
				t.Errorf("credentials saved = %v", saved)
			}
		})
	}
}

func TestBearerSentOnAuthenticatedCalls(t *testing.T) {
	tests := []struct {
		args []string
		proc string
	}{
		{[]string{"whoami"}, trellisv1connect.AuthWhoAmIProcedure},
		{[]string{"user", "show"}, trellisv1connect.UsersGetUserProcedure},
		{[]string{"user", "list"}, trellisv1connect.UsersListUsersProcedure},
		{[]string{"user", "profile", "bob"}, trellisv1connect.UsersGetUserProfileProcedure},
		{[]string{"admin", "outbox"}, trellisv1connect.AdminListOutboxProcedure},
		{[]string{"admin", "audit", "--since", "24h"}, trellisv1connect.AdminListAuditEventsProcedure},
		{[]string{"admin", "user-state", "bob", "locked"}, trellisv1connect.UsersSetUserStateProcedure},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := newEnv(t)
			e.login("alice", time.Hour)
			r := e.run("", tt.args...)
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			if got := e.srv.header(tt.proc); got != "Bearer acc-saved" {
				t.Errorf("Authorization = %q", got)
			}
		})
	}
}

func TestAnonymousCallsSendNoCredentials(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	if r := e.run("", "version"); r.code != 0 || !strings.Contains(r.out, "v9.9.9") {
		t.Fatalf("version: %+v", r)
	}
	if got := e.srv.header(trellisv1connect.ApiInfoGetVersionProcedure); got != "" {
		t.Errorf("version sent Authorization %q", got)
	}
}

func TestRefresh(t *testing.T) {
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
			e := newEnv(t)
			e.login("alice", tt.ttl)
			r := e.run("", "whoami")
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			wantAccess, wantRefresh, wantCalls := "acc-saved", "ref-saved", 0
			if tt.wantRefresh {
				wantAccess, wantRefresh, wantCalls = "acc-1", "ref-1", 1
			}
			if e.srv.refreshCalls != wantCalls {
				t.Errorf("refresh calls %d, want %d", e.srv.refreshCalls, wantCalls)
			}
			if got := e.srv.header(trellisv1connect.AuthWhoAmIProcedure); got != "Bearer "+wantAccess {
				t.Errorf("Authorization = %q, want Bearer %s", got, wantAccess)
			}
			c := e.credentials()
			if c.AccessToken != wantAccess || c.RefreshToken != wantRefresh {
				t.Errorf("saved tokens %q/%q, want %q/%q", c.AccessToken, c.RefreshToken, wantAccess, wantRefresh)
			}
			if tt.wantRefresh && !c.AccessTokenExpiresAt.After(time.Now()) {
				t.Errorf("saved expiry %v not renewed", c.AccessTokenExpiresAt)
			}
			if fi, err := os.Stat(filepath.Join(e.dir, credentialsFileName)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("credentials after refresh: %v, %v", fi.Mode(), err)
			}
		})
	}
}

// Commands run in parallel (a script with xargs -P) with an expired token
// refresh once: the others wait for the lock and adopt the rotated tokens
// rather than present the spent refresh token, which would revoke the session.
func TestConcurrentRefreshSpendsTokenOnce(t *testing.T) {
	e := newEnv(t)
	e.login("alice", -time.Minute)
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
	if e.srv.refreshCalls != 1 {
		t.Errorf("refresh calls %d, want 1", e.srv.refreshCalls)
	}
	if c := e.credentials(); c.RefreshToken != "ref-1" {
		t.Errorf("saved refresh token %q", c.RefreshToken)
	}
}

// A token the server refuses although it looks valid (skewed clock) is
// refreshed once and the call repeated.
func TestRefreshAfterRefusal(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	e.srv.mu.Lock()
	delete(e.srv.access, "acc-saved")
	e.srv.mu.Unlock()
	r := e.run("", "user", "show")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.err)
	}
	if e.srv.refreshCalls != 1 || e.credentials().AccessToken != "acc-1" {
		t.Errorf("refresh calls %d, saved %q", e.srv.refreshCalls, e.credentials().AccessToken)
	}
}

func TestRefreshRefused(t *testing.T) {
	e := newEnv(t)
	e.login("alice", -time.Minute)
	e.srv.mu.Lock()
	delete(e.srv.refresh, "ref-saved")
	e.srv.mu.Unlock()
	r := e.run("", "whoami")
	if r.code != 1 || !strings.Contains(r.err, "session expired or revoked: run `trellis login alice` again") {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

func TestTokenEnvOverrides(t *testing.T) {
	for _, withFile := range []bool{false, true} {
		t.Run(map[bool]string{false: "no file", true: "expired file"}[withFile], func(t *testing.T) {
			e := newEnv(t)
			if withFile {
				e.login("alice", -time.Minute)
			}
			e.srv.grant("env-token", "robot")
			t.Setenv(EnvToken, "env-token")
			r := e.run("", "whoami")
			if r.code != 0 || !strings.Contains(r.out, "robot") {
				t.Fatalf("code %d, out %q, err %q", r.code, r.out, r.err)
			}
			if got := e.srv.header(trellisv1connect.AuthWhoAmIProcedure); got != "Bearer env-token" {
				t.Errorf("Authorization = %q", got)
			}
			if e.srv.refreshCalls != 0 {
				t.Errorf("refreshed %d times with TRELLIS_TOKEN set", e.srv.refreshCalls)
			}
		})
	}
}

func TestNotLoggedIn(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "whoami")
	if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to "+e.server) {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

// Saved credentials are never sent to a server other than theirs.
func TestCredentialsBoundToServer(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	other := newFakeServer(t)
	r := e.run("", "--server", other.URL, "whoami")
	if r.code != 1 || !strings.Contains(r.err, "the saved login is for "+e.server) {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
	if got := other.header(trellisv1connect.AuthWhoAmIProcedure); got != "" {
		t.Errorf("sent %q to another server", got)
	}
}

// Without --server or TRELLIS_SERVER, commands go to the server of the login.
func TestServerFromCredentials(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	t.Setenv(EnvServer, "")
	if r := e.run("", "whoami"); r.code != 0 {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

func TestJSONOutput(t *testing.T) {
	tests := []struct {
		args []string
		msg  proto.Message
		ok   func(proto.Message) bool
	}{
		{[]string{"user", "show", "bob"}, &trellisv1.GetUserResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.GetUserResponse).GetUser().GetUid() == "bob" }},
		{[]string{"whoami"}, &trellisv1.WhoAmIResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.WhoAmIResponse).GetUid() == "alice" }},
		{[]string{"user", "list", "--all"}, &trellisv1.ListUsersResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListUsersResponse).GetUsers()) == 5 }},
		{[]string{"user", "profile"}, &trellisv1.GetUserProfileResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.GetUserProfileResponse).GetAttributes()) == 2 }},
		{[]string{"user", "describe-profile"}, &trellisv1.GetProfileDescriptionResponse{},
			func(m proto.Message) bool {
				return len(m.(*trellisv1.GetProfileDescriptionResponse).GetAttributes()) == 2
			}},
		{[]string{"admin", "outbox"}, &trellisv1.ListOutboxResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.ListOutboxResponse).GetMessages()[0].GetId() == 7 }},
		{[]string{"admin", "audit", "--actor", "alice"}, &trellisv1.ListAuditEventsResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.ListAuditEventsResponse).GetEvents()[0].GetActor() == "alice"
			}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := newEnv(t)
			e.login("alice", time.Hour)
			r := e.run("", append([]string{"--output", "json"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			if err := protojson.Unmarshal([]byte(r.out), tt.msg); err != nil {
				t.Fatalf("output is not the response in JSON: %v\n%s", err, r.out)
			}
			if !tt.ok(tt.msg) {
				t.Errorf("unexpected content: %s", r.out)
			}
		})
	}
}

// JSON output is the same from run to run (protojson alone varies its
// whitespace on purpose), so that scripts and golden files can compare it.
func TestJSONOutputStable(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	r := e.run("", "--output", "json", "user", "show", "bob")
	want := `{
  "user": {
    "uid": "bob",
    "email": "bob@example.org",
    "emailVerified": true,
    "state": "USER_STATE_ACTIVE",
    "createdAt": "2026-01-02T03:04:05Z"
  }
}
`
	if r.out != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.out, want)
	}
}

func TestGroupWithoutSubcommandShowsHelp(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "user")
	if r.code != 0 || !strings.Contains(r.out, "Available Commands") {
		t.Errorf("%+v", r)
	}
}

func TestLoginJSONHidesTokens(t *testing.T) {
	e := newEnv(t)
	r := e.run(fakePassword+"\n", "--output", "json", "login", "alice", "--password-stdin")
	var who trellisv1.WhoAmIResponse
	if r.code != 0 || protojson.Unmarshal([]byte(r.out), &who) != nil || who.GetUid() != "alice" {
		t.Fatalf("login json: %+v", r)
	}
	if strings.Contains(r.out, "acc-1") || strings.Contains(r.out, "ref-1") {
		t.Errorf("json output reveals tokens: %s", r.out)
	}
}

func TestVersionJSON(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "--output", "json", "version")
	var v struct {
		Client map[string]string `json:"client"`
		Server json.RawMessage   `json:"server"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.out), &v) != nil || v.Client["version"] == "" {
		t.Fatalf("version json: %+v", r)
	}
	var sv trellisv1.GetVersionResponse
	if err := protojson.Unmarshal(v.Server, &sv); err != nil || sv.GetVersion() != "v9.9.9" {
		t.Errorf("server part %s: %v", v.Server, err)
	}
}

func TestBadOutputFlag(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "--output", "yaml", "version")
	if r.code != 1 || !strings.Contains(r.err, `must be "text" or "json"`) || !strings.Contains(r.err, "--help") {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
}

func TestProfileSet(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantOut  string
		wantCode int
	}{
		{
			name:     "one failed",
			args:     []string{"name=Alice Liddell", "phone=call me", "title=Dr, PhD", "--clear", "URL"},
			wantOut:  "name: unchanged\nphone: failed: a telephone number (format)\ntitle: changed\nURL: changed\n",
			wantCode: 1,
		},
		{
			name:     "all applied",
			args:     []string{"--uid", "bob", "title=Prof"},
			wantOut:  "title: changed\n",
			wantCode: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.login("alice", time.Hour)
			r := e.run("", append([]string{"user", "profile", "set"}, tt.args...)...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %d, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut)
			}
		})
	}

	e := newEnv(t)
	e.login("alice", time.Hour)
	e.run("", "user", "profile", "set", "--uid", "bob", "title=Dr, PhD", "--clear", "URL")
	got := e.srv.setProfile[0]
	if got.GetUid() != "bob" || got.GetSet()["title"] != "Dr, PhD" || len(got.GetClear()) != 1 || got.GetClear()[0] != "URL" {
		t.Errorf("request %v", got)
	}
}

func TestProfileSetUsage(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	for _, args := range [][]string{{}, {"novalue"}, {"=x"}, {"a=1", "a=2"}} {
		r := e.run("", append([]string{"user", "profile", "set"}, args...)...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: ") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.err)
		}
	}
}

func TestFieldViolationsPrinted(t *testing.T) {
	e := newEnv(t)
	r := e.run("pw\n", "user", "register", "--uid", "Bad!", "--email", "b@example.org",
		"--name", "B", "--phone", "x", "--password-stdin")
	want := "error: the request is not valid\n" +
		"  uid: lower-case letters, digits and _ only (uid.format)\n" +
		"  profile.phone: a telephone number (profile.format)\n"
	if r.code != 1 || r.err != want {
		t.Errorf("code %d, stderr:\n%s\nwant:\n%s", r.code, r.err, want)
	}
}

func TestRegister(t *testing.T) {
	e := newEnv(t)
	r := e.run("s3cret pass\n", "user", "register", "--uid", "bob", "--email", "bob@example.org",
		"--name", "Bob Builder", "--phone", "+1 310 555 0100", "--affiliation", "USC",
		"--profile", "title=Dr, PhD", "--password-stdin")
	if r.code != 0 || !strings.Contains(r.out, "confirmation e-mail was sent to bob@example.org") {
		t.Fatalf("%+v", r)
	}
	got := e.srv.registered[0]
	want := map[string]string{"name": "Bob Builder", "phone": "+1 310 555 0100", "affiliation": "USC",
		"title": "Dr, PhD", "email": "bob@example.org"}
	if got.GetUid() != "bob" || got.GetEmail() != "bob@example.org" || got.GetPassword() != "s3cret pass" {
		t.Errorf("request %v", got)
	}
	for k, v := range want {
		if got.GetProfile()[k] != v {
			t.Errorf("profile[%s] = %q, want %q", k, got.GetProfile()[k], v)
		}
	}

	r = e.run("pw\n", "user", "register", "--uid", "bob", "--email", "bob@example.org", "--password-stdin")
	if r.code != 1 || !strings.Contains(r.err, `required flag(s) "name", "phone" not set`) {
		t.Errorf("missing flags: %+v", r)
	}
}

func TestPasswd(t *testing.T) {
	tests := []struct {
		name, stdin      string
		args             []string
		wantUID, wantCur string
		wantNew          string
	}{
		{"own", "old pw\nnew pw\n", nil, "", "old pw", "new pw"},
		{"admin no current", "new pw\n", []string{"bob", "--no-current"}, "bob", "", "new pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.login("alice", time.Hour)
			r := e.run(tt.stdin, append([]string{"user", "passwd", "--password-stdin"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("%+v", r)
			}
			got := e.srv.changePW[0]
			if got.GetUid() != tt.wantUID || got.GetCurrentPassword() != tt.wantCur || got.GetNewPassword() != tt.wantNew {
				t.Errorf("request %v", got)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name       string
		revoke     bool // the session is already gone on the server
		wantCalls  int
		wantCode   int
		wantRemove bool
	}{
		{"live session", false, 1, 0, true},
		{"session already gone", true, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.login("alice", time.Hour)
			if tt.revoke {
				e.srv.mu.Lock()
				clear(e.srv.access)
				clear(e.srv.refresh)
				e.srv.mu.Unlock()
			}
			r := e.run("", "logout")
			if r.code != tt.wantCode {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			if e.srv.logoutCalls != tt.wantCalls {
				t.Errorf("logout calls %d, want %d", e.srv.logoutCalls, tt.wantCalls)
			}
			if tt.wantCalls > 0 && e.srv.header(trellisv1connect.AuthLogoutProcedure) != "Bearer acc-saved" {
				t.Errorf("logout sent %q", e.srv.header(trellisv1connect.AuthLogoutProcedure))
			}
			_, err := os.Stat(filepath.Join(e.dir, credentialsFileName))
			if removed := err != nil; removed != tt.wantRemove {
				t.Errorf("credentials removed = %v (%v)", removed, err)
			}
		})
	}
}

func TestLogoutServerUnreachableKeepsCredentials(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	// Rewrite the saved server to one that refuses connections.
	c := e.credentials()
	c.Server = "http://127.0.0.1:1"
	if err := (credStore{dir: e.dir}).save(c); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvServer, "")
	r := e.run("", "logout")
	if r.code != 1 || !strings.Contains(r.err, "request to http://127.0.0.1:1 failed") {
		t.Errorf("code %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, credentialsFileName)); err != nil {
		t.Errorf("credentials removed although the session may be open: %v", err)
	}
}

func TestUserListAllFollowsPages(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	r := e.run("", "user", "list", "--all")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "UID ") || !strings.HasPrefix(lines[5], "u4 ") {
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
	if r.code != 0 || strings.Count(r.out, "\n") != 3 || !strings.Contains(r.err, "--page-token p2") {
		t.Errorf("one page: %+v", r)
	}
}

func TestOutboxText(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	r := e.run("", "admin", "outbox")
	for _, want := range []string{"id:", "7", "to:", "alice@example.org", "subject:", "Confirm your e-mail", "Your token: tok-123\n"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("outbox missing %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "\x1b") {
		t.Errorf("terminal escape passed through: %q", r.out)
	}
}

func TestUsageErrors(t *testing.T) {
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
			e := newEnv(t)
			r := e.run("", args...)
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
	e := newEnv(t)
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
	if r := e.run(fakePassword+"\n", "login", "alice", "--password-stdin"); r.code != 0 {
		t.Errorf("login: %+v", r)
	}
	if c := e.credentials(); c.AccessToken != "acc-1" {
		t.Errorf("saved %+v", c)
	}
}
