package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// matchID checks that out is want with ID standing for an id the server
// made (a request's, a realization's), and returns that id.
func matchID(t *testing.T, out, want string) string {
	t.Helper()
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(want), "ID", "([A-Za-z0-9_-]+)") + "$")
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("out %q, want %q", out, want)
	}
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

// requestOf returns uid's pending request id as the server holds it.
func requestOf(t *testing.T, srv *apptest.Server, uid, id string) *trellisv1.PendingRequest {
	t.Helper()
	for _, r := range must(srv.As(t, uid).Notifications.ListRequests(bg, req(&trellisv1.ListRequestsRequest{})))(t).GetRequests() {
		if r.GetId() == id {
			return r
		}
	}
	t.Fatalf("%s has no request %s", uid, id)
	return nil
}

// notificationsOf lists uid's notifications, newest first.
func notificationsOf(t *testing.T, srv *apptest.Server, uid string) []*trellisv1.Notification {
	t.Helper()
	return must(srv.As(t, uid).Notifications.List(bg, req(&trellisv1.NotificationsListRequest{})))(t).GetNotifications()
}

// membersOf returns the members of a project, or of a circle when name has
// a colon, with their rights.
func membersOf(t *testing.T, srv *apptest.Server, name string) map[string][]string {
	t.Helper()
	var ms []*trellisv1.Member
	if strings.Contains(name, ":") {
		ms = must(srv.Admin(t).Circles.GetCircle(bg, req(&trellisv1.GetCircleRequest{Id: name})))(t).GetCircle().GetMembers()
	} else {
		ms = must(srv.Admin(t).Projects.ListMembers(bg, req(&trellisv1.ListMembersRequest{Name: name})))(t).GetMembers()
	}
	out := map[string][]string{}
	for _, m := range ms {
		out[m.GetUid()] = m.GetRights()
	}
	return out
}

// newCircle makes owner's circle id.
func newCircle(t *testing.T, srv *apptest.Server, owner, id string) {
	t.Helper()
	must(srv.As(t, owner).Circles.CreateCircle(bg, req(&trellisv1.CreateCircleRequest{Id: id, Description: "pals"})))(t)
}

func TestProjectRequestAndApprove(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob") // powerless: his requests wait
	alice, bob, ops := as(t, srv, "alice"), as(t, srv, "bob"), as(t, srv, apptest.AdminUID)

	tests := []struct {
		name        string
		e           *env
		args        []string
		wantOut     string
		wantState   trellisv1.ProjectState
		wantVetting bool
	}{
		{
			name:      "exists at once",
			e:         alice,
			args:      []string{"project", "request", "lab2", "--description", "Networking lab"},
			wantOut:   "Created project lab2: it exists now, owned by alice.\n",
			wantState: trellisv1.ProjectState_PROJECT_STATE_APPROVED,
		},
		{
			name:        "vetting waits",
			e:           alice,
			args:        []string{"project", "request", "vlab", "--description", "Networking lab", "--vetting"},
			wantOut:     "Requested project vlab: it waits for an admin's approval (request ID).\n",
			wantState:   trellisv1.ProjectState_PROJECT_STATE_PENDING,
			wantVetting: true,
		},
		{
			name:        "server requires vetting",
			e:           bob,
			args:        []string{"project", "request", "blab", "--description", "Networking lab"},
			wantOut:     "Requested project blab: it waits for an admin's approval (request ID).\n",
			wantState:   trellisv1.ProjectState_PROJECT_STATE_PENDING,
			wantVetting: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.e.run("", tt.args...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("code %d, out %q, err %q", r.code, r.out, r.err)
			}
			id := matchID(t, r.out, tt.wantOut)
			p := must(tt.e.api().Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: tt.args[2]})))(t).GetProject()
			if p.GetState() != tt.wantState || p.GetVetting() != tt.wantVetting || p.GetDescription() != "Networking lab" {
				t.Errorf("on the server: %v", p)
			}
			if id != "" {
				// The admins are asked, with the request the client printed.
				if !slices.ContainsFunc(notificationsOf(t, srv, apptest.AdminUID), func(n *trellisv1.Notification) bool { return n.GetRequestId() == id }) {
					t.Errorf("no admin was notified of request %s", id)
				}
			}
		})
	}

	if r := ops.run("", "project", "approve", "vlab"); r.code != 0 || r.out != "Approved project vlab (owner alice).\n" {
		t.Errorf("approve: %+v", r)
	}
	if p := must(alice.api().Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: "vlab"})))(t).GetProject(); p.GetState() != trellisv1.ProjectState_PROJECT_STATE_APPROVED {
		t.Errorf("vlab is %v", p.GetState())
	}
	if r := ops.run("", "project", "approve", "nosuch"); r.code != 1 || r.err != "error: project \"nosuch\" not found\n" {
		t.Errorf("approve nosuch: %+v", r)
	}
	if r := ops.run("", "project", "reject", "blab", "--reason", "not a research project"); r.code != 0 || r.out != "Rejected project blab.\n" {
		t.Errorf("reject: %+v", r)
	}
	if _, err := bob.api().Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: "blab"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("blab after its rejection: %v", err)
	}
	if n := notificationsOf(t, srv, "bob"); len(n) == 0 || !strings.Contains(n[0].GetText(), "not a research project") {
		t.Errorf("bob is not told why: %v", n)
	}
	if r := offline(t).run("", "project", "request", "lab"); r.code != 1 || !strings.Contains(r.err, `"description" not set`) {
		t.Errorf("request without description: %+v", r)
	}
}

func TestMemberBatchOutcomes(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	srv.NewUser(t, "carol")
	// Each case has a group of its own, carol a member of it.
	for _, p := range []string{"add", "fail", "flags", "rm"} {
		srv.NewProject(t, "alice", p)
		srv.AddMember(t, "alice", p, "carol")
	}
	for _, c := range []string{"alice:add", "alice:rm"} {
		newCircle(t, srv, "alice", c)
		srv.AddCircleMember(t, "alice", c, "carol")
	}
	alice := as(t, srv, "alice")

	tests := []struct {
		name        string
		args        []string
		wantOut     string
		wantCode    int
		wantRequest []string // rights of the request bob is sent
		wantGone    string   // no longer a member
	}{
		{
			name:        "project add",
			args:        []string{"project", "add", "add", "bob", "--rights", "add_user,realize_experiment"},
			wantOut:     "bob: requested (request ID)\n",
			wantRequest: []string{"add_user", "realize_experiment"},
		},
		{
			// In the server's order, which is the uids'.
			name:        "project add one failed",
			args:        []string{"project", "add", "fail", "bob", "ghost", "carol"},
			wantOut:     "bob: requested (request ID)\ncarol: failed: carol is already a member of project fail\nghost: failed: user \"ghost\" not found\n",
			wantCode:    1,
			wantRequest: []string{},
		},
		{
			name:        "repeated rights flags",
			args:        []string{"project", "add", "flags", "bob", "--rights", "add_user", "--rights", "remove_user, realize_experiment"},
			wantOut:     "bob: requested (request ID)\n",
			wantRequest: []string{"add_user", "remove_user", "realize_experiment"},
		},
		{
			name:     "project remove owner fails",
			args:     []string{"project", "remove", "rm", "alice", "carol"},
			wantOut:  "alice: failed: alice owns project rm and cannot be removed; transfer ownership first\ncarol: removed\n",
			wantCode: 1,
			wantGone: "carol",
		},
		{
			name:        "circle add",
			args:        []string{"circle", "add", "alice:add", "ghost", "bob", "--rights", "add_user"},
			wantOut:     "bob: requested (request ID)\nghost: failed: user \"ghost\" not found\n",
			wantCode:    1,
			wantRequest: []string{"add_user"},
		},
		{
			name:     "circle remove",
			args:     []string{"circle", "remove", "alice:rm", "carol"},
			wantOut:  "carol: removed\n",
			wantGone: "carol",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := alice.run("", tt.args...)
			// A failure is reported in its line, not again on stderr.
			if r.code != tt.wantCode || r.err != "" {
				t.Errorf("code %d, err %q; want %d", r.code, r.err, tt.wantCode)
			}
			id := matchID(t, r.out, tt.wantOut)
			group := tt.args[2]
			if tt.wantRequest != nil {
				rq := requestOf(t, srv, "bob", id)
				kind := "project:"
				if tt.args[0] == "circle" {
					kind = "circle:"
				}
				if rq.GetObject() != kind+group || rq.GetRequester() != "alice" || !slices.Equal(rq.GetRights(), tt.wantRequest) {
					t.Errorf("bob's request: %v", rq)
				}
			}
			if tt.wantGone != "" {
				if _, in := membersOf(t, srv, group)[tt.wantGone]; in {
					t.Errorf("%s is still a member of %s", tt.wantGone, group)
				}
			}
		})
	}
}

// With --output json, a batch prints the response and still exits 1 when a
// user failed.
func TestMemberBatchJSONExitCode(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	r := as(t, srv, "alice").run("", "--output", "json", "project", "add", "lab", "ghost", "bob")
	var resp trellisv1.ProjectsAddUsersResponse
	if r.code != 1 || protojson.Unmarshal([]byte(r.out), &resp) != nil || len(resp.GetOutcomes()) != 2 {
		t.Fatalf("%+v", r)
	}
	if o := resp.GetOutcomes(); o[0].GetUid() != "bob" || o[0].GetOutcome() != "requested" || o[1].GetUid() != "ghost" || o[1].GetOutcome() != "failed" {
		t.Errorf("outcomes %v", o)
	}
}

// The contract's outcomes print as one line each, whichever the server
// chooses. (A Trellis that adds without consent, which the contract
// allows, does not exist yet: "added" is printed here, not seen from a
// server.)
func TestOutcomeText(t *testing.T) {
	tests := []struct {
		o    *trellisv1.UserOutcome
		want string
	}{
		{&trellisv1.UserOutcome{Uid: "carol", Outcome: "added"}, "added"},
		{&trellisv1.UserOutcome{Uid: "bob", Outcome: "requested", RequestId: "r1"}, "requested (request r1)"},
		{&trellisv1.UserOutcome{Uid: "ghost", Outcome: "failed", Reason: "no such user"}, "failed: no such user"},
		{&trellisv1.UserOutcome{Uid: "x"}, "unknown"},
	}
	for _, tt := range tests {
		if got := outcomeText(tt.o); got != tt.want {
			t.Errorf("outcomeText(%v) = %q, want %q", tt.o, got, tt.want)
		}
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
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	srv.AddMember(t, "alice", "lab", "bob", "create_circle")
	newCircle(t, srv, "alice", "alice:friends")
	srv.AddCircleMember(t, "alice", "alice:friends", "bob")
	alice := as(t, srv, "alice")
	const unknown = "error: the request is not valid\n  rights: unknown right \"fly\"; the rights are add_user, remove_user, create_circle, create_experiment, create_library, realize_experiment (rights.unknown)\n"

	// In order: each case starts from the rights the one before left.
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErr    string
		wantRights []string
	}{
		{
			name:       "project list",
			args:       []string{"project", "rights", "lab", "bob", "add_user, realize_experiment"},
			wantOut:    "Rights of bob in project lab: add_user,realize_experiment.\n",
			wantRights: []string{"add_user", "realize_experiment"},
		},
		{
			name:       "unknown right sent and refused by the server",
			args:       []string{"project", "rights", "lab", "bob", "add_user,fly"},
			wantCode:   1,
			wantErr:    unknown,
			wantRights: []string{"add_user", "realize_experiment"},
		},
		{
			name:    "project none",
			args:    []string{"project", "rights", "lab", "bob", ""},
			wantOut: "Rights of bob in project lab: none.\n",
		},
		{
			name:       "circle",
			args:       []string{"circle", "rights", "alice:friends", "bob", "remove_user"},
			wantOut:    "Rights of bob in circle alice:friends: remove_user.\n",
			wantRights: []string{"remove_user"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != tt.wantErr {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if got := membersOf(t, srv, tt.args[2])["bob"]; !slices.Equal(got, tt.wantRights) {
				t.Errorf("bob's rights on the server: %q, want %q", got, tt.wantRights)
			}
		})
	}
}

// policy answers with the server's decision: exit 0 allowed, 3 denied.
func TestPolicyExitCodes(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewProject(t, "alice", "sub")
	srv.NewUser(t, "bob")
	srv.AddMember(t, "alice", "sub", "bob")
	must(srv.As(t, "alice").Projects.AddChildProject(bg, req(&trellisv1.AddChildProjectRequest{
		Parent: "lab", Child: "sub", Rights: []string{"realize_experiment"},
	})))(t)
	ops, bob := as(t, srv, apptest.AdminUID), as(t, srv, "bob")

	tests := []struct {
		name     string
		e        *env
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"check allowed", ops, []string{"policy", "check", "bob", "project.realize_experiment", "project:lab"}, 0, "allowed\n", ""},
		{"check denied", ops, []string{"policy", "check", "bob", "project.add_user", "project:lab"}, 3, "denied\n", ""},
		{"check failed", ops, []string{"policy", "check", "bob", "project.read", "bogus"}, 1, "",
			"error: the request is not valid\n  object: objects are named project:NAME, circle:OWNER:NAME, experiment:OWNER:NAME, library:OWNER:NAME or realization:ID (object.kind)\n"},
		{"explain allowed", ops, []string{"policy", "explain", "bob", "project.realize_experiment", "project:lab"}, 0,
			"allowed\n  bob is a member of project sub with rights none\n  members of project sub get rights realize_experiment in project lab\n", ""},
		{"explain denied, as oneself", bob, []string{"policy", "explain", "", "project.add_user", "project:lab"}, 3,
			"denied\n  bob is a member of project sub with rights none\n  project sub is nested in project lab\n  bob holds add_user in project lab neither directly nor through a nested project\n", ""},
		{"list", ops, []string{"policy", "list", "bob", "project.realize_experiment", "project"}, 0, "project:lab\n", ""},
		{"another's, not an admin", bob, []string{"policy", "check", "alice", "project.read", "project:lab"}, 1, "", "error: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.e.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || !strings.HasPrefix(r.err, tt.wantErr) || (tt.wantErr == "" && r.err != "") {
				t.Errorf("code %d, out %q, err %q; want %d, %q, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}

	// JSON keeps the exit status: a script reads the answer either way.
	for action, want := range map[string]int{"project.realize_experiment": 0, "project.add_user": 3} {
		r := ops.run("", "--output", "json", "policy", "check", "bob", action, "project:lab")
		var resp trellisv1.CheckResponse
		if r.code != want || protojson.Unmarshal([]byte(r.out), &resp) != nil || resp.GetAllowed() != (want == 0) {
			t.Errorf("json %s: %+v", action, r)
		}
	}
}

func TestNotifySendTargets(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	srv.NewUser(t, "carol")
	srv.AddMember(t, "alice", "lab", "carol")
	newCircle(t, srv, "alice", "alice:friends")
	srv.AddCircleMember(t, "alice", "alice:friends", "bob")
	alice, ops := as(t, srv, "alice"), as(t, srv, apptest.AdminUID)

	// alice sends, except to single users, which only admins may.
	tests := []struct {
		name       string
		admin      bool
		args       []string // TEXT is replaced by the case's own text
		wantTo     []string
		wantUrgent bool
		wantOut    string
		wantErr    string
	}{
		{name: "user", admin: true, args: []string{"--to", "user:bob", "TEXT"}, wantTo: []string{"bob"}, wantOut: "Sent to 1 recipient.\n"},
		{name: "uid alias", admin: true, args: []string{"--to", "uid:bob", "TEXT"}, wantTo: []string{"bob"}},
		{name: "user, not an admin", args: []string{"--to", "user:bob", "TEXT"}, wantErr: "error: trellis.v1.Notifications/Send is for testbed administrators only, unless the request names a project or circle you own\n"},
		{name: "project urgent", args: []string{"--to", "project:lab", "TEXT", "--urgent"}, wantTo: []string{"alice", "carol"}, wantUrgent: true,
			wantOut: "Sent to 2 recipients.\n"},
		{name: "circle", args: []string{"--to", "circle:alice:friends", "TEXT"}, wantTo: []string{"alice", "bob"}},
		{name: "kind then name", args: []string{"--to", "project", "lab", "TEXT"}, wantTo: []string{"alice", "carol"}},
		{name: "kind then circle name", args: []string{"--to", "circle", "alice:friends", "TEXT"}, wantTo: []string{"alice", "bob"}},
		{name: "kind in capitals", admin: true, args: []string{"--to", "User:bob", "TEXT"}, wantTo: []string{"bob"}},
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
			t.Parallel()
			text := "about " + tt.name
			args := slices.Clone(tt.args)
			if i := slices.Index(args, "TEXT"); i >= 0 {
				args[i] = text
			} else {
				// A usage error, refused before any request: offline, one
				// would fail otherwise.
				r := offline(t).run("", append([]string{"notify", "send"}, tt.args...)...)
				if r.code != 1 || !strings.Contains(r.err, tt.wantErr) {
					t.Errorf("code %d, err %q; want 1 with %q", r.code, r.err, tt.wantErr)
				}
				return
			}
			e, sender := alice, "alice"
			if tt.admin {
				e, sender = ops, apptest.AdminUID
			}
			r := e.run("", append([]string{"notify", "send"}, args...)...)
			if tt.wantErr != "" {
				if r.code != 1 || r.err != tt.wantErr {
					t.Errorf("code %d, err %q; want 1 with %q", r.code, r.err, tt.wantErr)
				}
			} else if r.code != 0 || r.err != "" || (tt.wantOut != "" && r.out != tt.wantOut) {
				t.Errorf("code %d, out %q, err %q", r.code, r.out, r.err)
			}
			for _, uid := range []string{"alice", "bob", "carol"} {
				ns := notificationsOf(t, srv, uid)
				i := slices.IndexFunc(ns, func(n *trellisv1.Notification) bool { return n.GetText() == text })
				if got, want := i >= 0, slices.Contains(tt.wantTo, uid); got != want {
					t.Errorf("%s notified: %v, want %v", uid, got, want)
				} else if got {
					n := ns[i]
					if n.GetSender() != sender || n.GetUrgent() != tt.wantUrgent {
						t.Errorf("%s's notification %v", uid, n)
					}
				}
			}
		})
	}
}

// syncBuffer is an output stream a test reads while a command writes it,
// which calls onWrite with everything written so far.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	onWrite func(string)
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.onWrite != nil {
		w.onWrite(w.buf.String())
	}
	return n, err
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// watch starts `notify watch` (with extra flags) for e and returns, with
// the command's streams and a channel that gets its exit code, once the
// server says the watch is established (with --output json at once: it
// says nothing then). Cancelling ctx interrupts it.
func (e *env) watch(ctx context.Context, onOut func(string), flags ...string) (out, errs *syncBuffer, done <-chan int) {
	e.t.Helper()
	started := make(chan struct{})
	var once sync.Once
	out = &syncBuffer{onWrite: onOut}
	errs = &syncBuffer{onWrite: func(s string) {
		if strings.Contains(s, "Watching for notifications") {
			once.Do(func() { close(started) })
		}
	}}
	if slices.Contains(flags, "json") {
		// JSON lines say nothing when the watch is established: the
		// caller waits for the server's first line instead.
		once.Do(func() { close(started) })
	}
	root := NewRoot(Streams{In: strings.NewReader(""), Out: out, Err: errs})
	root.SetArgs(append(append([]string{"--server", e.server, "--config-dir", e.dir}, flags...), "notify", "watch"))
	codes := make(chan int, 1)
	go func() { codes <- reportError(errs, root.ExecuteContext(ctx)) }()
	select {
	case <-started:
	case code := <-codes:
		e.t.Fatalf("watch ended with %d before it started: %q", code, errs.String())
	case <-time.After(10 * time.Second):
		e.t.Fatal("watch did not start")
	}
	return out, errs, codes
}

// waitCode waits for a watch to end.
func waitCode(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end")
		return -1
	}
}

// waitText waits until b holds text.
func waitText(t *testing.T, b *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %q, got %q", text, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLines waits until out holds n lines.
func waitLines(t *testing.T, out *syncBuffer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d lines, got %q", n, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNotifyWatch(t *testing.T) {
	t.Parallel()
	// Each case has a server of its own: "text" stops its server.
	scene := func(t *testing.T) (*apptest.Server, *env) {
		srv := apptest.Start(t)
		srv.NewPowerfulUser(t, "alice", "lab")
		srv.NewUser(t, "bob")
		return srv, as(t, srv, "alice")
	}
	// notify sends alice two notifications: bob's request to join lab, and
	// an urgent one from the admin whose text tries to break the line and
	// drive the terminal. It returns the request's id.
	notify := func(t *testing.T, srv *apptest.Server) string {
		join := must(srv.As(t, "bob").Projects.JoinProject(bg, req(&trellisv1.JoinProjectRequest{Name: "lab"})))(t)
		must(srv.Admin(t).Notifications.Send(bg, req(&trellisv1.NotificationsSendRequest{
			ToUser: "alice", Text: "line one\n\x1b[31mline two", Urgent: true,
		})))(t)
		return join.GetRequestId()
	}

	t.Run("text, across a server restart", func(t *testing.T) {
		t.Parallel()
		srv, e := scene(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, errs, done := e.watch(ctx, nil)
		id := notify(t, srv)
		waitLines(t, out, 2)
		srv.Stop()
		waitText(t, errs, "Watch interrupted (the server ended the stream); reconnecting in 250ms.\n")
		srv.Restart()
		must(srv.Admin(t).Notifications.Send(bg, req(&trellisv1.NotificationsSendRequest{ToUser: "alice", Text: "after the restart"})))(t)
		waitLines(t, out, 3)
		waitText(t, errs, "Watch resumed.\n")
		cancel()
		if code := waitCode(t, done); code != 0 {
			t.Errorf("code %d", code)
		}
		// Between the end and the resumption the watch may find the server
		// down (connection refused) and wait longer each time.
		if !regexp.MustCompile(`^Watching for notifications; interrupt to stop\.\n` +
			`Watch interrupted \(the server ended the stream\); reconnecting in 250ms\.\n` +
			`(Watch interrupted \(the server is unavailable\); reconnecting in \S+\.\n)*` +
			`Watch resumed\.\n$`).MatchString(errs.String()) {
			t.Errorf("stderr %q", errs.String())
		}
		// Each notification once: none repeated after the resumption.
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("out %q", out.String())
		}
		if !regexp.MustCompile(`^#\d+ \S+ from bob: bob asks to join project lab\. Accept with: trellis request accept ` + id + ` \(request ` + id + `\)$`).MatchString(lines[0]) {
			t.Errorf("line 1 %q", lines[0])
		}
		// Text from others cannot break the one-line form nor drive the
		// terminal.
		if !regexp.MustCompile(`^#\d+ \S+ from ops \[urgent\]: line one\?\?\[31mline two$`).MatchString(lines[1]) {
			t.Errorf("line 2 %q", lines[1])
		}
		if !regexp.MustCompile(`^#\d+ \S+ from ops: after the restart$`).MatchString(lines[2]) {
			t.Errorf("line 3 %q", lines[2])
		}
	})

	t.Run("json lines", func(t *testing.T) {
		t.Parallel()
		srv, e := scene(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, errs, done := e.watch(ctx, nil, "--output", "json")
		// A JSON watch says nothing when it is established: send until it
		// prints, then the two notifications.
		for i := 0; strings.Count(out.String(), "\n") == 0; i++ {
			if i == 200 {
				t.Fatal("the watch printed nothing")
			}
			must(srv.Admin(t).Notifications.Send(bg, req(&trellisv1.NotificationsSendRequest{ToUser: "alice", Text: "ping " + itoa(int64(i))})))(t)
			time.Sleep(50 * time.Millisecond)
		}
		before := strings.Count(out.String(), "\n")
		notify(t, srv)
		waitLines(t, out, before+2)
		cancel()
		if code := waitCode(t, done); code != 0 || errs.String() != "" {
			t.Errorf("code %d, stderr %q", code, errs.String())
		}
		// Each line is a notification the server holds, newest last.
		byID := map[int64]*trellisv1.Notification{}
		for _, n := range notificationsOf(t, srv, "alice") {
			byID[n.GetId()] = n
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		var last int64
		for i, l := range lines {
			var m trellisv1.NotificationsWatchResponse
			if err := protojson.Unmarshal([]byte(l), &m); err != nil || !proto.Equal(m.GetNotification(), byID[m.GetNotification().GetId()]) || m.GetNotification().GetId() <= last {
				t.Errorf("line %d %q (%v), the server holds %v", i+1, l, err, byID[m.GetNotification().GetId()])
			}
			last = m.GetNotification().GetId()
		}
		if n := byID[last]; !n.GetUrgent() || n.GetText() != "line one\n\x1b[31mline two" {
			t.Errorf("last line %v", n)
		}
	})

	t.Run("not logged in", func(t *testing.T) {
		t.Parallel()
		r := newEnv(t, apptest.Start(t)).run("", "notify", "watch")
		if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to ") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
	})

	// A token the server refuses is refreshed once and the stream opened
	// again, as for unary calls.
	t.Run("refresh after refusal", func(t *testing.T) {
		t.Parallel()
		srv, e := scene(t)
		e.editCredentials(func(c *credentials) { c.AccessToken = tamper(c.AccessToken) })
		refused := e.credentials().AccessToken
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, _, done := e.watch(ctx, nil)
		notify(t, srv)
		waitLines(t, out, 2)
		cancel()
		if code := waitCode(t, done); code != 0 {
			t.Errorf("code %d", code)
		}
		if got := e.credentials().AccessToken; got == refused || whoAmI(t, srv, got) != "alice" {
			t.Error("the saved token was not renewed")
		}
	})

	t.Run("revoked session", func(t *testing.T) {
		t.Parallel()
		_, e := scene(t)
		must(e.api().Auth.Logout(bg, req(&trellisv1.LogoutRequest{})))(t)
		e.editCredentials(func(c *credentials) { c.AccessToken = tamper(c.AccessToken) })
		r := e.run("", "notify", "watch")
		if r.code != 1 || !strings.Contains(r.err, "session expired or revoked") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
	})

	t.Run("server unreachable", func(t *testing.T) {
		t.Parallel()
		srv, e := scene(t)
		// The saved login is for another server: refused before dialing.
		r := e.run("", "--server", closedURL(t), "notify", "watch")
		if r.code != 1 || !strings.Contains(r.err, "the saved login is for "+srv.URL) {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
		srv.Stop()
		r = e.run("", "notify", "watch")
		if r.code != 1 || !strings.Contains(r.err, "request to "+srv.URL+" failed") {
			t.Errorf("code %d, err %q", r.code, r.err)
		}
	})
}

// A watch runs until interrupted, and an interruption is its normal end.
func TestNotifyWatchUntilInterrupted(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	e := as(t, srv, "alice")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	interrupted := errors.New("interrupted")
	out, errs, done := e.watch(ctx, func(s string) {
		if strings.Count(s, "\n") == 2 {
			cancel(interrupted)
		}
	})
	for _, text := range []string{"one", "two"} {
		must(srv.Admin(t).Notifications.Send(bg, req(&trellisv1.NotificationsSendRequest{ToUser: "alice", Text: text})))(t)
	}
	code := waitCode(t, done)
	if code != 0 || strings.Count(out.String(), "\n") != 2 || errs.String() != "Watching for notifications; interrupt to stop.\n" {
		t.Errorf("code %d, out %q, err %q", code, out.String(), errs.String())
	}
	if context.Cause(ctx) != interrupted {
		t.Errorf("ended by %v, not by the interruption", context.Cause(ctx))
	}
}

func TestNotifyListAndMark(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	join := must(srv.As(t, "bob").Projects.JoinProject(bg, req(&trellisv1.JoinProjectRequest{Name: "lab"})))(t)
	admin := srv.Admin(t)
	for _, text := range []string{"maintenance tonight", "maintenance done"} {
		must(admin.Notifications.Send(bg, req(&trellisv1.NotificationsSendRequest{ToUser: "alice", Text: text, Urgent: true})))(t)
	}
	ns := notificationsOf(t, srv, "alice") // done, tonight, join, lab's approval
	done, tonight, joinNote := ns[0], ns[1], ns[2]
	urgent := map[int64]bool{}
	for _, n := range ns {
		urgent[n.GetId()] = n.GetUrgent()
	}
	e := as(t, srv, "alice")
	must(e.api().Notifications.Mark(bg, req(&trellisv1.NotificationsMarkRequest{Ids: []int64{done.GetId()}, Read: proto.Bool(true)})))(t)

	r := e.run("", "notify", "list")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[0], "ID ") ||
		!strings.Contains(lines[1], "urgent ") || strings.Contains(lines[1], "unread") || !strings.HasSuffix(lines[1], "maintenance done") ||
		!strings.Contains(lines[2], "unread,urgent") || !strings.HasSuffix(lines[2], "maintenance tonight") ||
		!strings.Contains(lines[3], "bob") || !strings.Contains(lines[3], join.GetRequestId()) || !strings.HasPrefix(lines[3], itoa(joinNote.GetId())+" ") {
		t.Errorf("table:\n%s", r.out)
	}
	// The filters are the server's.
	r = e.run("", "notify", "list", "--unread", "--urgent", "--since", "24h")
	lines = strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], itoa(tonight.GetId())+" ") {
		t.Errorf("unread urgent:\n%s", r.out)
	}
	r = e.run("", "notify", "list", "--since", "2000-01-01T00:00:00Z")
	if r.code != 0 || strings.Count(r.out, "\n") != 5 {
		t.Errorf("since 2000:\n%s", r.out)
	}

	tests := []struct {
		args     []string
		ids      []int64
		wantRead bool
		wantOut  string
	}{
		{[]string{"read", itoa(tonight.GetId()), itoa(joinNote.GetId())}, []int64{tonight.GetId(), joinNote.GetId()}, true, "Marked 2 notifications read.\n"},
		{[]string{"unread", itoa(tonight.GetId())}, []int64{tonight.GetId()}, false, "Marked 1 notification unread.\n"},
	}
	for _, tt := range tests {
		r := e.run("", append([]string{"notify"}, tt.args...)...)
		if r.code != 0 || r.out != tt.wantOut {
			t.Errorf("%q: %+v", tt.args, r)
		}
		for _, n := range notificationsOf(t, srv, "alice") {
			if slices.Contains(tt.ids, n.GetId()) && n.GetRead() != tt.wantRead {
				t.Errorf("%q: notification %d read = %v", tt.args, n.GetId(), n.GetRead())
			}
			if n.GetUrgent() != urgent[n.GetId()] {
				t.Errorf("%q: notification %d urgent = %v", tt.args, n.GetId(), n.GetUrgent())
			}
		}
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func TestRequestCommands(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	srv.NewUser(t, "carol")
	add := must(srv.As(t, "alice").Projects.AddUsers(bg, req(&trellisv1.ProjectsAddUsersRequest{
		Name: "lab", Uids: []string{"bob", "carol"}, Rights: []string{"realize_experiment"},
	})))(t)
	bobReq, carolReq := add.GetOutcomes()[0].GetRequestId(), add.GetOutcomes()[1].GetRequestId()
	bob, carol := as(t, srv, "bob"), as(t, srv, "carol")

	r := bob.run("", "request", "list")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{bobReq, "project_add", "project:lab", "bob", "alice", "realize_experiment", "yes"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}

	if r := bob.run("", "request", "accept", bobReq); r.code != 0 || r.out != "Accepted request "+bobReq+".\n" || r.err != "" {
		t.Errorf("accept: %+v", r)
	}
	if got, in := membersOf(t, srv, "lab")["bob"]; !in || !slices.Equal(got, []string{"realize_experiment"}) {
		t.Errorf("bob in lab: %v %q", in, got)
	}
	if r := carol.run("", "request", "decline", carolReq, "--reason", "wrong project"); r.code != 0 || r.out != "Declined request "+carolReq+".\n" || r.err != "" {
		t.Errorf("decline: %+v", r)
	}
	if _, in := membersOf(t, srv, "lab")["carol"]; in {
		t.Error("carol joined although she declined")
	}
	if n := notificationsOf(t, srv, "alice"); len(n) == 0 || !strings.Contains(n[0].GetText(), "wrong project") {
		t.Errorf("alice is not told why: %v", n)
	}
	const gone = "error: request \"%s\" not found: it was answered, withdrawn, or never existed\n"
	for _, args := range [][]string{{"accept", "nosuch"}, {"decline", "nosuch"}, {"accept", bobReq}} {
		r := bob.run("", append([]string{"request"}, args...)...)
		if r.code != 1 || r.out != "" || r.err != fmt.Sprintf(gone, args[1]) {
			t.Errorf("%q: %+v", args, r)
		}
	}
}

func TestProfileCommands(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewProject(t, "alice", "set")
	newCircle(t, srv, "alice", "alice:friends")
	alice := as(t, srv, "alice")
	must(alice.api().Projects.SetProjectProfile(bg, req(&trellisv1.SetProjectProfileRequest{
		Name: "lab", Set: map[string]string{"URL": "https://lab.example.org", "funders": "NSF"},
	})))(t)

	// In order: each case starts from the profile the one before left.
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		want     map[string]string // on the server afterwards; "" is unset
	}{
		{
			name: "project show",
			args: []string{"project", "profile", "lab"},
			wantOut: "ATTRIBUTE    VALUE                    ACCESS\n" +
				"description  research on lab          read_write\n" +
				"funders      NSF                      read_write\n" +
				"affiliation  -                        read_write\n" +
				"URL          https://lab.example.org  read_write\n",
		},
		{
			name:     "project set one failed",
			args:     []string{"project", "profile", "lab", "set", "URL=ftp://x", "funders=NSF", "affiliation=USC, ISI", "--clear", "description"},
			wantOut:  "URL: failed: an http or https URL (format)\naffiliation: changed\nfunders: unchanged\ndescription: failed: attribute is required and cannot be cleared (required)\n",
			wantCode: 1,
			want:     map[string]string{"URL": "https://lab.example.org", "funders": "NSF", "affiliation": "USC, ISI", "description": "research on lab"},
		},
		{
			name:    "project clear only",
			args:    []string{"project", "profile", "lab", "set", "--clear", "funders", "--clear", "URL"},
			wantOut: "funders: changed\nURL: changed\n",
			want:    map[string]string{"URL": "", "funders": ""},
		},
		{
			// "set" alone is the project named set.
			name: "project named set",
			args: []string{"project", "profile", "set"},
			wantOut: "ATTRIBUTE    VALUE            ACCESS\n" +
				"description  research on set  read_write\n" +
				"funders      -                read_write\n" +
				"affiliation  -                read_write\n" +
				"URL          -                read_write\n",
		},
		{
			name:    "circle set",
			args:    []string{"circle", "profile", "alice:friends", "set", "email=friends@example.org"},
			wantOut: "email: changed\n",
			want:    map[string]string{"email": "friends@example.org"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.run("", tt.args...)
			if r.code != tt.wantCode || r.out != tt.wantOut || r.err != "" {
				t.Errorf("code %d, out %q, err %q; want %d, %q", r.code, r.out, r.err, tt.wantCode, tt.wantOut)
			}
			var attrs []*trellisv1.ProfileAttribute
			if tt.args[0] == "project" {
				attrs = must(alice.api().Projects.GetProjectProfile(bg, req(&trellisv1.GetProjectProfileRequest{Name: tt.args[2]})))(t).GetAttributes()
			} else {
				attrs = must(alice.api().Circles.GetCircleProfile(bg, req(&trellisv1.GetCircleProfileRequest{Id: "alice:friends"})))(t).GetAttributes()
			}
			got := map[string]string{}
			for _, a := range attrs {
				got[a.GetName()] = a.GetValue()
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s is %q on the server, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestProjectAndCircleText(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	srv.NewUser(t, "carol")
	srv.AddMember(t, "alice", "lab", "carol", "realize_experiment")
	// dave's project sub is nested in lab (by an admin: alice cannot see
	// it).
	srv.NewPowerfulUser(t, "dave", "sub")
	must(srv.Admin(t).Projects.AddChildProject(bg, req(&trellisv1.AddChildProjectRequest{Parent: "lab", Child: "sub", Rights: []string{"realize_experiment"}})))(t)
	for _, p := range []string{"p0", "p1", "p2", "p3", "nested", "gone"} {
		srv.NewProject(t, "alice", p)
	}
	for _, p := range []string{"p0", "p2", "p3"} {
		srv.AddMember(t, "alice", p, "bob")
	}
	newCircle(t, srv, "alice", "alice:friends")
	srv.AddCircleMember(t, "alice", "alice:friends", "carol", "realize_experiment")
	newCircle(t, srv, "alice", "alice:given")
	srv.AddCircleMember(t, "alice", "alice:given", "bob")
	newCircle(t, srv, "alice", "alice:gone")
	alice, bob, ops := as(t, srv, "alice"), as(t, srv, "bob"), as(t, srv, apptest.AdminUID)
	project := func(t *testing.T, name string) *trellisv1.Project {
		return must(ops.api().Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: name})))(t).GetProject()
	}

	// In order: some cases change what later ones see.
	tests := []struct {
		e     *env
		args  []string
		want  []string
		check func(t *testing.T)
	}{
		{alice, []string{"project", "show", "lab"}, []string{"name:        lab\n", "owner:       alice\n", "state:       approved\n",
			"children:    sub (rights: realize_experiment)\n", "parents:     -\n"}, nil},
		{alice, []string{"project", "members", "lab", "--effective"}, []string{"UID    RIGHTS", "\ncarol  realize_experiment  ", "  no     -\n",
			"\ndave   realize_experiment  ", "  no     sub\n"}, nil},
		{ops, []string{"project", "list", "--all", "--pending", "--prefix", "p", "--member", "bob", "--page-size", "1"},
			[]string{"NAME", "\np0  ", "\np2  ", "\np3  "}, nil},
		{bob, []string{"project", "join", "lab", "--message", "please"}, []string{"Asked to join project lab (request "}, func(t *testing.T) {
			if n := notificationsOf(t, srv, "alice"); !strings.HasSuffix(n[0].GetText(), "(please)") || n[0].GetSender() != "bob" {
				t.Errorf("alice is asked %v", n[0])
			}
		}},
		{alice, []string{"project", "owner", "p2", "bob"}, []string{"Project p2 is now owned by bob.\n"}, func(t *testing.T) {
			if o := project(t, "p2").GetOwner(); o != "bob" {
				t.Errorf("p2 is owned by %s", o)
			}
		}},
		{alice, []string{"project", "nest", "lab", "nested", "--rights", "realize_experiment"}, []string{"Nested project nested in lab; its members' rights there: realize_experiment.\n"}, func(t *testing.T) {
			if c := project(t, "lab").GetChildren(); !slices.ContainsFunc(c, func(c *trellisv1.ChildProject) bool { return c.GetName() == "nested" }) {
				t.Errorf("lab's children: %v", c)
			}
		}},
		{alice, []string{"project", "unnest", "lab", "nested"}, []string{"Project nested is no longer nested in lab.\n"}, func(t *testing.T) {
			if c := project(t, "lab").GetChildren(); slices.ContainsFunc(c, func(c *trellisv1.ChildProject) bool { return c.GetName() == "nested" }) {
				t.Errorf("lab's children: %v", c)
			}
		}},
		{alice, []string{"project", "delete", "gone"}, []string{"Deleted project gone"}, func(t *testing.T) {
			if _, err := ops.api().Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: "gone"})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("gone: %v", err)
			}
		}},
		{alice, []string{"project", "describe-profile"}, []string{"NAME         DESCRIPTION", "\nfunders      Who funds the work  "}, nil},
		{alice, []string{"circle", "create", "alice:new", "--description", "pals"}, []string{"Created circle alice:new.\n"}, func(t *testing.T) {
			c := must(alice.api().Circles.GetCircle(bg, req(&trellisv1.GetCircleRequest{Id: "alice:new"})))(t).GetCircle()
			p := must(alice.api().Circles.GetCircleProfile(bg, req(&trellisv1.GetCircleProfileRequest{Id: "alice:new"})))(t)
			if c.GetOwner() != "alice" || !slices.ContainsFunc(p.GetAttributes(), func(a *trellisv1.ProfileAttribute) bool {
				return a.GetName() == "description" && a.GetValue() == "pals"
			}) {
				t.Errorf("on the server: %v, %v", c, p)
			}
		}},
		{alice, []string{"circle", "show", "alice:friends"}, []string{"id:        alice:friends\n", "automatic: no\n", "\nUID    RIGHTS",
			"\ncarol  realize_experiment  "}, nil},
		{alice, []string{"circle", "list", "--owner", "alice"}, []string{"ID", "\nalice:alice    alice  yes        1  ", "\nalice:friends  alice  no         2  "}, nil},
		{bob, []string{"circle", "join", "alice:friends"}, []string{"Asked to join circle alice:friends (request "}, func(t *testing.T) {
			if n := notificationsOf(t, srv, "alice"); n[0].GetRequestId() == "" || n[0].GetSender() != "bob" {
				t.Errorf("alice is asked %v", n[0])
			}
		}},
		{alice, []string{"circle", "owner", "alice:given", "bob"}, []string{"Circle alice:given is now owned by bob.\n"}, func(t *testing.T) {
			if c := must(bob.api().Circles.GetCircle(bg, req(&trellisv1.GetCircleRequest{Id: "alice:given"})))(t).GetCircle(); c.GetOwner() != "bob" {
				t.Errorf("alice:given is owned by %s", c.GetOwner())
			}
		}},
		{alice, []string{"circle", "delete", "alice:gone"}, []string{"Deleted circle alice:gone.\n"}, func(t *testing.T) {
			if _, err := alice.api().Circles.GetCircle(bg, req(&trellisv1.GetCircleRequest{Id: "alice:gone"})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("alice:gone: %v", err)
			}
		}},
		{alice, []string{"circle", "describe-profile"}, []string{"\nemail        Contact address  "}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := tt.e.run("", tt.args...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("code %d, err %q", r.code, r.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}

	// One page, and the way to the next.
	r := ops.run("", "project", "list", "--page-size", "2")
	if r.code != 0 || strings.Count(r.out, "\n") != 3 || !strings.Contains(r.err, "--page-token ") {
		t.Errorf("one page: %+v", r)
	}
	if r := alice.run("", "project", "nest", "lab", "lab"); r.code != 1 ||
		r.err != "error: the request is not valid\n  child: nesting lab in lab would make a cycle: lab already contains lab (nesting.cycle)\n" {
		t.Errorf("cycle: %+v", r)
	}
}

// With --output json a command prints the server's response: the same
// message the API returns for the same call.
func TestSocialJSONOutput(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	srv.NewUser(t, "bob")
	srv.AddMember(t, "alice", "lab", "bob")
	newCircle(t, srv, "alice", "alice:friends")
	srv.AddCircleMember(t, "alice", "alice:friends", "bob")
	srv.NewUser(t, "carol")
	e := as(t, srv, "alice")
	api := e.api()
	must(api.Projects.AddUsers(bg, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{"carol"}})))(t)
	carol := as(t, srv, "carol")

	tests := []struct {
		e    *env
		args []string
		msg  proto.Message
		want func(t *testing.T, got proto.Message) proto.Message // nil: only checked by ok
	}{
		{e, []string{"project", "show", "lab"}, &trellisv1.GetProjectResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: "lab"})))(t)
		}},
		{e, []string{"project", "list", "--all"}, &trellisv1.ListProjectsResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Projects.ListProjects(bg, req(&trellisv1.ListProjectsRequest{})))(t)
		}},
		{e, []string{"project", "members", "lab"}, &trellisv1.ListMembersResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Projects.ListMembers(bg, req(&trellisv1.ListMembersRequest{Name: "lab"})))(t)
		}},
		{e, []string{"project", "profile", "lab"}, &trellisv1.GetProjectProfileResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Projects.GetProjectProfile(bg, req(&trellisv1.GetProjectProfileRequest{Name: "lab"})))(t)
		}},
		{e, []string{"circle", "show", "alice:friends"}, &trellisv1.GetCircleResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Circles.GetCircle(bg, req(&trellisv1.GetCircleRequest{Id: "alice:friends"})))(t)
		}},
		{e, []string{"circle", "list"}, &trellisv1.ListCirclesResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Circles.ListCircles(bg, req(&trellisv1.ListCirclesRequest{})))(t)
		}},
		{e, []string{"circle", "profile", "alice:friends"}, &trellisv1.GetCircleProfileResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Circles.GetCircleProfile(bg, req(&trellisv1.GetCircleProfileRequest{Id: "alice:friends"})))(t)
		}},
		{carol, []string{"request", "list"}, &trellisv1.ListRequestsResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(carol.api().Notifications.ListRequests(bg, req(&trellisv1.ListRequestsRequest{})))(t)
		}},
		{e, []string{"notify", "list"}, &trellisv1.NotificationsListResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Notifications.List(bg, req(&trellisv1.NotificationsListRequest{})))(t)
		}},
		{e, []string{"policy", "explain", "", "project.read", "project:lab"}, &trellisv1.ExplainResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Policy.Explain(bg, req(&trellisv1.ExplainRequest{Action: "project.read", Object: "project:lab"})))(t)
		}},
		{e, []string{"policy", "list", "", "circle.add_user", "circle"}, &trellisv1.ListAllowedResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return must(api.Policy.ListAllowed(bg, req(&trellisv1.ListAllowedRequest{Action: "circle.add_user", Kind: "circle"})))(t)
		}},
		// Calls that change something: their response, and its effect.
		{e, []string{"project", "request", "lab2", "--description", "d"}, &trellisv1.RequestProjectResponse{}, func(t *testing.T, got proto.Message) proto.Message {
			p := must(api.Projects.GetProject(bg, req(&trellisv1.GetProjectRequest{Name: "lab2"})))(t).GetProject()
			return &trellisv1.RequestProjectResponse{Project: p, RequestId: got.(*trellisv1.RequestProjectResponse).GetRequestId()}
		}},
		{carol, []string{"project", "join", "lab2"}, &trellisv1.JoinProjectResponse{}, func(t *testing.T, got proto.Message) proto.Message {
			id := got.(*trellisv1.JoinProjectResponse).GetRequestId()
			if n := notificationsOf(t, srv, "alice"); n[0].GetRequestId() != id {
				t.Errorf("alice's newest notification %v, not for request %s", n[0], id)
			}
			return &trellisv1.JoinProjectResponse{RequestId: id}
		}},
		{e, []string{"notify", "send", "--to", "project:lab", "hi"}, &trellisv1.NotificationsSendResponse{}, func(t *testing.T, _ proto.Message) proto.Message {
			return &trellisv1.NotificationsSendResponse{Recipients: 2} // alice and bob
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := tt.e.run("", append([]string{"--output", "json"}, tt.args...)...)
			if r.code != 0 || r.err != "" {
				t.Fatalf("code %d, stderr %q", r.code, r.err)
			}
			if err := protojson.Unmarshal([]byte(r.out), tt.msg); err != nil {
				t.Fatalf("output is not the response in JSON: %v\n%s", err, r.out)
			}
			if want := tt.want(t, tt.msg); !proto.Equal(tt.msg, want) {
				t.Errorf("printed %v\nthe server says %v", tt.msg, want)
			}
		})
	}

	// notify read: the count of notifications the server changed.
	id := notificationsOf(t, srv, "alice")[0].GetId()
	r := e.run("", "--output", "json", "notify", "read", itoa(id))
	var mark trellisv1.NotificationsMarkResponse
	if r.code != 0 || protojson.Unmarshal([]byte(r.out), &mark) != nil || mark.GetChanged() != 1 || !notificationsOf(t, srv, "alice")[0].GetRead() {
		t.Errorf("notify read: %+v", r)
	}
}

func TestSocialUsageErrors(t *testing.T) {
	t.Parallel()
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
			r := offline(t).run("", args...)
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

// The calls authenticate with the saved login: without one, the client
// says so.
func TestSocialCallsNeedLogin(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	for _, args := range [][]string{
		{"project", "show", "lab"},
		{"circle", "list"},
		{"request", "list"},
		{"notify", "list"},
		{"policy", "check", "", "project.read", "project:lab"},
	} {
		r := newEnv(t, srv).run("", args...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: not logged in to ") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.err)
		}
	}
}
