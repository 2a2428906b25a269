package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

func projectToProto(v *service.ProjectView) *trellisv1.Project {
	out := &trellisv1.Project{
		Name: v.Name, Owner: v.Owner, Vetting: v.Vetting, Description: v.Description,
		Parents: v.Parents, CreatedAt: ts(v.CreatedAt), ApprovedAt: ts(v.ApprovedAt),
		State: trellisv1.ProjectState_PROJECT_STATE_PENDING,
	}
	if v.State == domain.ProjectApproved {
		out.State = trellisv1.ProjectState_PROJECT_STATE_APPROVED
	}
	for _, c := range v.Children {
		out.Children = append(out.Children, &trellisv1.ChildProject{Name: c.Child, Rights: c.Rights.Names()})
	}
	return out
}

func membersToProto(ms []policy.Member) []*trellisv1.Member {
	out := make([]*trellisv1.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &trellisv1.Member{Uid: m.UID, Rights: m.Rights.Names(), Owner: m.Owner, Via: m.Via})
	}
	return out
}

func outcomesToProto(os []service.Outcome) []*trellisv1.UserOutcome {
	out := make([]*trellisv1.UserOutcome, 0, len(os))
	for _, o := range os {
		out = append(out, &trellisv1.UserOutcome{Uid: o.UID, Outcome: o.Outcome, RequestId: o.RequestID, Reason: o.Reason})
	}
	return out
}

func membershipToProto(m *domain.Membership, owner bool) *trellisv1.Member {
	return &trellisv1.Member{Uid: m.UID, Rights: m.Rights.Names(), Owner: owner}
}

func circleToProto(v *service.CircleView) *trellisv1.Circle {
	out := &trellisv1.Circle{Id: v.ID, Owner: v.Owner, Automatic: v.Automatic, Members: membersToProto(v.Members)}
	if v.Circle != nil {
		out.CreatedAt = ts(v.Circle.CreatedAt)
	}
	return out
}

var requestKinds = map[domain.RequestKind]trellisv1.RequestKind{
	domain.RequestProjectAdd:      trellisv1.RequestKind_REQUEST_KIND_PROJECT_ADD,
	domain.RequestProjectJoin:     trellisv1.RequestKind_REQUEST_KIND_PROJECT_JOIN,
	domain.RequestCircleAdd:       trellisv1.RequestKind_REQUEST_KIND_CIRCLE_ADD,
	domain.RequestCircleJoin:      trellisv1.RequestKind_REQUEST_KIND_CIRCLE_JOIN,
	domain.RequestProjectApproval: trellisv1.RequestKind_REQUEST_KIND_PROJECT_APPROVAL,
}

func notificationToProto(n *domain.Notification) *trellisv1.Notification {
	return &trellisv1.Notification{
		Id: n.ID, Recipient: n.Recipient, Sender: n.Sender, Text: n.Text, Urgent: n.Urgent,
		Read: n.Read, CreatedAt: ts(n.CreatedAt), RequestId: n.RequestID,
	}
}

type projectsHandler struct{ svc *service.Service }

func (h *projectsHandler) RequestProject(ctx context.Context, req *connect.Request[trellisv1.RequestProjectRequest]) (*connect.Response[trellisv1.RequestProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	proj, reqID, err := h.svc.Social.RequestProject(ctx, p, req.Msg.Name, req.Msg.Description, req.Msg.Vetting)
	if err != nil {
		return nil, err
	}
	v := &service.ProjectView{Project: proj, Description: req.Msg.Description}
	return connect.NewResponse(&trellisv1.RequestProjectResponse{Project: projectToProto(v), RequestId: reqID}), nil
}

func (h *projectsHandler) ApproveProject(ctx context.Context, req *connect.Request[trellisv1.ApproveProjectRequest]) (*connect.Response[trellisv1.ApproveProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.Social.ApproveProject(ctx, p, req.Msg.Name); err != nil {
		return nil, err
	}
	v, err := h.svc.Social.GetProject(ctx, p, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ApproveProjectResponse{Project: projectToProto(v)}), nil
}

func (h *projectsHandler) RejectProject(ctx context.Context, req *connect.Request[trellisv1.RejectProjectRequest]) (*connect.Response[trellisv1.RejectProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Social.RejectProject(ctx, p, req.Msg.Name, req.Msg.Reason); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RejectProjectResponse{}), nil
}

func (h *projectsHandler) GetProject(ctx context.Context, req *connect.Request[trellisv1.GetProjectRequest]) (*connect.Response[trellisv1.GetProjectResponse], error) {
	v, err := h.svc.Social.GetProject(ctx, caller(ctx), req.Msg.Name)
	return reply(v, err, func(v *service.ProjectView) *trellisv1.GetProjectResponse {
		return &trellisv1.GetProjectResponse{Project: projectToProto(v)}
	})
}

func (h *projectsHandler) ListProjects(ctx context.Context, req *connect.Request[trellisv1.ListProjectsRequest]) (*connect.Response[trellisv1.ListProjectsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	vs, next, err := h.svc.Social.ListProjects(ctx, p, service.ProjectQuery{
		Prefix: req.Msg.NamePrefix, Member: req.Msg.Member, IncludePending: req.Msg.IncludePending,
		PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken,
	})
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListProjectsResponse{NextPageToken: next}
	for _, v := range vs {
		resp.Projects = append(resp.Projects, projectToProto(v))
	}
	return connect.NewResponse(resp), nil
}

func (h *projectsHandler) GetProfileDescription(context.Context, *connect.Request[trellisv1.ProjectsGetProfileDescriptionRequest]) (*connect.Response[trellisv1.ProjectsGetProfileDescriptionResponse], error) {
	return connect.NewResponse(&trellisv1.ProjectsGetProfileDescriptionResponse{Attributes: descriptionToProto(domain.ProjectProfile)}), nil
}

func (h *projectsHandler) GetProjectProfile(ctx context.Context, req *connect.Request[trellisv1.GetProjectProfileRequest]) (*connect.Response[trellisv1.GetProjectProfileResponse], error) {
	vals, err := h.svc.Social.GetProjectProfile(ctx, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetProjectProfileResponse{Name: req.Msg.Name, Attributes: profileToProto(vals)}), nil
}

func (h *projectsHandler) SetProjectProfile(ctx context.Context, req *connect.Request[trellisv1.SetProjectProfileRequest]) (*connect.Response[trellisv1.SetProjectProfileResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := h.svc.Social.SetProjectProfile(ctx, p, req.Msg.Name, req.Msg.Set, req.Msg.Clear)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetProjectProfileResponse{Changes: changesToProto(ch)}), nil
}

func (h *projectsHandler) AddUsers(ctx context.Context, req *connect.Request[trellisv1.ProjectsAddUsersRequest]) (*connect.Response[trellisv1.ProjectsAddUsersResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	os, err := h.svc.Social.AddProjectUsers(ctx, p, req.Msg.Name, req.Msg.Uids, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsAddUsersResponse{Outcomes: outcomesToProto(os)}), nil
}

func (h *projectsHandler) JoinProject(ctx context.Context, req *connect.Request[trellisv1.JoinProjectRequest]) (*connect.Response[trellisv1.JoinProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := h.svc.Social.JoinProject(ctx, p, req.Msg.Name, req.Msg.Message)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.JoinProjectResponse{RequestId: id}), nil
}

func (h *projectsHandler) RemoveUsers(ctx context.Context, req *connect.Request[trellisv1.ProjectsRemoveUsersRequest]) (*connect.Response[trellisv1.ProjectsRemoveUsersResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	os, err := h.svc.Social.RemoveProjectUsers(ctx, p, req.Msg.Name, req.Msg.Uids)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsRemoveUsersResponse{Outcomes: outcomesToProto(os)}), nil
}

func (h *projectsHandler) ChangeRights(ctx context.Context, req *connect.Request[trellisv1.ProjectsChangeRightsRequest]) (*connect.Response[trellisv1.ProjectsChangeRightsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	m, err := h.svc.Social.ChangeProjectRights(ctx, p, req.Msg.Name, req.Msg.Uid, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsChangeRightsResponse{Member: membershipToProto(m, false)}), nil
}

func (h *projectsHandler) SetOwner(ctx context.Context, req *connect.Request[trellisv1.ProjectsSetOwnerRequest]) (*connect.Response[trellisv1.ProjectsSetOwnerResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := h.svc.Social.SetProjectOwner(ctx, p, req.Msg.Name, req.Msg.Uid); err != nil {
		return nil, err
	}
	v, err := h.svc.Social.GetProject(ctx, p, req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ProjectsSetOwnerResponse{Project: projectToProto(v)}), nil
}

func (h *projectsHandler) AddChildProject(ctx context.Context, req *connect.Request[trellisv1.AddChildProjectRequest]) (*connect.Response[trellisv1.AddChildProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Social.AddChildProject(ctx, p, req.Msg.Parent, req.Msg.Child, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.AddChildProjectResponse{Parent: projectToProto(v)}), nil
}

func (h *projectsHandler) RemoveChildProject(ctx context.Context, req *connect.Request[trellisv1.RemoveChildProjectRequest]) (*connect.Response[trellisv1.RemoveChildProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Social.RemoveChildProject(ctx, p, req.Msg.Parent, req.Msg.Child)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveChildProjectResponse{Parent: projectToProto(v)}), nil
}

func (h *projectsHandler) RemoveProject(ctx context.Context, req *connect.Request[trellisv1.RemoveProjectRequest]) (*connect.Response[trellisv1.RemoveProjectResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Social.RemoveProject(ctx, p, req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveProjectResponse{}), nil
}

func (h *projectsHandler) ListMembers(ctx context.Context, req *connect.Request[trellisv1.ListMembersRequest]) (*connect.Response[trellisv1.ListMembersResponse], error) {
	ms, err := h.svc.Social.ListProjectMembers(ctx, req.Msg.Name, req.Msg.Effective)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListMembersResponse{Members: membersToProto(ms)}), nil
}

type circlesHandler struct{ svc *service.Service }

func (h *circlesHandler) CreateCircle(ctx context.Context, req *connect.Request[trellisv1.CreateCircleRequest]) (*connect.Response[trellisv1.CreateCircleResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Social.CreateCircle(ctx, p, req.Msg.Id, req.Msg.Description)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CreateCircleResponse{Circle: circleToProto(v)}), nil
}

func (h *circlesHandler) RemoveCircle(ctx context.Context, req *connect.Request[trellisv1.RemoveCircleRequest]) (*connect.Response[trellisv1.RemoveCircleResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Social.RemoveCircle(ctx, p, req.Msg.Id); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveCircleResponse{}), nil
}

func (h *circlesHandler) GetCircle(ctx context.Context, req *connect.Request[trellisv1.GetCircleRequest]) (*connect.Response[trellisv1.GetCircleResponse], error) {
	v, err := h.svc.Social.GetCircle(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetCircleResponse{Circle: circleToProto(v)}), nil
}

func (h *circlesHandler) ListCircles(ctx context.Context, req *connect.Request[trellisv1.ListCirclesRequest]) (*connect.Response[trellisv1.ListCirclesResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	vs, next, err := h.svc.Social.ListCircles(ctx, p, req.Msg.Owner, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListCirclesResponse{NextPageToken: next}
	for _, v := range vs {
		resp.Circles = append(resp.Circles, circleToProto(v))
	}
	return connect.NewResponse(resp), nil
}

func (h *circlesHandler) AddUsers(ctx context.Context, req *connect.Request[trellisv1.CirclesAddUsersRequest]) (*connect.Response[trellisv1.CirclesAddUsersResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	os, err := h.svc.Social.AddCircleUsers(ctx, p, req.Msg.Id, req.Msg.Uids, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesAddUsersResponse{Outcomes: outcomesToProto(os)}), nil
}

func (h *circlesHandler) JoinCircle(ctx context.Context, req *connect.Request[trellisv1.JoinCircleRequest]) (*connect.Response[trellisv1.JoinCircleResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := h.svc.Social.JoinCircle(ctx, p, req.Msg.Id, req.Msg.Message)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.JoinCircleResponse{RequestId: id}), nil
}

func (h *circlesHandler) RemoveUsers(ctx context.Context, req *connect.Request[trellisv1.CirclesRemoveUsersRequest]) (*connect.Response[trellisv1.CirclesRemoveUsersResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	os, err := h.svc.Social.RemoveCircleUsers(ctx, p, req.Msg.Id, req.Msg.Uids)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesRemoveUsersResponse{Outcomes: outcomesToProto(os)}), nil
}

func (h *circlesHandler) ChangeRights(ctx context.Context, req *connect.Request[trellisv1.CirclesChangeRightsRequest]) (*connect.Response[trellisv1.CirclesChangeRightsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	m, err := h.svc.Social.ChangeCircleRights(ctx, p, req.Msg.Id, req.Msg.Uid, req.Msg.Rights)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesChangeRightsResponse{Member: membershipToProto(m, false)}), nil
}

func (h *circlesHandler) SetOwner(ctx context.Context, req *connect.Request[trellisv1.CirclesSetOwnerRequest]) (*connect.Response[trellisv1.CirclesSetOwnerResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Social.SetCircleOwner(ctx, p, req.Msg.Id, req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CirclesSetOwnerResponse{Circle: circleToProto(v)}), nil
}

func (h *circlesHandler) GetProfileDescription(context.Context, *connect.Request[trellisv1.CirclesGetProfileDescriptionRequest]) (*connect.Response[trellisv1.CirclesGetProfileDescriptionResponse], error) {
	return connect.NewResponse(&trellisv1.CirclesGetProfileDescriptionResponse{Attributes: descriptionToProto(domain.CircleProfile)}), nil
}

func (h *circlesHandler) GetCircleProfile(ctx context.Context, req *connect.Request[trellisv1.GetCircleProfileRequest]) (*connect.Response[trellisv1.GetCircleProfileResponse], error) {
	vals, err := h.svc.Social.GetCircleProfile(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetCircleProfileResponse{Id: req.Msg.Id, Attributes: profileToProto(vals)}), nil
}

func (h *circlesHandler) SetCircleProfile(ctx context.Context, req *connect.Request[trellisv1.SetCircleProfileRequest]) (*connect.Response[trellisv1.SetCircleProfileResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := h.svc.Social.SetCircleProfile(ctx, p, req.Msg.Id, req.Msg.Set, req.Msg.Clear)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetCircleProfileResponse{Changes: changesToProto(ch)}), nil
}

type notificationsHandler struct{ svc *service.Service }

func (h *notificationsHandler) List(ctx context.Context, req *connect.Request[trellisv1.NotificationsListRequest]) (*connect.Response[trellisv1.NotificationsListResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	q := service.NotificationQuery{
		NotificationFilter: store.NotificationFilter{UnreadOnly: req.Msg.UnreadOnly, UrgentOnly: req.Msg.UrgentOnly},
		PageSize:           req.Msg.PageSize, PageToken: req.Msg.PageToken,
	}
	if req.Msg.Since != nil {
		q.Since = req.Msg.Since.AsTime()
	}
	ns, next, err := h.svc.Social.ListNotifications(ctx, p, q)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.NotificationsListResponse{NextPageToken: next}
	for _, n := range ns {
		resp.Notifications = append(resp.Notifications, notificationToProto(n))
	}
	return connect.NewResponse(resp), nil
}

func (h *notificationsHandler) Mark(ctx context.Context, req *connect.Request[trellisv1.NotificationsMarkRequest]) (*connect.Response[trellisv1.NotificationsMarkResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	n, err := h.svc.Social.MarkNotifications(ctx, p, req.Msg.Ids, req.Msg.Read, req.Msg.Urgent)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.NotificationsMarkResponse{Changed: int32(n)}), nil
}

func (h *notificationsHandler) Send(ctx context.Context, req *connect.Request[trellisv1.NotificationsSendRequest]) (*connect.Response[trellisv1.NotificationsSendResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	n, err := h.svc.Social.SendNotification(ctx, p, service.Target{User: req.Msg.ToUser, Project: req.Msg.ToProject, Circle: req.Msg.ToCircle}, req.Msg.Text, req.Msg.Urgent)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.NotificationsSendResponse{Recipients: int32(n)}), nil
}

func (h *notificationsHandler) Watch(ctx context.Context, _ *connect.Request[trellisv1.NotificationsWatchRequest], stream *connect.ServerStream[trellisv1.NotificationsWatchResponse]) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	ready := func() error {
		return stream.Send(&trellisv1.NotificationsWatchResponse{Created: true})
	}
	return h.svc.Social.WatchNotifications(ctx, p, ready, func(n *domain.Notification) error {
		return stream.Send(&trellisv1.NotificationsWatchResponse{Notification: notificationToProto(n)})
	})
}

func (h *notificationsHandler) ListRequests(ctx context.Context, _ *connect.Request[trellisv1.ListRequestsRequest]) (*connect.Response[trellisv1.ListRequestsResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := h.svc.Social.ListRequests(ctx, p)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListRequestsResponse{}
	for _, r := range rs {
		resp.Requests = append(resp.Requests, &trellisv1.PendingRequest{
			Id: r.ID, Kind: requestKinds[r.Kind], Object: r.Object, Subject: r.Subject, Requester: r.Requester,
			Rights: r.Rights.Names(), Message: r.Message, CreatedAt: ts(r.CreatedAt), ExpiresAt: ts(r.ExpiresAt),
			Actionable: r.Actionable,
		})
	}
	return connect.NewResponse(resp), nil
}

func (h *notificationsHandler) AcceptRequest(ctx context.Context, req *connect.Request[trellisv1.AcceptRequestRequest]) (*connect.Response[trellisv1.AcceptRequestResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Social.AcceptRequest(ctx, p, req.Msg.Id); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.AcceptRequestResponse{}), nil
}

func (h *notificationsHandler) DeclineRequest(ctx context.Context, req *connect.Request[trellisv1.DeclineRequestRequest]) (*connect.Response[trellisv1.DeclineRequestResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Social.DeclineRequest(ctx, p, req.Msg.Id, req.Msg.Reason); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.DeclineRequestResponse{}), nil
}

type policyHandler struct{ svc *service.Service }

func (h *policyHandler) Check(ctx context.Context, req *connect.Request[trellisv1.CheckRequest]) (*connect.Response[trellisv1.CheckResponse], error) {
	_, uid, err := target(ctx, req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	d, err := h.svc.Social.Check(ctx, uid, req.Msg.Action, req.Msg.Object)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CheckResponse{Allowed: d.Allowed}), nil
}

func (h *policyHandler) Explain(ctx context.Context, req *connect.Request[trellisv1.ExplainRequest]) (*connect.Response[trellisv1.ExplainResponse], error) {
	_, uid, err := target(ctx, req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	d, err := h.svc.Social.Explain(ctx, uid, req.Msg.Action, req.Msg.Object)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExplainResponse{Allowed: d.Allowed, Reasons: d.Reasons}), nil
}

func (h *policyHandler) ListAllowed(ctx context.Context, req *connect.Request[trellisv1.ListAllowedRequest]) (*connect.Response[trellisv1.ListAllowedResponse], error) {
	_, uid, err := target(ctx, req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	objs, err := h.svc.Social.ListAllowed(ctx, uid, req.Msg.Action, req.Msg.Kind)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListAllowedResponse{Objects: objs}), nil
}
