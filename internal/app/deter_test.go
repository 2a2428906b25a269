package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
)

// grantCircles lists the circles holding rights on an experiment or a
// library, as its owner reads them.
func (h *harness) grantCircles(tok, kind, id string) []string {
	h.t.Helper()
	ctx := context.Background()
	var gs []*trellisv1.Grant
	switch kind {
	case "experiment":
		resp, err := h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: id}, tok))
		if err != nil {
			h.t.Fatalf("get experiment %s: %v", id, err)
		}
		gs = resp.Msg.Experiment.Grants
	default:
		resp, err := h.libraries.GetLibrary(ctx, req(&trellisv1.GetLibraryRequest{Id: id}, tok))
		if err != nil {
			h.t.Fatalf("get library %s: %v", id, err)
		}
		gs = resp.Msg.Library.Grants
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.Circle)
	}
	return out
}

// TestGrantsGoWithCircles: removing a circle, or the project that owns
// circles, removes the rights those circles held on experiments and
// libraries, so a circle or project made later with the same name does not
// inherit them. Users are never removed (uids are permanent), and a uid can
// never become a project's name, so a user's uid:uid circle has no later
// namesake to inherit its grants.
func TestGrantsGoWithCircles(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann, bob := h.newUser("ann"), h.newUser("bob")
			h.approvedProject(adminTok, ann, "lab")
			if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:exp"}, ann)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.libraries.CreateLibrary(ctx, req(&trellisv1.CreateLibraryRequest{Id: "ann:lib"}, ann)); err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"ann:pals", "lab:team"} {
				if _, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: c}, ann)); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []string{"ann:pals", "lab:team", "lab:lab", "bob:bob"} {
				if _, err := h.experiments.ChangeAccess(ctx, req(&trellisv1.ExperimentsChangeAccessRequest{Id: "ann:exp", Circle: c, Rights: []string{"read"}}, ann)); err != nil {
					t.Fatal(err)
				}
				if _, err := h.libraries.ChangeAccess(ctx, req(&trellisv1.LibrariesChangeAccessRequest{Id: "ann:lib", Circle: c, Rights: []string{"read"}}, ann)); err != nil {
					t.Fatal(err)
				}
			}

			// A removed circle's grants go; its namesake starts with none.
			if _, err := h.circles.RemoveCircle(ctx, req(&trellisv1.RemoveCircleRequest{Id: "ann:pals"}, ann)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "ann:pals"}, ann)); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"experiment", "library"} {
				id := "ann:exp"
				if k == "library" {
					id = "ann:lib"
				}
				if got, want := h.grantCircles(ann, k, id), []string{"bob:bob", "lab:lab", "lab:team"}; !slices.Equal(got, want) {
					t.Errorf("%s grants after removing ann:pals = %v, want %v", k, got, want)
				}
			}

			// A removed project's circles (its own and those it owned) lose
			// their grants; a new project of that name inherits nothing.
			if _, err := h.projects.RemoveProject(ctx, req(&trellisv1.RemoveProjectRequest{Name: "lab"}, ann)); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"experiment", "library"} {
				id := "ann:exp"
				if k == "library" {
					id = "ann:lib"
				}
				if got, want := h.grantCircles(ann, k, id), []string{"bob:bob"}; !slices.Equal(got, want) {
					t.Errorf("%s grants after removing project lab = %v, want %v", k, got, want)
				}
			}
			// bob's own grant stands: bob reads; cat, owner of a new lab,
			// does not.
			if _, err := h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: "ann:exp"}, bob)); err != nil {
				t.Errorf("bob reading ann:exp through bob:bob: %v", err)
			}
			cat := h.newUser("cat")
			h.approvedProject(adminTok, cat, "lab")
			_, err := h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: "ann:exp"}, cat))
			wantCode(t, err, connect.CodeNotFound)
			_, err = h.libraries.GetLibrary(ctx, req(&trellisv1.GetLibraryRequest{Id: "ann:lib"}, cat))
			wantCode(t, err, connect.CodeNotFound)

			// A uid is never a project's name, so no project inherits
			// ann:ann's or bob:bob's grants.
			_, err = h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "bob", Description: "x"}, cat))
			if err == nil {
				t.Fatal("a project named after user bob was created")
			}
		})
	}
}

// TestSharedNamespace: users and projects share one namespace on both
// paths: no project may take a uid, and no user may register a project's
// name (their owner:name circles would clash).
func TestSharedNamespace(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann := h.newUser("ann")
			h.approvedProject(adminTok, ann, "lab")
			_, err := h.users.Register(ctx, req(&trellisv1.RegisterRequest{
				Uid: "lab", Email: "lab@uni.example.edu", Password: userPassword,
				Profile: map[string]string{"name": "Lab", "phone": "+1 310 555 0100"},
			}, ""))
			wantMessage(t, err, connect.CodeAlreadyExists, "lab", "namespace")
			_, err = h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "ann", Description: "x"}, ann))
			if err == nil {
				t.Fatal("a project took user ann's uid")
			}
			// A removed project frees its name, for a user too.
			if _, err := h.projects.RemoveProject(ctx, req(&trellisv1.RemoveProjectRequest{Name: "lab"}, ann)); err != nil {
				t.Fatal(err)
			}
			h.newUser("lab")
		})
	}
}

// TestValidPermissionsAPI: GetValidPermissions answers without
// credentials (the vocabulary is the same for everyone), in DETER's order,
// and names the field of a bad kind.
func TestValidPermissionsAPI(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			code, body := h.callBody(t, "trellis.v1.ApiInfo/GetValidPermissions", `{"kind":"library"}`, "")
			if code != "" {
				t.Fatalf("GetValidPermissions: %s %s", code, body)
			}
			resp, err := h.info.GetValidPermissions(context.Background(), req(&trellisv1.GetValidPermissionsRequest{Kind: "experiment"}, ""))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range resp.Msg.Permissions {
				names = append(names, p.Name)
			}
			if want := []string{"read", "modify", "realize", "modify_access"}; !slices.Equal(names, want) {
				t.Errorf("experiment permissions %v, want %v", names, want)
			}
			_, err = h.info.GetValidPermissions(context.Background(), req(&trellisv1.GetValidPermissionsRequest{Kind: "spaceship"}, ""))
			if v := violations(err); v["kind"] != "kind.unknown" {
				t.Errorf("bad kind: %v (%v)", err, v)
			}
		})
	}
}

// addMember has owner invite uid into project with rights, and uid accept.
func (h *harness) addMember(ownerTok, project, uid, uidTok string, rights ...string) {
	h.t.Helper()
	ctx := context.Background()
	add, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: project, Uids: []string{uid}, Rights: rights}, ownerTok))
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, uidTok)); err != nil {
		h.t.Fatal(err)
	}
}

// TestOwnership: an experiment or library made in a project's namespace is
// its creator's; removing it takes its owner or the project's owner;
// SetOwner offers it and the new owner's consent hands it over, through
// the request flow of invitations.
func TestOwnership(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann, bob, cat := h.newUser("ann"), h.newUser("bob"), h.newUser("cat")
			h.approvedProject(adminTok, ann, "lab")
			h.addMember(ann, "lab", "bob", bob, "create_experiment", "create_library")
			h.addMember(ann, "lab", "cat", cat, "create_experiment", "create_library")

			x, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "lab:exp"}, bob))
			if err != nil {
				t.Fatal(err)
			}
			if o := x.Msg.Experiment.Owner; o != "bob" {
				t.Errorf("lab:exp made by bob is owned by %q, want bob", o)
			}
			l, err := h.libraries.CreateLibrary(ctx, req(&trellisv1.CreateLibraryRequest{Id: "lab:lib"}, bob))
			if err != nil {
				t.Fatal(err)
			}
			if o := l.Msg.Library.Owner; o != "bob" {
				t.Errorf("lab:lib made by bob is owned by %q, want bob", o)
			}
			// cat may create in lab but does not own bob's: no removal, no
			// hand-over.
			_, err = h.experiments.RemoveExperiment(ctx, req(&trellisv1.RemoveExperimentRequest{Id: "lab:exp"}, cat))
			wantCode(t, err, connect.CodeNotFound)
			_, err = h.experiments.SetOwner(ctx, req(&trellisv1.ExperimentsSetOwnerRequest{Id: "lab:exp", Uid: "cat"}, cat))
			wantCode(t, err, connect.CodeNotFound)
			// ann, lab's owner, may remove what was made in lab's namespace.
			if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "lab:scratch"}, bob)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.experiments.RemoveExperiment(ctx, req(&trellisv1.RemoveExperimentRequest{Id: "lab:scratch"}, ann)); err != nil {
				t.Errorf("lab's owner removing lab:scratch: %v", err)
			}
			if _, err := h.libraries.CreateLibrary(ctx, req(&trellisv1.CreateLibraryRequest{Id: "lab:old"}, cat)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.libraries.RemoveLibrary(ctx, req(&trellisv1.RemoveLibraryRequest{Id: "lab:old"}, ann)); err != nil {
				t.Errorf("lab's owner removing lab:old: %v", err)
			}

			// lab cannot go while its namespace holds others' work: a later
			// project named lab would gain its owner's power over it.
			_, err = h.projects.RemoveProject(ctx, req(&trellisv1.RemoveProjectRequest{Name: "lab"}, ann))
			wantMessage(t, err, connect.CodeFailedPrecondition, "lab:exp")

			// bob offers lab:exp to cat; nothing changes until cat accepts.
			offer, err := h.experiments.SetOwner(ctx, req(&trellisv1.ExperimentsSetOwnerRequest{Id: "lab:exp", Uid: "cat"}, bob))
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.experiments.SetOwner(ctx, req(&trellisv1.ExperimentsSetOwnerRequest{Id: "lab:exp", Uid: "cat"}, bob))
			wantCode(t, err, connect.CodeAlreadyExists)
			if o := h.experimentOwner(bob, "lab:exp"); o != "bob" {
				t.Errorf("owner before consent = %q", o)
			}
			rs, err := h.notifications.ListRequests(ctx, req(&trellisv1.ListRequestsRequest{}, cat))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range rs.Msg.Requests {
				found = found || (r.Id == offer.Msg.RequestId && r.Actionable)
			}
			if !found {
				t.Errorf("cat does not see the offer as actionable: %v", rs.Msg.Requests)
			}
			// bob cannot accept for cat.
			_, err = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: offer.Msg.RequestId}, bob))
			wantCode(t, err, connect.CodePermissionDenied)
			if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: offer.Msg.RequestId}, cat)); err != nil {
				t.Fatal(err)
			}
			if o := h.experimentOwner(cat, "lab:exp"); o != "cat" {
				t.Errorf("owner after consent = %q, want cat", o)
			}
			// An administrator may offer it on cat's behalf: the offer is
			// cat's (cat is told, and may withdraw it).
			byAdmin, err := h.experiments.SetOwner(ctx, req(&trellisv1.ExperimentsSetOwnerRequest{Id: "lab:exp", Uid: "ann"}, adminTok))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.notifications.DeclineRequest(ctx, req(&trellisv1.DeclineRequestRequest{Id: byAdmin.Msg.RequestId}, cat)); err != nil {
				t.Errorf("cat withdrawing the offer the admin made for it: %v", err)
			}
			// bob no longer owns it: it is cat's to remove or hand on.
			_, err = h.experiments.RemoveExperiment(ctx, req(&trellisv1.RemoveExperimentRequest{Id: "lab:exp"}, bob))
			wantCode(t, err, connect.CodeNotFound)

			// A library offered to two: the first to accept takes it, the
			// other offer lapses; a declined offer changes nothing.
			toAnn, err := h.libraries.SetOwner(ctx, req(&trellisv1.LibrariesSetOwnerRequest{Id: "lab:lib", Uid: "ann"}, bob))
			if err != nil {
				t.Fatal(err)
			}
			toCat, err := h.libraries.SetOwner(ctx, req(&trellisv1.LibrariesSetOwnerRequest{Id: "lab:lib", Uid: "cat"}, bob))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: toCat.Msg.RequestId}, cat)); err != nil {
				t.Fatal(err)
			}
			_, err = h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: toAnn.Msg.RequestId}, ann))
			wantMessage(t, err, connect.CodeFailedPrecondition, "lapsed")
			back, err := h.libraries.SetOwner(ctx, req(&trellisv1.LibrariesSetOwnerRequest{Id: "lab:lib", Uid: "bob"}, cat))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.notifications.DeclineRequest(ctx, req(&trellisv1.DeclineRequestRequest{Id: back.Msg.RequestId, Reason: "no thanks"}, bob)); err != nil {
				t.Fatal(err)
			}
			got, err := h.libraries.GetLibrary(ctx, req(&trellisv1.GetLibraryRequest{Id: "lab:lib"}, cat))
			if err != nil || got.Msg.Library.Owner != "cat" {
				t.Errorf("library after a declined offer: %v %v", got, err)
			}
			if ns := h.notificationsOf(cat); len(ns) == 0 || !strings.Contains(ns[0].Text, "declined") || !strings.Contains(ns[0].Text, "library lab:lib") {
				t.Errorf("cat not told of the decline: %v", ns)
			}
		})
	}
}

func (h *harness) experimentOwner(tok, id string) string {
	h.t.Helper()
	resp, err := h.experiments.GetExperiment(context.Background(), req(&trellisv1.GetExperimentRequest{Id: id}, tok))
	if err != nil {
		h.t.Fatalf("get experiment %s: %v", id, err)
	}
	return resp.Msg.Experiment.Owner
}

// TestListings: the experiments in a library (only those the caller may
// read), libraries by a substring of their id, notifications between two
// times, and Echo.
func TestListings(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			clk := &testClock{now: time.Now().UTC().Truncate(time.Second)}
			h := newServer(t, openStore(t, kind), func(c *app.Config) { c.Now = clk.Now })
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann, bob := h.newUser("ann"), h.newUser("bob")
			h.approvedProject(adminTok, ann, "lab")
			h.approvedProject(adminTok, bob, "bobs")
			for _, id := range []string{"ann:a1", "ann:a2", "ann:a3", "ann:secret"} {
				if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: id}, ann)); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"ann:shelf", "ann:classics", "lab:shelf-2"} {
				if _, err := h.libraries.CreateLibrary(ctx, req(&trellisv1.CreateLibraryRequest{Id: id}, ann)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := h.libraries.AddExperiments(ctx, req(&trellisv1.AddExperimentsRequest{Id: "ann:shelf", Experiments: []string{"ann:a3", "ann:a1", "ann:a2", "ann:secret"}}, ann)); err != nil {
				t.Fatal(err)
			}
			// bob reads the library and a1..a3, not ann:secret.
			if _, err := h.libraries.ChangeAccess(ctx, req(&trellisv1.LibrariesChangeAccessRequest{Id: "ann:shelf", Circle: "bob:bob", Rights: []string{"read"}}, ann)); err != nil {
				t.Fatal(err)
			}
			for _, x := range []string{"ann:a1", "ann:a2", "ann:a3"} {
				if _, err := h.experiments.ChangeAccess(ctx, req(&trellisv1.ExperimentsChangeAccessRequest{Id: x, Circle: "bob:bob", Rights: []string{"read"}}, ann)); err != nil {
					t.Fatal(err)
				}
			}
			page := func(tok, token string) ([]string, string) {
				t.Helper()
				resp, err := h.libraries.ListLibraryExperiments(ctx, req(&trellisv1.ListLibraryExperimentsRequest{Id: "ann:shelf", PageSize: 2, PageToken: token}, tok))
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, x := range resp.Msg.Experiments {
					ids = append(ids, x.Id)
				}
				return ids, resp.Msg.NextPageToken
			}
			first, next := page(bob, "")
			second, last := page(bob, next)
			if !slices.Equal(first, []string{"ann:a1", "ann:a2"}) || !slices.Equal(second, []string{"ann:a3"}) || next == "" || last != "" {
				t.Errorf("bob's pages: %v %q %v %q", first, next, second, last)
			}
			if all, _ := page(ann, ""); !slices.Equal(all, []string{"ann:a1", "ann:a2"}) {
				t.Errorf("ann's first page: %v", all)
			}
			_, err := h.libraries.ListLibraryExperiments(ctx, req(&trellisv1.ListLibraryExperimentsRequest{Id: "ann:classics"}, bob))
			wantCode(t, err, connect.CodeNotFound)

			// Libraries by a substring of the id.
			for text, want := range map[string][]string{"shelf": {"ann:shelf", "lab:shelf-2"}, "ann:": {"ann:classics", "ann:shelf"}, "%": nil} {
				resp, err := h.libraries.ListLibraries(ctx, req(&trellisv1.ListLibrariesRequest{Text: text}, ann))
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, l := range resp.Msg.Libraries {
					ids = append(ids, l.Id)
				}
				if !slices.Equal(ids, want) {
					t.Errorf("libraries with %q: %v, want %v", text, ids, want)
				}
			}

			// Notifications between two times: the ones created at or after
			// since and before until. The admin writes one a minute.
			start := clk.Now()
			for i := range 4 {
				clk.set(start.Add(time.Duration(i+1) * time.Minute))
				if _, err := h.notifications.Send(ctx, req(&trellisv1.NotificationsSendRequest{ToUser: "bob", Text: fmt.Sprintf("minute %d", i+1)}, adminTok)); err != nil {
					t.Fatal(err)
				}
			}
			at := func(m int) *timestamppb.Timestamp { return timestamppb.New(start.Add(time.Duration(m) * time.Minute)) }
			for _, c := range []struct {
				since, until *timestamppb.Timestamp
				want         []string
			}{
				{at(2), at(4), []string{"minute 3", "minute 2"}},
				{at(2), nil, []string{"minute 4", "minute 3", "minute 2"}},
				{nil, at(2), []string{"minute 1"}},
				{at(1), at(5), []string{"minute 4", "minute 3", "minute 2", "minute 1"}},
			} {
				resp, err := h.notifications.List(ctx, req(&trellisv1.NotificationsListRequest{Since: c.since, Until: c.until}, bob))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, n := range resp.Msg.Notifications {
					if strings.HasPrefix(n.Text, "minute") {
						got = append(got, n.Text)
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("since %v until %v: %v, want %v", c.since.AsTime(), c.until.AsTime(), got, c.want)
				}
			}
			_, err = h.notifications.List(ctx, req(&trellisv1.NotificationsListRequest{Since: at(3), Until: at(2)}, bob))
			if v := violations(err); v["until"] != "until.before_since" {
				t.Errorf("until before since: %v", err)
			}

			// Echo answers the caller and the message; it needs credentials.
			echo, err := h.auth.Echo(ctx, req(&trellisv1.EchoRequest{Message: "hello ☃"}, bob))
			if err != nil || echo.Msg.Uid != "bob" || echo.Msg.Message != "hello ☃" {
				t.Errorf("echo: %v %v", echo, err)
			}
			_, err = h.auth.Echo(ctx, req(&trellisv1.EchoRequest{Message: "hello"}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)
			_, err = h.auth.Echo(ctx, req(&trellisv1.EchoRequest{Message: strings.Repeat("x", 1025)}, bob))
			if v := violations(err); v["message"] != "message.too_long" {
				t.Errorf("long echo: %v", err)
			}
		})
	}
}

// testClock is a clock the test sets.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestSharedNamespaceRace: registrations of a uid and requests for a
// project of the same name, all at once through the API: exactly one
// succeeds, on both stores, whichever path it took.
func TestSharedNamespaceRace(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			ann := h.newUser("ann")
			h.approvedProject(adminTok, ann, "lab")
			for round := range 3 {
				name := fmt.Sprintf("racer%d", round)
				const n = 6
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						if i%2 == 0 {
							_, errs[i] = h.users.Register(ctx, req(&trellisv1.RegisterRequest{
								Uid: name, Email: fmt.Sprintf("%s-%d@uni.example.edu", name, i), Password: userPassword,
								Profile: map[string]string{"name": "Racer", "phone": "+1 310 555 0100"},
							}, ""))
							return
						}
						_, errs[i] = h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: name, Description: "race"}, ann))
					})
				}
				wg.Wait()
				wins := 0
				for i, err := range errs {
					switch code := connect.CodeOf(err); {
					case err == nil:
						wins++
					case code != connect.CodeAlreadyExists && code != connect.CodeInvalidArgument:
						t.Errorf("round %d, caller %d: %v", round, i, err)
					}
				}
				if wins != 1 {
					t.Errorf("round %d: %d callers got %s, want exactly 1 (%v)", round, wins, name, errs)
				}
			}
		})
	}
}
