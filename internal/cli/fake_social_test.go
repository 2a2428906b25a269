package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

// fakeSocial is the fake server's Projects, Circles, Notifications and
// Policy: canned answers that depend on the request just enough to show each
// outcome, and a record of every request by procedure.
type fakeSocial struct {
	srv *fakeServer

	mu       sync.Mutex
	requests map[string][]proto.Message // procedure -> requests, in order

	// holdWatch keeps Watch open after its two notifications until the
	// client goes away, as a real server does.
	holdWatch bool
}

// The four services share method names (AddUsers, SetOwner, ...) with
// different types, so each has its own handler type over the shared record.
type (
	fakeProjects struct {
		trellisv1connect.UnimplementedProjectsHandler
		*fakeSocial
	}
	fakeCircles struct {
		trellisv1connect.UnimplementedCirclesHandler
		*fakeSocial
	}
	fakeNotifications struct {
		trellisv1connect.UnimplementedNotificationsHandler
		*fakeSocial
	}
	fakePolicy struct {
		trellisv1connect.UnimplementedPolicyHandler
		*fakeSocial
	}
)

func mountSocial(srv *fakeServer, mux *http.ServeMux) *fakeSocial {
	s := &fakeSocial{srv: srv, requests: map[string][]proto.Message{}}
	mux.Handle(trellisv1connect.NewProjectsHandler(fakeProjects{fakeSocial: s}))
	mux.Handle(trellisv1connect.NewCirclesHandler(fakeCircles{fakeSocial: s}))
	mux.Handle(trellisv1connect.NewNotificationsHandler(fakeNotifications{fakeSocial: s}))
	mux.Handle(trellisv1connect.NewPolicyHandler(fakePolicy{fakeSocial: s}))
	return s
}

// accept authenticates the caller and records the request under its
// procedure.
func (s *fakeSocial) accept(req connect.AnyRequest) (string, error) {
	uid, err := s.srv.caller(req.Header())
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := req.Spec().Procedure
	s.requests[p] = append(s.requests[p], req.Any().(proto.Message))
	return uid, nil
}

// last returns the last request received for a procedure, or nil.
func (s *fakeSocial) last(proc string) proto.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.requests[proc]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

func (s *fakeSocial) count(proc string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests[proc])
}

var fakeTime = timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func notFound(what string) error {
	return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s not found", what))
}

// Projects.

func fakeProject(name, owner string) *trellisv1.Project {
	return &trellisv1.Project{
		Name:        name,
		Owner:       owner,
		State:       trellisv1.ProjectState_PROJECT_STATE_APPROVED,
		Description: "A lab",
		Children:    []*trellisv1.ChildProject{{Name: "sub", Rights: []string{"realize_experiment"}}},
		CreatedAt:   fakeTime,
		ApprovedAt:  fakeTime,
	}
}

var projectRights = []string{"add_user", "remove_user", "create_circle", "create_experiment", "create_library", "realize_experiment"}

// checkRights refuses unknown rights the way the server does, so that tests
// see that the client passes them through and prints the refusal.
func checkRights(rights []string) error {
	for _, r := range rights {
		if !slices.Contains(projectRights, r) {
			cerr := connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unknown right %q", r))
			d, err := connect.NewErrorDetail(&trellisv1.FieldViolations{Violations: []*trellisv1.FieldViolation{
				{Field: "rights", Rule: "rights.known", Description: fmt.Sprintf("unknown right %q", r)},
			}})
			if err != nil {
				return err
			}
			cerr.AddDetail(d)
			return cerr
		}
	}
	return nil
}

// RequestProject: a vetting request, or a name starting with "v", waits for
// approval; anything else exists at once.
func (f fakeProjects) RequestProject(_ context.Context, req *connect.Request[trellisv1.RequestProjectRequest]) (*connect.Response[trellisv1.RequestProjectResponse], error) {
	uid, err := f.accept(req)
	if err != nil {
		return nil, err
	}
	p := fakeProject(req.Msg.GetName(), uid)
	p.Description, p.Vetting, p.Children = req.Msg.GetDescription(), req.Msg.GetVetting(), nil
	resp := &trellisv1.RequestProjectResponse{Project: p}
	if req.Msg.GetVetting() || strings.HasPrefix(req.Msg.GetName(), "v") {
		p.State, p.ApprovedAt = trellisv1.ProjectState_PROJECT_STATE_PENDING, nil
		resp.RequestId = "req-" + req.Msg.GetName()
	}
	return connect.NewResponse(resp), nil
}

func (f fakeProjects) ApproveProject(_ context.Context, req *connect.Request[trellisv1.ApproveProjectRequest]) (*connect.Response[trellisv1.ApproveProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetName() == "nosuch" {
		return nil, notFound("project nosuch")
	}
	return connect.NewResponse(&trellisv1.ApproveProjectResponse{Project: fakeProject(req.Msg.GetName(), "carol")}), nil
}

func (f fakeProjects) RejectProject(_ context.Context, req *connect.Request[trellisv1.RejectProjectRequest]) (*connect.Response[trellisv1.RejectProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RejectProjectResponse{}), nil
}

func (f fakeProjects) GetProject(_ context.Context, req *connect.Request[trellisv1.GetProjectRequest]) (*connect.Response[trellisv1.GetProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetName() == "nosuch" {
		return nil, notFound("project nosuch")
	}
	return connect.NewResponse(&trellisv1.GetProjectResponse{Project: fakeProject(req.Msg.GetName(), "alice")}), nil
}

// ListProjects serves p0..p4 two per page.
func (f fakeProjects) ListProjects(_ context.Context, req *connect.Request[trellisv1.ListProjectsRequest]) (*connect.Response[trellisv1.ListProjectsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	start := 0
	if tok := req.Msg.GetPageToken(); tok != "" {
		fmt.Sscanf(tok, "p%d", &start)
	}
	resp := &trellisv1.ListProjectsResponse{}
	for i := start; i < 5 && i < start+2; i++ {
		resp.Projects = append(resp.Projects, fakeProject(fmt.Sprintf("p%d", i), "alice"))
	}
	if start+2 < 5 {
		resp.NextPageToken = fmt.Sprintf("p%d", start+2)
	}
	return connect.NewResponse(resp), nil
}

func fakeDescription() []*trellisv1.AttributeDescription {
	return []*trellisv1.AttributeDescription{
		{Name: "URL", Description: "Home page", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE, Optional: true, OrderingHint: 20},
		{Name: "funding", Description: "Funding source", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE, Optional: true, OrderingHint: 10},
	}
}

func (f fakeProjects) GetProfileDescription(_ context.Context, req *connect.Request[trellisv1.ProjectsGetProfileDescriptionRequest]) (*connect.Response[trellisv1.ProjectsGetProfileDescriptionResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsGetProfileDescriptionResponse{Attributes: fakeDescription()}), nil
}

func fakeProfile() []*trellisv1.ProfileAttribute {
	return []*trellisv1.ProfileAttribute{
		{Name: "URL", Value: "https://lab.example.org", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE},
		{Name: "funding", Value: "NSF", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE},
	}
}

func (f fakeProjects) GetProjectProfile(_ context.Context, req *connect.Request[trellisv1.GetProjectProfileRequest]) (*connect.Response[trellisv1.GetProjectProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetProjectProfileResponse{Name: req.Msg.GetName(), Attributes: fakeProfile()}), nil
}

// fakeChanges refuses a URL that is not http(s), keeps funding=NSF unchanged
// and changes everything else.
func fakeChanges(set map[string]string, clear []string) []*trellisv1.AttributeChange {
	var out []*trellisv1.AttributeChange
	for _, k := range sortedKeys(set) {
		v := set[k]
		switch {
		case k == "URL" && !strings.HasPrefix(v, "http"):
			out = append(out, &trellisv1.AttributeChange{Name: k, Rule: "format", Reason: "an http or https URL"})
		case k == "funding" && v == "NSF":
			out = append(out, &trellisv1.AttributeChange{Name: k})
		default:
			out = append(out, &trellisv1.AttributeChange{Name: k, Changed: true})
		}
	}
	for _, k := range clear {
		out = append(out, &trellisv1.AttributeChange{Name: k, Changed: true})
	}
	return out
}

func (f fakeProjects) SetProjectProfile(_ context.Context, req *connect.Request[trellisv1.SetProjectProfileRequest]) (*connect.Response[trellisv1.SetProjectProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetProjectProfileResponse{Changes: fakeChanges(req.Msg.GetSet(), req.Msg.GetClear())}), nil
}

// addOutcomes: "ghost" does not exist, "carol" is added at once (an admin's
// no-confirm add, say), anyone else is asked.
func addOutcomes(uids []string) []*trellisv1.UserOutcome {
	var out []*trellisv1.UserOutcome
	for _, u := range uids {
		switch u {
		case "ghost":
			out = append(out, &trellisv1.UserOutcome{Uid: u, Outcome: "failed", Reason: "no such user"})
		case "carol":
			out = append(out, &trellisv1.UserOutcome{Uid: u, Outcome: "added"})
		default:
			out = append(out, &trellisv1.UserOutcome{Uid: u, Outcome: "requested", RequestId: "req-" + u})
		}
	}
	return out
}

// removeOutcomes: the owner "alice" cannot be removed.
func removeOutcomes(uids []string) []*trellisv1.UserOutcome {
	var out []*trellisv1.UserOutcome
	for _, u := range uids {
		if u == "alice" {
			out = append(out, &trellisv1.UserOutcome{Uid: u, Outcome: "failed", Reason: "the owner cannot be removed"})
			continue
		}
		out = append(out, &trellisv1.UserOutcome{Uid: u, Outcome: "removed"})
	}
	return out
}

func (f fakeProjects) AddUsers(_ context.Context, req *connect.Request[trellisv1.ProjectsAddUsersRequest]) (*connect.Response[trellisv1.ProjectsAddUsersResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkRights(req.Msg.GetRights()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsAddUsersResponse{Outcomes: addOutcomes(req.Msg.GetUids())}), nil
}

func (f fakeProjects) JoinProject(_ context.Context, req *connect.Request[trellisv1.JoinProjectRequest]) (*connect.Response[trellisv1.JoinProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.JoinProjectResponse{RequestId: "req-join"}), nil
}

func (f fakeProjects) RemoveUsers(_ context.Context, req *connect.Request[trellisv1.ProjectsRemoveUsersRequest]) (*connect.Response[trellisv1.ProjectsRemoveUsersResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsRemoveUsersResponse{Outcomes: removeOutcomes(req.Msg.GetUids())}), nil
}

func (f fakeProjects) ChangeRights(_ context.Context, req *connect.Request[trellisv1.ProjectsChangeRightsRequest]) (*connect.Response[trellisv1.ProjectsChangeRightsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if err := checkRights(req.Msg.GetRights()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsChangeRightsResponse{Member: &trellisv1.Member{Uid: req.Msg.GetUid(), Rights: req.Msg.GetRights()}}), nil
}

func (f fakeProjects) SetOwner(_ context.Context, req *connect.Request[trellisv1.ProjectsSetOwnerRequest]) (*connect.Response[trellisv1.ProjectsSetOwnerResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsSetOwnerResponse{Project: fakeProject(req.Msg.GetName(), req.Msg.GetUid())}), nil
}

func (f fakeProjects) AddChildProject(_ context.Context, req *connect.Request[trellisv1.AddChildProjectRequest]) (*connect.Response[trellisv1.AddChildProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetParent() == req.Msg.GetChild() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("nesting a project in itself makes a cycle"))
	}
	return connect.NewResponse(&trellisv1.AddChildProjectResponse{Parent: fakeProject(req.Msg.GetParent(), "alice")}), nil
}

func (f fakeProjects) RemoveChildProject(_ context.Context, req *connect.Request[trellisv1.RemoveChildProjectRequest]) (*connect.Response[trellisv1.RemoveChildProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveChildProjectResponse{Parent: fakeProject(req.Msg.GetParent(), "alice")}), nil
}

func (f fakeProjects) RemoveProject(_ context.Context, req *connect.Request[trellisv1.RemoveProjectRequest]) (*connect.Response[trellisv1.RemoveProjectResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveProjectResponse{}), nil
}

func fakeMembers(effective bool) []*trellisv1.Member {
	ms := []*trellisv1.Member{
		{Uid: "alice", Rights: []string{"add_user", "remove_user"}, Owner: true},
		{Uid: "bob", Rights: []string{"realize_experiment"}},
	}
	if effective {
		ms = append(ms, &trellisv1.Member{Uid: "dave", Rights: []string{"realize_experiment"}, Via: "sub"})
	}
	return ms
}

func (f fakeProjects) ListMembers(_ context.Context, req *connect.Request[trellisv1.ListMembersRequest]) (*connect.Response[trellisv1.ListMembersResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListMembersResponse{Members: fakeMembers(req.Msg.GetEffective())}), nil
}

// Circles.

func fakeCircle(id string) *trellisv1.Circle {
	owner, _, _ := strings.Cut(id, ":")
	return &trellisv1.Circle{Id: id, Owner: owner, Members: fakeMembers(false), CreatedAt: fakeTime}
}

func (f fakeCircles) CreateCircle(_ context.Context, req *connect.Request[trellisv1.CreateCircleRequest]) (*connect.Response[trellisv1.CreateCircleResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if !strings.Contains(req.Msg.GetId(), ":") {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("circle id must be owner:name"))
	}
	return connect.NewResponse(&trellisv1.CreateCircleResponse{Circle: fakeCircle(req.Msg.GetId())}), nil
}

func (f fakeCircles) RemoveCircle(_ context.Context, req *connect.Request[trellisv1.RemoveCircleRequest]) (*connect.Response[trellisv1.RemoveCircleResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveCircleResponse{}), nil
}

func (f fakeCircles) GetCircle(_ context.Context, req *connect.Request[trellisv1.GetCircleRequest]) (*connect.Response[trellisv1.GetCircleResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetCircleResponse{Circle: fakeCircle(req.Msg.GetId())}), nil
}

func (f fakeCircles) ListCircles(_ context.Context, req *connect.Request[trellisv1.ListCirclesRequest]) (*connect.Response[trellisv1.ListCirclesResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	auto := fakeCircle("alice:alice")
	auto.Automatic = true
	return connect.NewResponse(&trellisv1.ListCirclesResponse{Circles: []*trellisv1.Circle{auto, fakeCircle("alice:friends")}}), nil
}

func (f fakeCircles) AddUsers(_ context.Context, req *connect.Request[trellisv1.CirclesAddUsersRequest]) (*connect.Response[trellisv1.CirclesAddUsersResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesAddUsersResponse{Outcomes: addOutcomes(req.Msg.GetUids())}), nil
}

func (f fakeCircles) JoinCircle(_ context.Context, req *connect.Request[trellisv1.JoinCircleRequest]) (*connect.Response[trellisv1.JoinCircleResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.JoinCircleResponse{RequestId: "req-cjoin"}), nil
}

func (f fakeCircles) RemoveUsers(_ context.Context, req *connect.Request[trellisv1.CirclesRemoveUsersRequest]) (*connect.Response[trellisv1.CirclesRemoveUsersResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesRemoveUsersResponse{Outcomes: removeOutcomes(req.Msg.GetUids())}), nil
}

func (f fakeCircles) ChangeRights(_ context.Context, req *connect.Request[trellisv1.CirclesChangeRightsRequest]) (*connect.Response[trellisv1.CirclesChangeRightsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesChangeRightsResponse{Member: &trellisv1.Member{Uid: req.Msg.GetUid(), Rights: req.Msg.GetRights()}}), nil
}

func (f fakeCircles) SetOwner(_ context.Context, req *connect.Request[trellisv1.CirclesSetOwnerRequest]) (*connect.Response[trellisv1.CirclesSetOwnerResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	c := fakeCircle(req.Msg.GetId())
	c.Owner = req.Msg.GetUid()
	return connect.NewResponse(&trellisv1.CirclesSetOwnerResponse{Circle: c}), nil
}

func (f fakeCircles) GetProfileDescription(_ context.Context, req *connect.Request[trellisv1.CirclesGetProfileDescriptionRequest]) (*connect.Response[trellisv1.CirclesGetProfileDescriptionResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesGetProfileDescriptionResponse{Attributes: fakeDescription()}), nil
}

func (f fakeCircles) GetCircleProfile(_ context.Context, req *connect.Request[trellisv1.GetCircleProfileRequest]) (*connect.Response[trellisv1.GetCircleProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetCircleProfileResponse{Id: req.Msg.GetId(), Attributes: fakeProfile()}), nil
}

func (f fakeCircles) SetCircleProfile(_ context.Context, req *connect.Request[trellisv1.SetCircleProfileRequest]) (*connect.Response[trellisv1.SetCircleProfileResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetCircleProfileResponse{Changes: fakeChanges(req.Msg.GetSet(), req.Msg.GetClear())}), nil
}

// Notifications.

func fakeNotification(id int64) *trellisv1.Notification {
	n := &trellisv1.Notification{Id: id, Recipient: "alice", Text: fmt.Sprintf("note %d", id), CreatedAt: fakeTime}
	if id%2 == 1 {
		n.Urgent, n.Sender, n.RequestId = true, "bob", fmt.Sprintf("req-%d", id)
	} else {
		n.Read = true
	}
	return n
}

func (f fakeNotifications) List(_ context.Context, req *connect.Request[trellisv1.NotificationsListRequest]) (*connect.Response[trellisv1.NotificationsListResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.NotificationsListResponse{Notifications: []*trellisv1.Notification{fakeNotification(1), fakeNotification(2)}}), nil
}

func (f fakeNotifications) Mark(_ context.Context, req *connect.Request[trellisv1.NotificationsMarkRequest]) (*connect.Response[trellisv1.NotificationsMarkResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.NotificationsMarkResponse{Changed: int32(len(req.Msg.GetIds()))}), nil
}

func (f fakeNotifications) Send(_ context.Context, req *connect.Request[trellisv1.NotificationsSendRequest]) (*connect.Response[trellisv1.NotificationsSendResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	n := int32(3)
	if req.Msg.GetToUser() != "" {
		n = 1
	}
	return connect.NewResponse(&trellisv1.NotificationsSendResponse{Recipients: n}), nil
}

// Watch sends two notifications, then ends the stream (or, with holdWatch,
// waits for the client to leave).
func (f fakeNotifications) Watch(ctx context.Context, req *connect.Request[trellisv1.NotificationsWatchRequest], stream *connect.ServerStream[trellisv1.NotificationsWatchResponse]) error {
	if _, err := f.accept(req); err != nil {
		return err
	}
	for id := int64(1); id <= 2; id++ {
		n := fakeNotification(id)
		if id == 2 {
			n.Text = "line one\n\x1b[31mline two"
		}
		if err := stream.Send(&trellisv1.NotificationsWatchResponse{Notification: n}); err != nil {
			return err
		}
	}
	f.mu.Lock()
	hold := f.holdWatch
	f.mu.Unlock()
	if hold {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f fakeNotifications) ListRequests(_ context.Context, req *connect.Request[trellisv1.ListRequestsRequest]) (*connect.Response[trellisv1.ListRequestsResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListRequestsResponse{Requests: []*trellisv1.PendingRequest{{
		Id:         "req-bob",
		Kind:       trellisv1.RequestKind_REQUEST_KIND_PROJECT_ADD,
		Object:     "project:lab",
		Subject:    "bob",
		Requester:  "alice",
		Rights:     []string{"realize_experiment"},
		CreatedAt:  fakeTime,
		ExpiresAt:  timestamppb.New(fakeTime.AsTime().Add(48 * time.Hour)),
		Actionable: true,
	}}}), nil
}

func (f fakeNotifications) AcceptRequest(_ context.Context, req *connect.Request[trellisv1.AcceptRequestRequest]) (*connect.Response[trellisv1.AcceptRequestResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetId() == "nosuch" {
		return nil, notFound("request nosuch")
	}
	return connect.NewResponse(&trellisv1.AcceptRequestResponse{}), nil
}

func (f fakeNotifications) DeclineRequest(_ context.Context, req *connect.Request[trellisv1.DeclineRequestRequest]) (*connect.Response[trellisv1.DeclineRequestResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetId() == "nosuch" {
		return nil, notFound("request nosuch")
	}
	return connect.NewResponse(&trellisv1.DeclineRequestResponse{}), nil
}

// Policy: only "project.read" is allowed.

func fakeAllowed(action string) bool { return action == "project.read" }

func (f fakePolicy) Check(_ context.Context, req *connect.Request[trellisv1.CheckRequest]) (*connect.Response[trellisv1.CheckResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	if req.Msg.GetObject() == "bogus" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New(`object "bogus": want KIND:NAME`))
	}
	return connect.NewResponse(&trellisv1.CheckResponse{Allowed: fakeAllowed(req.Msg.GetAction())}), nil
}

func (f fakePolicy) Explain(_ context.Context, req *connect.Request[trellisv1.ExplainRequest]) (*connect.Response[trellisv1.ExplainResponse], error) {
	uid, err := f.accept(req)
	if err != nil {
		return nil, err
	}
	if req.Msg.GetUid() != "" {
		uid = req.Msg.GetUid()
	}
	if fakeAllowed(req.Msg.GetAction()) {
		return connect.NewResponse(&trellisv1.ExplainResponse{Allowed: true, Reasons: []string{
			uid + " is a member of project sub",
			"project sub is nested in project lab with rights realize_experiment",
		}}), nil
	}
	return connect.NewResponse(&trellisv1.ExplainResponse{Reasons: []string{
		uid + " has no right " + strings.TrimPrefix(req.Msg.GetAction(), "project.") + " in " + req.Msg.GetObject(),
	}}), nil
}

func (f fakePolicy) ListAllowed(_ context.Context, req *connect.Request[trellisv1.ListAllowedRequest]) (*connect.Response[trellisv1.ListAllowedResponse], error) {
	if _, err := f.accept(req); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListAllowedResponse{Objects: []string{req.Msg.GetKind() + ":lab", req.Msg.GetKind() + ":sub"}}), nil
}
