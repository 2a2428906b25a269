package cli

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

// loggedIn is a test environment with alice logged in.
func loggedIn(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.login("alice", time.Hour)
	return e
}

// lastRequest returns the last request the fake received for proc, as T.
func lastRequest[T proto.Message](t *testing.T, e *env, proc string) T {
	t.Helper()
	m, ok := e.srv.social.last(proc).(T)
	if !ok {
		t.Fatalf("no %s request received", proc)
	}
	return m
}

func TestProjectRequestAndApprove(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantOut     string
		wantVetting bool
	}{
		{
			name:    "exists at once",
			args:    []string{"project", "request", "lab", "--description", "Networking lab"},
			wantOut: "Created project lab: it exists now, owned by alice.\n",
		},
		{
			name:        "vetting waits",
			args:        []string{"project", "request", "lab", "--description", "Networking lab", "--vetting"},
			wantOut:     "Requested project lab: it waits for an admin's approval (request req-lab).\n",
			wantVetting: true,
		},
		{
			name:    "server requires vetting",
			args:    []string{"project", "request", "vlab", "--description", "Networking lab"},
			wantOut: "Requested project vlab: it waits for an admin's approval (request req-vlab).\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != 0 || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want out %q", r.code, r.out, r.err, tt.wantOut)
			}
			got := lastRequest[*trellisv1.RequestProjectRequest](t, e, trellisv1connect.ProjectsRequestProjectProcedure)
			if got.GetName() != tt.args[2] || got.GetDescription() != "Networking lab" || got.GetVetting() != tt.wantVetting {
				t.Errorf("request %v", got)
			}
		})
	}

	e := loggedIn(t)
	if r := e.run("", "project", "approve", "lab"); r.code != 0 || r.out != "Approved project lab (owner carol).\n" {
		t.Errorf("approve: %+v", r)
	}
	if r := e.run("", "project", "approve", "nosuch"); r.code != 1 || r.err != "error: project nosuch not found\n" {
		t.Errorf("approve nosuch: %+v", r)
	}
	if r := e.run("", "project", "reject", "lab", "--reason", "not a research project"); r.code != 0 || r.out != "Rejected project lab.\n" {
		t.Errorf("reject: %+v", r)
	}
	rej := lastRequest[*trellisv1.RejectProjectRequest](t, e, trellisv1connect.ProjectsRejectProjectProcedure)
	if rej.GetName() != "lab" || rej.GetReason() != "not a research project" {
		t.Errorf("reject request %v", rej)
	}
	if r := e.run("", "project", "request", "lab"); r.code != 1 || !strings.Contains(r.err, `"description" not set`) {
		t.Errorf("request without description: %+v", r)
	}
}

func TestMemberBatchOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		proc       string
		wantOut    string
		wantCode   int
		wantUIDs   []string
		wantRights []string
	}{
		{
			name:       "project add all fine",
			args:       []string{"project", "add", "lab", "bob", "carol", "--rights", "add_user,realize_experiment"},
			proc:       trellisv1connect.ProjectsAddUsersProcedure,
			wantOut:    "bob: requested (request req-bob)\ncarol: added\n",
			wantUIDs:   []string{"bob", "carol"},
			wantRights: []string{"add_user", "realize_experiment"},
		},
		{
			name:       "project add one failed",
			args:       []string{"project", "add", "lab", "bob", "ghost", "carol"},
			proc:       trellisv1connect.ProjectsAddUsersProcedure,
			wantOut:    "bob: requested (request req-bob)\nghost: failed: no such user\ncarol: added\n",
			wantCode:   1,
			wantUIDs:   []string{"bob", "ghost", "carol"},
			wantRights: []string{},
		},
		{
			name:       "repeated rights flags",
			args:       []string{"project", "add", "lab", "bob", "--rights", "add_user", "--rights", "remove_user, realize_experiment"},
			proc:       trellisv1connect.ProjectsAddUsersProcedure,
			wantOut:    "bob: requested (request req-bob)\n",
			wantUIDs:   []string{"bob"},
			wantRights: []string{"add_user", "remove_user", "realize_experiment"},
		},
		{
			name:     "project remove owner fails",
			args:     []string{"project", "remove", "lab", "alice", "bob"},
			proc:     trellisv1connect.ProjectsRemoveUsersProcedure,
			wantOut:  "alice: failed: the owner cannot be removed\nbob: removed\n",
			wantCode: 1,
			wantUIDs: []string{"alice", "bob"},
		},
		{
			name:       "circle add",
			args:       []string{"circle", "add", "alice:friends", "ghost", "bob", "--rights", "add_user"},
			proc:       trellisv1connect.CirclesAddUsersProcedure,
			wantOut:    "ghost: failed: no such user\nbob: requested (request req-bob)\n",
			wantCode:   1,
			wantUIDs:   []string{"ghost", "bob"},
			wantRights: []string{"add_user"},
		},
		{
			name:     "circle remove",
			args:     []string{"circle", "remove", "alice:friends", "bob"},
			proc:     trellisv1connect.CirclesRemoveUsersProcedure,
			wantOut:  "bob: removed\n",
			wantUIDs: []string{"bob"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			// A failure is reported in its line, not again on stderr.
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %d, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut)
			}
			var uids, rights []string
			switch m := e.srv.social.last(tt.proc).(type) {
			case *trellisv1.ProjectsAddUsersRequest:
				uids, rights = m.GetUids(), m.GetRights()
			case *trellisv1.CirclesAddUsersRequest:
				uids, rights = m.GetUids(), m.GetRights()
			case *trellisv1.ProjectsRemoveUsersRequest:
				uids = m.GetUids()
			case *trellisv1.CirclesRemoveUsersRequest:
				uids = m.GetUids()
			default:
				t.Fatalf("no request: %T", m)
			}
			if !slices.Equal(uids, tt.wantUIDs) || !slices.Equal(rights, tt.wantRights) {
				t.Errorf("sent uids %q rights %q; want %q %q", uids, rights, tt.wantUIDs, tt.wantRights)
			}
		})
	}
}

// With --output json, a batch prints the response and still exits 1 when a
// user failed.
func TestMemberBatchJSONExitCode(t *testing.T) {
	e := loggedIn(t)
	r := e.run("", "--output", "json", "project", "add", "lab", "ghost", "bob")
	var resp trellisv1.ProjectsAddUsersResponse
	if r.code != 1 || protojson.Unmarshal([]byte(r.out), &resp) != nil || len(resp.GetOutcomes()) != 2 {
		t.Errorf("%+v", r)
	}
}

func TestParseRights(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"add_user", []string{"add_user"}},
		{"add_user,realize_experiment", []string{"add_user", "realize_experiment"}},
		{" add_user , remove_user ,", []string{"add_user", "remove_user"}},
		{",,", []string{}},
		{"bogus", []string{"bogus"}}, // the server judges names
	}
	for _, tt := range tests {
		if got := parseRights(tt.in); !slices.Equal(got, tt.want) || got == nil {
			t.Errorf("parseRights(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestChangeRights(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantRights []string
		wantCode   int
		wantOut    string
		wantErr    string
	}{
		{
			name:       "project list",
			args:       []string{"project", "rights", "lab", "bob", "add_user, realize_experiment"},
			wantRights: []string{"add_user", "realize_experiment"},
			wantOut:    "Rights of bob in project lab: add_user,realize_experiment.\n",
		},
		{
			name:       "project none",
			args:       []string{"project", "rights", "lab", "bob", ""},
			wantRights: nil,
			wantOut:    "Rights of bob in project lab: none.\n",
		},
		{
			name:       "unknown right sent and refused by the server",
			args:       []string{"project", "rights", "lab", "bob", "add_user,fly"},
			wantRights: []string{"add_user", "fly"},
			wantCode:   1,
			wantErr:    "error: the request is not valid\n  rights: unknown right \"fly\" (rights.known)\n",
		},
		{
			name:       "circle",
			args:       []string{"circle", "rights", "alice:friends", "bob", "remove_user"},
			wantRights: []string{"remove_user"},
			wantOut:    "Rights of bob in circle alice:friends: remove_user.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			var uid string
			var rights []string
			if tt.args[0] == "project" {
				m := lastRequest[*trellisv1.ProjectsChangeRightsRequest](t, e, trellisv1connect.ProjectsChangeRightsProcedure)
				uid, rights = m.GetUid(), m.GetRights()
			} else {
				m := lastRequest[*trellisv1.CirclesChangeRightsRequest](t, e, trellisv1connect.CirclesChangeRightsProcedure)
				uid, rights = m.GetUid(), m.GetRights()
			}
			if uid != "bob" || !slices.Equal(rights, tt.wantRights) {
				t.Errorf("sent uid %q rights %q", uid, rights)
			}
		})
	}
}

func TestPolicyExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"check allowed", []string{"policy", "check", "bob", "project.read", "project:lab"}, 0, "allowed\n", ""},
		{"check denied", []string{"policy", "check", "bob", "project.add_user", "project:lab"}, 3, "denied\n", ""},
		{"check failed", []string{"policy", "check", "bob", "project.read", "bogus"}, 1, "", "error: object \"bogus\": want KIND:NAME\n"},
		{"explain allowed", []string{"policy", "explain", "bob", "project.read", "project:lab"}, 0,
			"allowed\n  bob is a member of project sub\n  project sub is nested in project lab with rights realize_experiment\n", ""},
		{"explain denied", []string{"policy", "explain", "", "project.add_user", "project:lab"}, 3,
			"denied\n  alice has no right add_user in project:lab\n", ""},
		{"list", []string{"policy", "list", "bob", "project.add_user", "project"}, 0, "project:lab\nproject:sub\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}

	e := loggedIn(t)
	e.run("", "policy", "check", "bob", "project.add_user", "circle:alice:friends")
	got := lastRequest[*trellisv1.CheckRequest](t, e, trellisv1connect.PolicyCheckProcedure)
	if got.GetUid() != "bob" || got.GetAction() != "project.add_user" || got.GetObject() != "circle:alice:friends" {
		t.Errorf("check request %v", got)
	}

	// JSON keeps the exit status: a script reads the answer either way.
	for args, want := range map[string]int{"project.read": 0, "project.add_user": 3} {
		r := e.run("", "--output", "json", "policy", "check", "bob", args, "project:lab")
		var resp trellisv1.CheckResponse
		if r.code != want || protojson.Unmarshal([]byte(r.out), &resp) != nil || resp.GetAllowed() != (want == 0) {
			t.Errorf("json %s: %+v", args, r)
		}
	}
}

func TestNotifySendTargets(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *trellisv1.NotificationsSendRequest
		wantOut string
		wantErr string
	}{
		{
			name:    "user",
			args:    []string{"--to", "user:bob", "hello"},
			want:    &trellisv1.NotificationsSendRequest{ToUser: "bob", Text: "hello"},
			wantOut: "Sent to 1 recipient.\n",
		},
		{
			name: "uid alias",
			args: []string{"--to", "uid:bob", "hello"},
			want: &trellisv1.NotificationsSendRequest{ToUser: "bob", Text: "hello"},
		},
		{
			name:    "project urgent",
			args:    []string{"--to", "project:lab", "maintenance at 22:00", "--urgent"},
			want:    &trellisv1.NotificationsSendRequest{ToProject: "lab", Text: "maintenance at 22:00", Urgent: true},
			wantOut: "Sent to 3 recipients.\n",
		},
		{
			name: "circle",
			args: []string{"--to", "circle:alice:friends", "slides are up"},
			want: &trellisv1.NotificationsSendRequest{ToCircle: "alice:friends", Text: "slides are up"},
		},
		{
			name: "kind then name",
			args: []string{"--to", "project", "lab", "hello"},
			want: &trellisv1.NotificationsSendRequest{ToProject: "lab", Text: "hello"},
		},
		{
			name: "kind then circle name",
			args: []string{"--to", "circle", "alice:friends", "hello"},
			want: &trellisv1.NotificationsSendRequest{ToCircle: "alice:friends", Text: "hello"},
		},
		{
			name: "kind in capitals",
			args: []string{"--to", "User:bob", "hello"},
			want: &trellisv1.NotificationsSendRequest{ToUser: "bob", Text: "hello"},
		},
		{name: "no --to", args: []string{"hello"}, wantErr: `required flag(s) "to" not set`},
		{name: "empty --to", args: []string{"--to", "", "hello"}, wantErr: "--to is empty"},
		{name: "bare name", args: []string{"--to", "bob", "hello"}, wantErr: `unknown kind "bob"`},
		{name: "unknown kind", args: []string{"--to", "group:x", "hello"}, wantErr: `unknown kind "group"`},
		{name: "empty name", args: []string{"--to", "user:", "hello"}, wantErr: `"" is not a user name`},
		{name: "user with colon", args: []string{"--to", "user:a:b", "hello"}, wantErr: `"a:b" is not a user name`},
		{name: "circle without owner", args: []string{"--to", "circle:friends", "hello"}, wantErr: "want OWNER:NAME"},
		{name: "circle empty part", args: []string{"--to", "circle:alice:", "hello"}, wantErr: "want OWNER:NAME"},
		{name: "no text", args: []string{"--to", "user:bob"}, wantErr: "want exactly one TEXT argument"},
		{name: "unquoted text", args: []string{"--to", "user:bob", "hello", "there"}, wantErr: "want exactly one TEXT argument"},
		{name: "kind without name", args: []string{"--to", "user", "hello"}, wantErr: "want NAME and TEXT after it"},
		{name: "blank text", args: []string{"--to", "user:bob", "  "}, wantErr: "text is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", append([]string{"notify", "send"}, tt.args...)...)
			if tt.wantErr != "" {
				if r.code != 1 || !strings.Contains(r.err, tt.wantErr) {
					t.Errorf("code %d, err %q; want 1 with %q", r.code, r.err, tt.wantErr)
				}
				if n := e.srv.social.count(trellisv1connect.NotificationsSendProcedure); n != 0 {
					t.Errorf("sent %d requests despite the usage error", n)
				}
				return
			}
			if r.code != 0 || r.err != "" || (tt.wantOut != "" && r.out != tt.wantOut) {
				t.Errorf("code %d, out %q, err %q", r.code, r.out, r.err)
			}
			got := lastRequest[*trellisv1.NotificationsSendRequest](t, e, trellisv1connect.NotificationsSendProcedure)
			if !proto.Equal(got, tt.want) {
				t.Errorf("sent %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNotifyWatch(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		e := loggedIn(t)
		r := e.run("", "notify", "watch")
		lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
		if r.code != 0 || r.err != "The server ended the stream.\n" || len(lines) != 2 {
			t.Fatalf("code %d, out %q, err %q", r.code, r.out, r.err)
		}
		if !strings.HasPrefix(lines[0], "#1 ") || !strings.HasSuffix(lines[0], " from bob [urgent]: note 1 (request req-1)") {
			t.Errorf("line 1 %q", lines[0])
		}
		// Text from others cannot break the one-line form nor drive the
		// terminal.
		if !strings.HasPrefix(lines[1], "#2 ") || !strings.HasSuffix(lines[1], " from trellis: line one??[31mline two") {
			t.Errorf("line 2 %q", lines[1])
		}
		if got := e.srv.header(trellisv1connect.NotificationsWatchProcedure); got != "Bearer acc-saved" {
			t.Errorf("Authorization = %q", got)
		}
	})

	t.Run("json lines", func(t *testing.T) {
		e := loggedIn(t)
		r := e.run("", "--output", "json", "notify", "watch")
		lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
		if r.code != 0 || len(lines) != 2 {
			t.Fatalf("code %d, out %q, err %q", r.code, r.out, r.err)
		}
		for i, l := range lines {
			var m trellisv1.NotificationsWatchResponse
			if err := protojson.Unmarshal([]byte(l), &m); err != nil || m.GetNotification().GetId() != int64(i+1) {
				t.Errorf("line %d %q: %v", i+1, l, err)
			}
		}
	})

	t.Run("not logged in", func(t *testing.T) {
		e := newEnv(t)
		r := e.run("", "notify", "watch")
		if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to ") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
	})

	// A token the server refuses is refreshed once and the stream opened
	// again, as for unary calls.
	t.Run("refresh after refusal", func(t *testing.T) {
		e := loggedIn(t)
		e.srv.mu.Lock()
		delete(e.srv.access, "acc-saved")
		e.srv.mu.Unlock()
		r := e.run("", "notify", "watch")
		if r.code != 0 || strings.Count(r.out, "\n") != 2 || e.srv.refreshCalls != 1 {
			t.Errorf("code %d, out %q, err %q, refreshes %d", r.code, r.out, r.err, e.srv.refreshCalls)
		}
		if got := e.srv.header(trellisv1connect.NotificationsWatchProcedure); got != "Bearer acc-1" {
			t.Errorf("Authorization = %q", got)
		}
	})

	t.Run("revoked session", func(t *testing.T) {
		e := loggedIn(t)
		e.srv.mu.Lock()
		clear(e.srv.access)
		clear(e.srv.refresh)
		e.srv.mu.Unlock()
		r := e.run("", "notify", "watch")
		if r.code != 1 || !strings.Contains(r.err, "session expired or revoked") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
	})

	t.Run("server unreachable", func(t *testing.T) {
		e := loggedIn(t)
		r := e.run("", "--server", "http://127.0.0.1:1", "notify", "watch")
		// The saved login is for another server: refused before dialing.
		if r.code != 1 || !strings.Contains(r.err, "the saved login is for") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
		t.Setenv(EnvToken, "acc-saved")
		r = e.run("", "--server", "http://127.0.0.1:1", "notify", "watch")
		if r.code != 1 || !strings.Contains(r.err, "request to http://127.0.0.1:1 failed") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
	})
}

func TestNotifyListAndMark(t *testing.T) {
	e := loggedIn(t)
	r := e.run("", "notify", "list", "--unread", "--urgent", "--since", "24h")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") ||
		!strings.Contains(lines[1], "unread,urgent") || !strings.Contains(lines[1], "req-1") ||
		!strings.Contains(lines[2], "trellis") || !strings.HasSuffix(lines[2], "note 2") {
		t.Errorf("table:\n%s", r.out)
	}
	got := lastRequest[*trellisv1.NotificationsListRequest](t, e, trellisv1connect.NotificationsListProcedure)
	if !got.GetUnreadOnly() || !got.GetUrgentOnly() || got.GetSince() == nil ||
		time.Since(got.GetSince().AsTime()) < 23*time.Hour {
		t.Errorf("list request %v", got)
	}

	tests := []struct {
		args     []string
		wantRead bool
		wantOut  string
	}{
		{[]string{"read", "3", "4"}, true, "Marked 2 notifications read.\n"},
		{[]string{"unread", "3"}, false, "Marked 1 notification unread.\n"},
	}
	for _, tt := range tests {
		r := e.run("", append([]string{"notify"}, tt.args...)...)
		if r.code != 0 || r.out != tt.wantOut {
			t.Errorf("%q: %+v", tt.args, r)
		}
		m := lastRequest[*trellisv1.NotificationsMarkRequest](t, e, trellisv1connect.NotificationsMarkProcedure)
		if m.Read == nil || m.GetRead() != tt.wantRead || m.Urgent != nil || len(m.GetIds()) != len(tt.args)-1 || m.GetIds()[0] != 3 {
			t.Errorf("%q: mark request %v", tt.args, m)
		}
	}
}

func TestRequestCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErr    string
		proc       string
		wantID     string
		wantReason string
	}{
		{"accept", []string{"accept", "req-bob"}, 0, "Accepted request req-bob.\n", "", trellisv1connect.NotificationsAcceptRequestProcedure, "req-bob", ""},
		{"decline", []string{"decline", "req-bob", "--reason", "wrong project"}, 0, "Declined request req-bob.\n", "", trellisv1connect.NotificationsDeclineRequestProcedure, "req-bob", "wrong project"},
		{"accept unknown", []string{"accept", "nosuch"}, 1, "", "error: request nosuch not found\n", trellisv1connect.NotificationsAcceptRequestProcedure, "nosuch", ""},
		{"decline unknown", []string{"decline", "nosuch"}, 1, "", "error: request nosuch not found\n", trellisv1connect.NotificationsDeclineRequestProcedure, "nosuch", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", append([]string{"request"}, tt.args...)...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q", r.code, r.out, r.err)
			}
			var id, reason string
			switch m := e.srv.social.last(tt.proc).(type) {
			case *trellisv1.AcceptRequestRequest:
				id = m.GetId()
			case *trellisv1.DeclineRequestRequest:
				id, reason = m.GetId(), m.GetReason()
			default:
				t.Fatalf("no request: %T", m)
			}
			if id != tt.wantID || reason != tt.wantReason {
				t.Errorf("sent id %q reason %q", id, reason)
			}
		})
	}

	e := loggedIn(t)
	r := e.run("", "request", "list")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{"req-bob", "project_add", "project:lab", "bob", "alice", "realize_experiment", "yes"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
}

func TestProfileCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   string
		proc      string
		wantSet   map[string]string
		wantClear []string
	}{
		{
			name:     "project show",
			args:     []string{"project", "profile", "lab"},
			wantOut:  "ATTRIBUTE  VALUE                    ACCESS\nURL        https://lab.example.org  read_write\nfunding    NSF                      read_write\n",
			proc:     trellisv1connect.ProjectsGetProjectProfileProcedure,
			wantCode: 0,
		},
		{
			name:      "project set one failed",
			args:      []string{"project", "profile", "lab", "set", "URL=ftp://x", "funding=NSF", "title=Lab, the", "--clear", "logo"},
			wantOut:   "URL: failed: an http or https URL (format)\nfunding: unchanged\ntitle: changed\nlogo: changed\n",
			wantCode:  1,
			proc:      trellisv1connect.ProjectsSetProjectProfileProcedure,
			wantSet:   map[string]string{"URL": "ftp://x", "funding": "NSF", "title": "Lab, the"},
			wantClear: []string{"logo"},
		},
		{
			name:      "project clear only",
			args:      []string{"project", "profile", "lab", "set", "--clear", "logo", "--clear", "URL"},
			wantOut:   "logo: changed\nURL: changed\n",
			proc:      trellisv1connect.ProjectsSetProjectProfileProcedure,
			wantSet:   map[string]string{},
			wantClear: []string{"logo", "URL"},
		},
		{
			name:    "project named set",
			args:    []string{"project", "profile", "set"},
			wantOut: "ATTRIBUTE  VALUE                    ACCESS\nURL        https://lab.example.org  read_write\nfunding    NSF                      read_write\n",
			proc:    trellisv1connect.ProjectsGetProjectProfileProcedure,
		},
		{
			name:    "circle set",
			args:    []string{"circle", "profile", "alice:friends", "set", "URL=https://x"},
			wantOut: "URL: changed\n",
			proc:    trellisv1connect.CirclesSetCircleProfileProcedure,
			wantSet: map[string]string{"URL": "https://x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %d, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut)
			}
			switch m := e.srv.social.last(tt.proc).(type) {
			case *trellisv1.GetProjectProfileRequest:
				if m.GetName() != tt.args[2] {
					t.Errorf("asked for %q", m.GetName())
				}
			case *trellisv1.SetProjectProfileRequest:
				if m.GetName() != "lab" || !mapsEqual(m.GetSet(), tt.wantSet) || !slices.Equal(m.GetClear(), tt.wantClear) {
					t.Errorf("set request %v", m)
				}
			case *trellisv1.SetCircleProfileRequest:
				if m.GetId() != "alice:friends" || !mapsEqual(m.GetSet(), tt.wantSet) || !slices.Equal(m.GetClear(), tt.wantClear) {
					t.Errorf("set request %v", m)
				}
			default:
				t.Fatalf("no request: %T", m)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestProjectAndCircleText(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"project", "show", "lab"}, []string{"name:        lab\n", "owner:       alice\n", "state:       approved\n",
			"children:    sub (rights: realize_experiment)\n", "parents:     -\n"}},
		{[]string{"project", "members", "lab", "--effective"}, []string{"UID    RIGHTS", "alice  add_user,remove_user  yes", "dave   realize_experiment    no     sub"}},
		{[]string{"project", "list", "--all", "--pending", "--prefix", "p", "--member", "bob"}, []string{"NAME", "p0  ", "p4  "}},
		{[]string{"project", "join", "lab", "--message", "please"}, []string{"Asked to join project lab (request req-join)"}},
		{[]string{"project", "owner", "lab", "bob"}, []string{"Project lab is now owned by bob.\n"}},
		{[]string{"project", "nest", "lab", "sub", "--rights", "realize_experiment"}, []string{"Nested project sub in lab; its members' rights there: realize_experiment.\n"}},
		{[]string{"project", "unnest", "lab", "sub"}, []string{"Project sub is no longer nested in lab.\n"}},
		{[]string{"project", "delete", "lab"}, []string{"Deleted project lab"}},
		{[]string{"project", "describe-profile"}, []string{"NAME     DESCRIPTION", "funding  Funding source"}},
		{[]string{"circle", "create", "alice:friends", "--description", "pals"}, []string{"Created circle alice:friends.\n"}},
		{[]string{"circle", "show", "alice:friends"}, []string{"id:        alice:friends\n", "automatic: no\n", "\nUID    RIGHTS", "bob    realize_experiment"}},
		{[]string{"circle", "list", "--owner", "alice"}, []string{"ID", "alice:alice    alice  yes        2", "alice:friends  alice  no"}},
		{[]string{"circle", "join", "alice:friends"}, []string{"Asked to join circle alice:friends (request req-cjoin)"}},
		{[]string{"circle", "owner", "alice:friends", "bob"}, []string{"Circle alice:friends is now owned by bob.\n"}},
		{[]string{"circle", "delete", "alice:friends"}, []string{"Deleted circle alice:friends.\n"}},
		{[]string{"circle", "describe-profile"}, []string{"URL      Home page"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", tt.args...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("code %d, err %q", r.code, r.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
		})
	}

	e := loggedIn(t)
	e.run("", "project", "list", "--all", "--pending", "--prefix", "p", "--member", "bob")
	if n := e.srv.social.count(trellisv1connect.ProjectsListProjectsProcedure); n != 3 {
		t.Errorf("--all fetched %d pages, want 3", n)
	}
	lp := lastRequest[*trellisv1.ListProjectsRequest](t, e, trellisv1connect.ProjectsListProjectsProcedure)
	if lp.GetNamePrefix() != "p" || lp.GetMember() != "bob" || !lp.GetIncludePending() || lp.GetPageToken() != "p4" {
		t.Errorf("list request %v", lp)
	}
	r := e.run("", "project", "list")
	if !strings.Contains(r.err, "--page-token p2") {
		t.Errorf("one page: %+v", r)
	}
	if r := e.run("", "project", "nest", "lab", "lab"); r.code != 1 || r.err != "error: nesting a project in itself makes a cycle\n" {
		t.Errorf("cycle: %+v", r)
	}
}

func TestSocialJSONOutput(t *testing.T) {
	tests := []struct {
		args []string
		msg  proto.Message
		ok   func(proto.Message) bool
	}{
		{[]string{"project", "request", "vlab", "--description", "d"}, &trellisv1.RequestProjectResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.RequestProjectResponse).GetRequestId() == "req-vlab" }},
		{[]string{"project", "show", "lab"}, &trellisv1.GetProjectResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.GetProjectResponse).GetProject().GetName() == "lab" }},
		{[]string{"project", "list", "--all"}, &trellisv1.ListProjectsResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListProjectsResponse).GetProjects()) == 5 }},
		{[]string{"project", "members", "lab"}, &trellisv1.ListMembersResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListMembersResponse).GetMembers()) == 2 }},
		{[]string{"project", "profile", "lab"}, &trellisv1.GetProjectProfileResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.GetProjectProfileResponse).GetAttributes()) == 2 }},
		{[]string{"project", "join", "lab"}, &trellisv1.JoinProjectResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.JoinProjectResponse).GetRequestId() == "req-join" }},
		{[]string{"circle", "show", "alice:friends"}, &trellisv1.GetCircleResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.GetCircleResponse).GetCircle().GetId() == "alice:friends"
			}},
		{[]string{"circle", "list"}, &trellisv1.ListCirclesResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ListCirclesResponse).GetCircles()) == 2 }},
		{[]string{"circle", "profile", "alice:friends"}, &trellisv1.GetCircleProfileResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.GetCircleProfileResponse).GetId() == "alice:friends" }},
		{[]string{"request", "list"}, &trellisv1.ListRequestsResponse{},
			func(m proto.Message) bool {
				return m.(*trellisv1.ListRequestsResponse).GetRequests()[0].GetId() == "req-bob"
			}},
		{[]string{"notify", "list"}, &trellisv1.NotificationsListResponse{},
			func(m proto.Message) bool {
				return len(m.(*trellisv1.NotificationsListResponse).GetNotifications()) == 2
			}},
		{[]string{"notify", "read", "1"}, &trellisv1.NotificationsMarkResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.NotificationsMarkResponse).GetChanged() == 1 }},
		{[]string{"notify", "send", "--to", "project:lab", "hi"}, &trellisv1.NotificationsSendResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.NotificationsSendResponse).GetRecipients() == 3 }},
		{[]string{"policy", "explain", "bob", "project.read", "project:lab"}, &trellisv1.ExplainResponse{},
			func(m proto.Message) bool { return len(m.(*trellisv1.ExplainResponse).GetReasons()) == 2 }},
		{[]string{"policy", "list", "bob", "circle.add_user", "circle"}, &trellisv1.ListAllowedResponse{},
			func(m proto.Message) bool { return m.(*trellisv1.ListAllowedResponse).GetObjects()[0] == "circle:lab" }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			e := loggedIn(t)
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

func TestSocialUsageErrors(t *testing.T) {
	tests := [][]string{
		{"project", "lsit"},
		{"project", "show"},
		{"project", "add", "lab"},
		{"project", "remove", "lab"},
		{"project", "rights", "lab", "bob"},
		{"project", "nest", "lab"},
		{"project", "profile"},
		{"project", "profile", "lab", "bogus"},
		{"project", "profile", "lab", "set"},
		{"project", "profile", "lab", "set", "novalue"},
		{"project", "profile", "lab", "set", "a=1", "a=2"},
		{"project", "profile", "lab", "--clear", "URL"},
		{"circle", "nosuch"},
		{"circle", "add", "alice:friends"},
		{"circle", "rights", "alice:friends", "bob"},
		{"request", "accept"},
		{"request", "decline", "a", "b"},
		{"notify", "read"},
		{"notify", "read", "x1"},
		{"notify", "unread", "0"},
		{"notify", "list", "--since", "last tuesday"},
		{"notify", "watch", "extra"},
		{"policy", "check", "bob", "project.read"},
		{"policy", "explain"},
		{"policy", "list", "bob", "project.read"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			e := loggedIn(t)
			r := e.run("", args...)
			if r.code != 1 || !strings.HasPrefix(r.err, "error: ") || !strings.Contains(r.err, "--help' for usage") {
				t.Errorf("code %d, stderr %q", r.code, r.err)
			}
		})
	}
}

// Every command the issue names exists.
func TestSocialCommandTree(t *testing.T) {
	root := NewRoot(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	for _, path := range []string{
		"project request", "project approve", "project reject", "project show", "project delete",
		"project members", "project list", "project add", "project join", "project remove",
		"project rights", "project owner", "project nest", "project unnest", "project profile",
		"project describe-profile",
		"circle create", "circle show", "circle delete", "circle add", "circle remove", "circle join",
		"circle list", "circle rights", "circle owner", "circle profile", "circle describe-profile",
		"request list", "request accept", "request decline",
		"notify list", "notify read", "notify unread", "notify send", "notify watch",
		"policy check", "policy explain", "policy list",
	} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c.CommandPath() != "trellis "+path {
			t.Errorf("%s: found %q, %v", path, c.CommandPath(), err)
		}
	}
}

// Every new service call authenticates with the saved login.
func TestSocialCallsNeedLogin(t *testing.T) {
	for _, args := range [][]string{
		{"project", "show", "lab"},
		{"circle", "list"},
		{"request", "list"},
		{"notify", "list"},
		{"policy", "check", "", "project.read", "project:lab"},
	} {
		e := newEnv(t)
		r := e.run("", args...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to ") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.err)
		}
	}
}

// lineWatcher is an output stream that calls onLines with the number of
// complete lines written so far.
type lineWatcher struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	onLines func(int)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	w.onLines(bytes.Count(w.buf.Bytes(), []byte("\n")))
	return n, err
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A watch runs until interrupted, and an interruption is its normal end.
func TestNotifyWatchUntilInterrupted(t *testing.T) {
	e := loggedIn(t)
	e.srv.social.mu.Lock()
	e.srv.social.holdWatch = true
	e.srv.social.mu.Unlock()

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	interrupted := errors.New("interrupted")
	out := &lineWatcher{onLines: func(n int) {
		if n == 2 {
			cancel(interrupted)
		}
	}}
	var errb strings.Builder
	root := NewRoot(Streams{In: strings.NewReader(""), Out: out, Err: &errb})
	root.SetArgs([]string{"notify", "watch"})
	done := make(chan int)
	go func() { done <- reportError(&errb, root.ExecuteContext(ctx)) }()
	select {
	case code := <-done:
		if code != 0 || strings.Count(out.String(), "\n") != 2 || errb.Len() != 0 {
			t.Errorf("code %d, out %q, err %q", code, out.String(), errb.String())
		}
		if context.Cause(ctx) != interrupted {
			t.Errorf("ended by %v, not by the interruption", context.Cause(ctx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end when interrupted")
	}
}
