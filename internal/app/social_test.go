package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
)

// requestsOf lists the caller's pending requests.
func (h *harness) requestsOf(tok string) []*trellisv1.PendingRequest {
	h.t.Helper()
	resp, err := h.notifications.ListRequests(context.Background(), req(&trellisv1.ListRequestsRequest{}, tok))
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Msg.Requests
}

// notificationsOf lists the caller's notifications, newest first.
func (h *harness) notificationsOf(tok string) []*trellisv1.Notification {
	h.t.Helper()
	resp, err := h.notifications.List(context.Background(), req(&trellisv1.NotificationsListRequest{}, tok))
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Msg.Notifications
}

func (h *harness) check(tok, uid, action, object string) bool {
	h.t.Helper()
	resp, err := h.policy.Check(context.Background(), req(&trellisv1.CheckRequest{Uid: uid, Action: action, Object: object}, tok))
	if err != nil {
		h.t.Fatalf("check %s %s %s: %v", uid, action, object, err)
	}
	return resp.Msg.Allowed
}

// approvedProject makes owner (powerless or not) the owner of an approved
// project named name.
func (h *harness) approvedProject(adminTok, ownerTok, name string) {
	h.t.Helper()
	ctx := context.Background()
	resp, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: name, Description: "research on " + name}, ownerTok))
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.Msg.RequestId != "" {
		if _, err := h.projects.ApproveProject(ctx, req(&trellisv1.ApproveProjectRequest{Name: name}, adminTok)); err != nil {
			h.t.Fatal(err)
		}
	}
}

// TestVettingFlow: a powerless user requests a project, an admin approves
// it, the owner invites a student who consents through the notification and
// becomes powerful, then is removed and is powerless again.
func TestVettingFlow(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			pi := h.newUser("pat")
			student := h.newUser("sam")

			// Powerless: the student can do nothing beyond its profile, and
			// is told what it can do.
			_, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "sam:friends"}, student))
			wantCode(t, err, connect.CodePermissionDenied)
			if !strings.Contains(err.Error(), "trellis project join") {
				t.Fatalf("powerless refusal lacks the way out: %v", err)
			}

			resp, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "netsec", Description: "network security research"}, pi))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Msg.Project.State != trellisv1.ProjectState_PROJECT_STATE_PENDING || resp.Msg.RequestId == "" {
				t.Fatalf("a powerless user's project must wait for vetting: %v", resp.Msg)
			}
			// The admin hears of it, with the request attached.
			ns := h.notificationsOf(adminTok)
			if len(ns) == 0 || ns[0].RequestId != resp.Msg.RequestId || !ns[0].Urgent {
				t.Fatalf("admin notifications: %v", ns)
			}
			// Pending: the owner sees it but cannot use it yet.
			_, err = h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "netsec", Uids: []string{"sam"}}, pi))
			wantCode(t, err, connect.CodeFailedPrecondition)

			if _, err := h.projects.ApproveProject(ctx, req(&trellisv1.ApproveProjectRequest{Name: "netsec"}, adminTok)); err != nil {
				t.Fatal(err)
			}
			if ns := h.notificationsOf(pi); len(ns) == 0 || !strings.Contains(ns[0].Text, "approved") {
				t.Fatalf("owner not told of the approval: %v", ns)
			}

			// The owner invites the student; nothing changes until consent.
			add, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "netsec", Uids: []string{"sam", "nobody-such"}, Rights: []string{"realize_experiment"}}, pi))
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]*trellisv1.UserOutcome{}
			for _, o := range add.Msg.Outcomes {
				out[o.Uid] = o
			}
			if out["sam"].Outcome != "requested" || out["nobody-such"].Outcome != "failed" || !strings.Contains(out["nobody-such"].Reason, "not found") {
				t.Fatalf("outcomes: %v", add.Msg.Outcomes)
			}
			if h.check(adminTok, "sam", "project.read", "project:netsec") {
				t.Fatal("sam is a member before consenting")
			}
			// The student finds the request in its notifications and accepts.
			ns = h.notificationsOf(student)
			if len(ns) == 0 || ns[0].RequestId != out["sam"].RequestId {
				t.Fatalf("student notifications: %v", ns)
			}
			if reqs := h.requestsOf(student); len(reqs) != 1 || !reqs[0].Actionable {
				t.Fatalf("student requests: %v", reqs)
			}
			// Nobody else may accept it for the student, nor see it.
			_, err = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: ns[0].RequestId}, pi))
			wantCode(t, err, connect.CodePermissionDenied)
			_, err = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: ns[0].RequestId}, h.newUser("eve")))
			wantCode(t, err, connect.CodeNotFound)
			if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: ns[0].RequestId}, student)); err != nil {
				t.Fatal(err)
			}
			// Accepting twice is refused.
			_, err = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: ns[0].RequestId}, student))
			wantCode(t, err, connect.CodeNotFound)

			// Powerful now: the student may create a circle, and holds the
			// right it was given, not more.
			if _, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "sam:friends"}, student)); err != nil {
				t.Fatalf("powerful student cannot create a circle: %v", err)
			}
			if !h.check(student, "", "project.realize_experiment", "project:netsec") || h.check(student, "", "project.add_user", "project:netsec") {
				t.Fatal("student's rights are not what it was given")
			}
			members, err := h.projects.ListMembers(ctx, req(&trellisv1.ListMembersRequest{Name: "netsec"}, student))
			if err != nil || len(members.Msg.Members) != 2 {
				t.Fatalf("members: %v %v", members, err)
			}
			// The project's automatic circle holds both.
			c, err := h.circles.GetCircle(ctx, req(&trellisv1.GetCircleRequest{Id: "netsec:netsec"}, student))
			if err != nil || len(c.Msg.Circle.Members) != 2 || !c.Msg.Circle.Automatic {
				t.Fatalf("automatic circle: %v %v", c, err)
			}

			// The owner cannot be removed; the student can, and is
			// powerless again.
			rm, err := h.projects.RemoveUsers(ctx, req(&trellisv1.ProjectsRemoveUsersRequest{Name: "netsec", Uids: []string{"pat", "sam"}}, pi))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range rm.Msg.Outcomes {
				if (o.Uid == "pat") != (o.Outcome == "failed") {
					t.Fatalf("remove outcomes: %v", rm.Msg.Outcomes)
				}
			}
			_, err = h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "sam:others"}, student))
			wantCode(t, err, connect.CodePermissionDenied)
			if h.check(adminTok, "sam", "project.read", "project:netsec") {
				t.Fatal("removed student still reads the project")
			}
		})
	}
}

func TestJoinAndNesting(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	dora, lee, tia := h.newUser("dora"), h.newUser("lee"), h.newUser("tia")
	h.approvedProject(adminTok, dora, "dept")
	h.approvedProject(adminTok, lee, "lab")

	// tia asks to join lab; lee (add_user) is asked and accepts.
	join, err := h.projects.JoinProject(ctx, req(&trellisv1.JoinProjectRequest{Name: "lab", Message: "I'm the new student"}, tia))
	if err != nil {
		t.Fatal(err)
	}
	ns := h.notificationsOf(lee)
	if len(ns) == 0 || ns[0].RequestId != join.Msg.RequestId || !strings.Contains(ns[0].Text, "new student") {
		t.Fatalf("lee's notifications: %v", ns)
	}
	// Asking twice is refused while the first is pending.
	_, err = h.projects.JoinProject(ctx, req(&trellisv1.JoinProjectRequest{Name: "lab"}, tia))
	wantCode(t, err, connect.CodeAlreadyExists)
	// tia cannot accept its own request to join.
	_, err = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: join.Msg.RequestId}, tia))
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: join.Msg.RequestId}, lee)); err != nil {
		t.Fatal(err)
	}

	// dora nests lab in dept, lab's members getting realize_experiment:
	// needs add_user in dept and ownership of lab, so dora alone cannot.
	_, err = h.projects.AddChildProject(ctx, req(&trellisv1.AddChildProjectRequest{Parent: "dept", Child: "lab", Rights: []string{"realize_experiment"}}, dora))
	wantCode(t, err, connect.CodeNotFound) // lab is invisible to dora
	// lee owns lab but has no add_user in dept: lee joins dept with it.
	inv, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "dept", Uids: []string{"lee"}, Rights: []string{"add_user"}}, dora))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: inv.Msg.Outcomes[0].RequestId}, lee)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.projects.AddChildProject(ctx, req(&trellisv1.AddChildProjectRequest{Parent: "dept", Child: "lab", Rights: []string{"realize_experiment"}}, lee)); err != nil {
		t.Fatal(err)
	}
	// tia now holds realize_experiment in dept through lab, and the
	// explanation says so.
	ex, err := h.policy.Explain(ctx, req(&trellisv1.ExplainRequest{Action: "project.realize_experiment", Object: "project:dept"}, tia))
	if err != nil || !ex.Msg.Allowed {
		t.Fatalf("explain: %v %v", ex, err)
	}
	chain := strings.Join(ex.Msg.Reasons, " / ")
	if !strings.Contains(chain, "tia is a member of project lab") || !strings.Contains(chain, "members of project lab get rights realize_experiment in project dept") {
		t.Fatalf("chain: %s", chain)
	}
	eff, err := h.projects.ListMembers(ctx, req(&trellisv1.ListMembersRequest{Name: "dept", Effective: true}, dora))
	if err != nil {
		t.Fatal(err)
	}
	via := map[string]string{}
	for _, m := range eff.Msg.Members {
		via[m.Uid] = m.Via
	}
	if via["tia"] != "lab" || via["dora"] != "" {
		t.Fatalf("effective members: %v", eff.Msg.Members)
	}
	// Cycles are refused.
	_, err = h.projects.AddChildProject(ctx, req(&trellisv1.AddChildProjectRequest{Parent: "lab", Child: "dept"}, dora))
	if err == nil {
		t.Fatal("cycle accepted")
	}
	h.approvedProject(adminTok, lee, "lab2")
	_, err = h.projects.AddChildProject(ctx, req(&trellisv1.AddChildProjectRequest{Parent: "lab", Child: "lab"}, lee))
	wantCode(t, err, connect.CodeInvalidArgument)
	if v := violations(err); v["child"] != "nesting.cycle" {
		t.Fatalf("cycle violations: %v", v)
	}
	// Policy.ListAllowed lists what tia may realize in.
	la, err := h.policy.ListAllowed(ctx, req(&trellisv1.ListAllowedRequest{Action: "project.realize_experiment", Kind: "project"}, tia))
	if err != nil || strings.Join(la.Msg.Objects, ",") != "project:dept" {
		t.Fatalf("list allowed: %v %v", la, err)
	}
}

func TestProjectBadInput(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	owner := h.newUser("olga")
	h.approvedProject(adminTok, owner, "lab")
	tests := []struct {
		name  string
		call  func() error
		code  connect.Code
		field string
	}{
		{"project named like a user", func() error {
			_, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "olga", Description: "x"}, owner))
			return err
		}, connect.CodeInvalidArgument, "name"},
		{"duplicate project", func() error {
			_, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "lab", Description: "x"}, owner))
			return err
		}, connect.CodeAlreadyExists, ""},
		{"bad project name", func() error {
			_, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "Lab:2", Description: "x"}, owner))
			return err
		}, connect.CodeInvalidArgument, "name"},
		{"missing description", func() error {
			_, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "lab3"}, owner))
			return err
		}, connect.CodeInvalidArgument, "profile.description"},
		{"right not in the vocabulary", func() error {
			_, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{"olga"}, Rights: []string{"fly"}}, owner))
			return err
		}, connect.CodeInvalidArgument, "rights"},
		{"circle right in a project", func() error {
			_, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "olga:c"}, owner))
			if err != nil {
				return err
			}
			_, err = h.circles.ChangeRights(ctx, req(&trellisv1.CirclesChangeRightsRequest{Id: "olga:c", Uid: "olga", Rights: []string{"create_library"}}, owner))
			return err
		}, connect.CodeInvalidArgument, "rights"},
		{"bad circle name", func() error {
			_, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "olga"}, owner))
			return err
		}, connect.CodeInvalidArgument, "id"},
		{"automatic circle", func() error {
			_, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "olga:olga"}, owner))
			return err
		}, connect.CodeInvalidArgument, "id"},
		{"owner's rights", func() error {
			_, err := h.projects.ChangeRights(ctx, req(&trellisv1.ProjectsChangeRightsRequest{Name: "lab", Uid: "olga"}, owner))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"owner to a non-member", func() error {
			_, err := h.projects.SetOwner(ctx, req(&trellisv1.ProjectsSetOwnerRequest{Name: "lab", Uid: "ops"}, owner))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"notification without a target", func() error {
			// (A non-admin naming no project or circle is refused first:
			// only admins write to single users.)
			_, err := h.notifications.Send(ctx, req(&trellisv1.NotificationsSendRequest{Text: "hi"}, adminTok))
			return err
		}, connect.CodeInvalidArgument, "to_user"},
		{"unknown action", func() error {
			_, err := h.policy.Check(ctx, req(&trellisv1.CheckRequest{Action: "project.fly", Object: "project:lab"}, owner))
			return err
		}, connect.CodeInvalidArgument, "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, tt.code)
			if tt.field != "" {
				if _, ok := violations(err)[tt.field]; !ok {
					t.Fatalf("no violation on %s: %v (%v)", tt.field, violations(err), err)
				}
			}
		})
	}
}

func TestExpiredRequest(t *testing.T) {
	st := openStore(t, sqlite)
	h := newServer(t, st)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	owner, guest := h.newUser("olga"), h.newUser("gus")
	h.approvedProject(adminTok, owner, "lab")
	add, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{"gus"}}, owner))
	if err != nil {
		t.Fatal(err)
	}
	// A replica whose clock is three days ahead sees the request expired.
	later := newServer(t, st, func(c *app.Config) {
		c.Now = func() time.Time { return time.Now().Add(72 * time.Hour) }
		c.PublicURL = h.srv.Service.Config().PublicURL
	})
	_, err = later.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, guest))
	wantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error %v does not say it expired", err)
	}
}

// TestConcurrentAcceptAndRemove races a user accepting an invitation
// against the owner removing the user: whatever the order, the end state is
// consistent (the request is gone; the user is a member exactly when the
// accept committed after the removal).
func TestConcurrentAcceptAndRemove(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			owner := h.newUser("olga")
			h.approvedProject(adminTok, owner, "lab")
			for i := range 8 {
				uid := fmt.Sprintf("u%d", i)
				tok := h.newUser(uid)
				add, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{uid}}, owner))
				if err != nil {
					t.Fatal(err)
				}
				var acceptErr, removeErr error
				var removed string
				var wg sync.WaitGroup
				wg.Go(func() {
					_, acceptErr = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, tok))
				})
				wg.Go(func() {
					var rm *connect.Response[trellisv1.ProjectsRemoveUsersResponse]
					rm, removeErr = h.projects.RemoveUsers(ctx, req(&trellisv1.ProjectsRemoveUsersRequest{Name: "lab", Uids: []string{uid}}, owner))
					if removeErr == nil {
						removed = rm.Msg.Outcomes[0].Outcome
					}
				})
				wg.Wait()
				if acceptErr != nil || removeErr != nil {
					t.Fatalf("round %d: accept %v, remove %v", i, acceptErr, removeErr)
				}
				member := h.check(adminTok, uid, "project.read", "project:lab")
				// removed: the removal came after the accept, so no member.
				// failed: it came first (not a member yet), so the accept
				// made a member.
				if (removed == "removed") == member {
					t.Fatalf("round %d: removal said %q but membership is %v", i, removed, member)
				}
				if len(h.requestsOf(tok)) != 0 {
					t.Fatalf("round %d: the request survived", i)
				}
			}
		})
	}
}

// TestNoStaleAllowAcrossReplicas: a membership removed through one replica
// is refused by another at once, not after a polling interval.
func TestNoStaleAllowAcrossReplicas(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			st := openStore(t, kind)
			slow := func(c *app.Config) { c.PublicURL = "https://trellis.test"; c.FeedInterval = time.Hour }
			a, b := newServer(t, st, slow), newServer(t, st, slow)
			ctx := context.Background()
			adminTok := a.bootstrapAdmin()
			owner := a.newUser("olga")
			a.approvedProject(adminTok, owner, "lab")
			for i := range 5 {
				uid := fmt.Sprintf("m%d", i)
				tok := a.newUser(uid)
				add, err := a.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{uid}}, owner))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, tok)); err != nil {
					t.Fatal(err)
				}
				if !a.check(tok, "", "project.read", "project:lab") {
					t.Fatalf("%s: replica a does not see the membership made on b", uid)
				}
				if _, err := a.projects.RemoveUsers(ctx, req(&trellisv1.ProjectsRemoveUsersRequest{Name: "lab", Uids: []string{uid}}, owner)); err != nil {
					t.Fatal(err)
				}
				if b.check(adminTok, uid, "project.read", "project:lab") {
					t.Fatalf("%s: replica b allowed a membership removed on a", uid)
				}
			}
		})
	}
}

func TestNotifications(t *testing.T) {
	st := openStore(t, sqlite)
	same := func(c *app.Config) { c.PublicURL = "https://trellis.test" }
	h, other := newServer(t, st, same), newServer(t, st, same)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	owner, member := h.newUser("olga"), h.newUser("mo")
	h.approvedProject(adminTok, owner, "lab")
	add, _ := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{"mo"}}, owner))
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, member)); err != nil {
		t.Fatal(err)
	}

	// mo watches on one replica; the owner writes through the other.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := h.notifications.Watch(wctx, req(&trellisv1.NotificationsWatchRequest{}, member))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || !stream.Msg().Created {
		t.Fatalf("the first message must say the watch is established: %v %v", stream.Msg(), stream.Err())
	}
	got := make(chan *trellisv1.Notification, 4)
	go func() {
		for stream.Receive() {
			got <- stream.Msg().Notification
		}
		close(got)
	}()
	sent, err := other.notifications.Send(ctx, req(&trellisv1.NotificationsSendRequest{ToProject: "lab", Text: "maintenance tonight", Urgent: true}, owner))
	if err != nil || sent.Msg.Recipients != 2 {
		t.Fatalf("send: %v %v", sent, err)
	}
	select {
	case n := <-got:
		if n == nil || n.Text != "maintenance tonight" || !n.Urgent || n.Sender != "olga" {
			t.Fatalf("streamed %v", n)
		}
	case <-wctx.Done():
		t.Fatal("the watch saw nothing")
	}
	// A member may not write to the project; only its owner and admins.
	_, err = h.notifications.Send(ctx, req(&trellisv1.NotificationsSendRequest{ToProject: "lab", Text: "hi"}, member))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = h.notifications.Send(ctx, req(&trellisv1.NotificationsSendRequest{ToUser: "olga", Text: "hi"}, member))
	wantCode(t, err, connect.CodePermissionDenied)

	// Filters and marks.
	unread, err := h.notifications.List(ctx, req(&trellisv1.NotificationsListRequest{UnreadOnly: true, UrgentOnly: true}, member))
	if err != nil || len(unread.Msg.Notifications) != 1 {
		t.Fatalf("unread urgent: %v %v", unread, err)
	}
	id := unread.Msg.Notifications[0].Id
	m, err := h.notifications.Mark(ctx, req(&trellisv1.NotificationsMarkRequest{Ids: []int64{id}, Read: proto.Bool(true)}, member))
	if err != nil || m.Msg.Changed != 1 {
		t.Fatalf("mark: %v %v", m, err)
	}
	// Someone else's notification is not theirs to mark.
	m, err = h.notifications.Mark(ctx, req(&trellisv1.NotificationsMarkRequest{Ids: []int64{id}, Read: proto.Bool(false)}, owner))
	if err != nil || m.Msg.Changed != 0 {
		t.Fatalf("marking another's: %v %v", m, err)
	}
	unread, _ = h.notifications.List(ctx, req(&trellisv1.NotificationsListRequest{UnreadOnly: true, UrgentOnly: true}, member))
	if len(unread.Msg.Notifications) != 0 {
		t.Fatalf("still unread: %v", unread.Msg.Notifications)
	}
}
