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
	proj, reqID, err := h.svc.Social.RequestProject(ctx, caller(ctx), req.Msg.Name, req.Msg.Description, req.Msg.Profile, req.Msg.Vetting)
	return reply(proj, err, func(proj *domain.Project) *trellisv1.RequestProjectResponse {
		v := &service.ProjectView{Project: proj, Description: req.Msg.Description}
		return &trellisv1.RequestProjectResponse{Project: projectToProto(v), RequestId: reqID}
	})
}

func (h *projectsHandler) ApproveProject(ctx context.Context, req *connect.Request[trellisv1.ApproveProjectRequest]) (*connect.Response[trellisv1.ApproveProjectResponse], error) {
	v, err := h.svc.Social.ApproveProject(ctx, caller(ctx), req.Msg.Name)
	return reply(v, err, func(v *service.ProjectView) *trellisv1.ApproveProjectResponse {
		return &trellisv1.ApproveProjectResponse{Project: projectToProto(v)}
	})
}

func (h *projectsHandler) RejectProject(ctx context.Context, req *connect.Request[trellisv1.RejectProjectRequest]) (*connect.Response[trellisv1.RejectProjectResponse], error) {
	return done[trellisv1.RejectProjectResponse](h.svc.Social.RejectProject(ctx, caller(ctx), req.Msg.Name, req.Msg.Reason))
}

func (h *projectsHandler) GetProject(ctx context.Context, req *connect.Request[trellisv1.GetProjectRequest]) (*connect.Response[trellisv1.GetProjectResponse], error) {
	v, err := h.svc.Social.GetProject(ctx, caller(ctx), req.Msg.Name)
	return reply(v, err, func(v *service.ProjectView) *trellisv1.GetProjectResponse {
		return &trellisv1.GetProjectResponse{Project: projectToProto(v)}
	})
}

func (h *projectsHandler) ListProjects(ctx context.Context, req *connect.Request[trellisv1.ListProjectsRequest]) (*connect.Response[trellisv1.ListProjectsResponse], error) {
	vs, next, err := h.svc.Social.ListProjects(ctx, caller(ctx), service.ProjectQuery{
		Prefix: req.Msg.NamePrefix, Member: req.Msg.Member, IncludePending: req.Msg.IncludePending,
		PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken,
	})
	return reply(vs, err, func(vs []*service.ProjectView) *trellisv1.ListProjectsResponse {
		resp := &trellisv1.ListProjectsResponse{NextPageToken: next}
		for _, v := range vs {
			resp.Projects = append(resp.Projects, projectToProto(v))
		}
		return resp
	})
}

func (h *projectsHandler) GetProfileDescription(ctx context.Context, _ *connect.Request[trellisv1.ProjectsGetProfileDescriptionRequest]) (*connect.Response[trellisv1.ProjectsGetProfileDescriptionResponse], error) {
	d, err := h.svc.Social.GetProjectProfileDescription(ctx, caller(ctx))
	return reply(d, err, func(d *domain.ProfileDescription) *trellisv1.ProjectsGetProfileDescriptionResponse {
		return &trellisv1.ProjectsGetProfileDescriptionResponse{Attributes: descriptionToProto(d)}
	})
}

func (h *projectsHandler) GetProjectProfile(ctx context.Context, req *connect.Request[trellisv1.GetProjectProfileRequest]) (*connect.Response[trellisv1.GetProjectProfileResponse], error) {
	vals, err := h.svc.Social.GetProjectProfile(ctx, caller(ctx), req.Msg.Name)
	return reply(vals, err, func(vals []domain.ProfileValue) *trellisv1.GetProjectProfileResponse {
		return &trellisv1.GetProjectProfileResponse{Name: req.Msg.Name, Attributes: profileToProto(vals)}
	})
}

func (h *projectsHandler) SetProjectProfile(ctx context.Context, req *connect.Request[trellisv1.SetProjectProfileRequest]) (*connect.Response[trellisv1.SetProjectProfileResponse], error) {
	ch, err := h.svc.Social.SetProjectProfile(ctx, caller(ctx), req.Msg.Name, req.Msg.Set, req.Msg.Clear)
	return reply(ch, err, func(ch []domain.AttributeChange) *trellisv1.SetProjectProfileResponse {
		return &trellisv1.SetProjectProfileResponse{Changes: changesToProto(ch)}
	})
}

func (h *projectsHandler) AddUsers(ctx context.Context, req *connect.Request[trellisv1.ProjectsAddUsersRequest]) (*connect.Response[trellisv1.ProjectsAddUsersResponse], error) {
	os, err := h.svc.Social.AddProjectUsers(ctx, caller(ctx), req.Msg.Name, req.Msg.Uids, req.Msg.Rights)
	return reply(os, err, func(os []service.Outcome) *trellisv1.ProjectsAddUsersResponse {
		return &trellisv1.ProjectsAddUsersResponse{Outcomes: outcomesToProto(os)}
	})
}

func (h *projectsHandler) JoinProject(ctx context.Context, req *connect.Request[trellisv1.JoinProjectRequest]) (*connect.Response[trellisv1.JoinProjectResponse], error) {
	id, err := h.svc.Social.JoinProject(ctx, caller(ctx), req.Msg.Name, req.Msg.Message)
	return reply(id, err, func(id string) *trellisv1.JoinProjectResponse {
		return &trellisv1.JoinProjectResponse{RequestId: id}
	})
}

func (h *projectsHandler) RemoveUsers(ctx context.Context, req *connect.Request[trellisv1.ProjectsRemoveUsersRequest]) (*connect.Response[trellisv1.ProjectsRemoveUsersResponse], error) {
	os, err := h.svc.Social.RemoveProjectUsers(ctx, caller(ctx), req.Msg.Name, req.Msg.Uids)
	return reply(os, err, func(os []service.Outcome) *trellisv1.ProjectsRemoveUsersResponse {
		return &trellisv1.ProjectsRemoveUsersResponse{Outcomes: outcomesToProto(os)}
	})
}

func (h *projectsHandler) ChangeRights(ctx context.Context, req *connect.Request[trellisv1.ProjectsChangeRightsRequest]) (*connect.Response[trellisv1.ProjectsChangeRightsResponse], error) {
	m, err := h.svc.Social.ChangeProjectRights(ctx, caller(ctx), req.Msg.Name, req.Msg.Uid, req.Msg.Rights)
	return reply(m, err, func(m *domain.Membership) *trellisv1.ProjectsChangeRightsResponse {
		return &trellisv1.ProjectsChangeRightsResponse{Member: membershipToProto(m, false)}
	})
}

func (h *projectsHandler) SetOwner(ctx context.Context, req *connect.Request[trellisv1.ProjectsSetOwnerRequest]) (*connect.Response[trellisv1.ProjectsSetOwnerResponse], error) {
	v, err := h.svc.Social.SetProjectOwner(ctx, caller(ctx), req.Msg.Name, req.Msg.Uid)
	return reply(v, err, func(v *service.ProjectView) *trellisv1.ProjectsSetOwnerResponse {
		return &trellisv1.ProjectsSetOwnerResponse{Project: projectToProto(v)}
	})
}

func (h *projectsHandler) AddChildProject(ctx context.Context, req *connect.Request[trellisv1.AddChildProjectRequest]) (*connect.Response[trellisv1.AddChildProjectResponse], error) {
	v, err := h.svc.Social.AddChildProject(ctx, caller(ctx), req.Msg.Parent, req.Msg.Child, req.Msg.Rights)
	return reply(v, err, func(v *service.ProjectView) *trellisv1.AddChildProjectResponse {
		return &trellisv1.AddChildProjectResponse{Parent: projectToProto(v)}
	})
}

func (h *projectsHandler) RemoveChildProject(ctx context.Context, req *connect.Request[trellisv1.RemoveChildProjectRequest]) (*connect.Response[trellisv1.RemoveChildProjectResponse], error) {
	v, err := h.svc.Social.RemoveChildProject(ctx, caller(ctx), req.Msg.Parent, req.Msg.Child)
	return reply(v, err, func(v *service.ProjectView) *trellisv1.RemoveChildProjectResponse {
		return &trellisv1.RemoveChildProjectResponse{Parent: projectToProto(v)}
	})
}

func (h *projectsHandler) RemoveProject(ctx context.Context, req *connect.Request[trellisv1.RemoveProjectRequest]) (*connect.Response[trellisv1.RemoveProjectResponse], error) {
	return done[trellisv1.RemoveProjectResponse](h.svc.Social.RemoveProject(ctx, caller(ctx), req.Msg.Name))
}

func (h *projectsHandler) ListMembers(ctx context.Context, req *connect.Request[trellisv1.ListMembersRequest]) (*connect.Response[trellisv1.ListMembersResponse], error) {
	ms, err := h.svc.Social.ListProjectMembers(ctx, caller(ctx), req.Msg.Name, req.Msg.Effective)
	return reply(ms, err, func(ms []policy.Member) *trellisv1.ListMembersResponse {
		return &trellisv1.ListMembersResponse{Members: membersToProto(ms)}
	})
}

type circlesHandler struct{ svc *service.Service }

func (h *circlesHandler) CreateCircle(ctx context.Context, req *connect.Request[trellisv1.CreateCircleRequest]) (*connect.Response[trellisv1.CreateCircleResponse], error) {
	v, err := h.svc.Social.CreateCircle(ctx, caller(ctx), req.Msg.Id, req.Msg.Description, req.Msg.Profile)
	return reply(v, err, func(v *service.CircleView) *trellisv1.CreateCircleResponse {
		return &trellisv1.CreateCircleResponse{Circle: circleToProto(v)}
	})
}

func (h *circlesHandler) RemoveCircle(ctx context.Context, req *connect.Request[trellisv1.RemoveCircleRequest]) (*connect.Response[trellisv1.RemoveCircleResponse], error) {
	return done[trellisv1.RemoveCircleResponse](h.svc.Social.RemoveCircle(ctx, caller(ctx), req.Msg.Id))
}

func (h *circlesHandler) GetCircle(ctx context.Context, req *connect.Request[trellisv1.GetCircleRequest]) (*connect.Response[trellisv1.GetCircleResponse], error) {
	v, err := h.svc.Social.GetCircle(ctx, caller(ctx), req.Msg.Id)
	return reply(v, err, func(v *service.CircleView) *trellisv1.GetCircleResponse {
		return &trellisv1.GetCircleResponse{Circle: circleToProto(v)}
	})
}

func (h *circlesHandler) ListCircles(ctx context.Context, req *connect.Request[trellisv1.ListCirclesRequest]) (*connect.Response[trellisv1.ListCirclesResponse], error) {
	vs, next, err := h.svc.Social.ListCircles(ctx, caller(ctx), req.Msg.Owner, req.Msg.PageSize, req.Msg.PageToken)
	return reply(vs, err, func(vs []*service.CircleView) *trellisv1.ListCirclesResponse {
		resp := &trellisv1.ListCirclesResponse{NextPageToken: next}
		for _, v := range vs {
			resp.Circles = append(resp.Circles, circleToProto(v))
		}
		return resp
	})
}

func (h *circlesHandler) AddUsers(ctx context.Context, req *connect.Request[trellisv1.CirclesAddUsersRequest]) (*connect.Response[trellisv1.CirclesAddUsersResponse], error) {
	os, err := h.svc.Social.AddCircleUsers(ctx, caller(ctx), req.Msg.Id, req.Msg.Uids, req.Msg.Rights)
	return reply(os, err, func(os []service.Outcome) *trellisv1.CirclesAddUsersResponse {
		return &trellisv1.CirclesAddUsersResponse{Outcomes: outcomesToProto(os)}
	})
}

func (h *circlesHandler) JoinCircle(ctx context.Context, req *connect.Request[trellisv1.JoinCircleRequest]) (*connect.Response[trellisv1.JoinCircleResponse], error) {
	id, err := h.svc.Social.JoinCircle(ctx, caller(ctx), req.Msg.Id, req.Msg.Message)
	return reply(id, err, func(id string) *trellisv1.JoinCircleResponse {
		return &trellisv1.JoinCircleResponse{RequestId: id}
	})
}

func (h *circlesHandler) RemoveUsers(ctx context.Context, req *connect.Request[trellisv1.CirclesRemoveUsersRequest]) (*connect.Response[trellisv1.CirclesRemoveUsersResponse], error) {
	os, err := h.svc.Social.RemoveCircleUsers(ctx, caller(ctx), req.Msg.Id, req.Msg.Uids)
	return reply(os, err, func(os []service.Outcome) *trellisv1.CirclesRemoveUsersResponse {
		return &trellisv1.CirclesRemoveUsersResponse{Outcomes: outcomesToProto(os)}
	})
}

func (h *circlesHandler) ChangeRights(ctx context.Context, req *connect.Request[trellisv1.CirclesChangeRightsRequest]) (*connect.Response[trellisv1.CirclesChangeRightsResponse], error) {
	m, err := h.svc.Social.ChangeCircleRights(ctx, caller(ctx), req.Msg.Id, req.Msg.Uid, req.Msg.Rights)
	return reply(m, err, func(m *domain.Membership) *trellisv1.CirclesChangeRightsResponse {
		return &trellisv1.CirclesChangeRightsResponse{Member: membershipToProto(m, false)}
	})
}

func (h *circlesHandler) SetOwner(ctx context.Context, req *connect.Request[trellisv1.CirclesSetOwnerRequest]) (*connect.Response[trellisv1.CirclesSetOwnerResponse], error) {
	v, err := h.svc.Social.SetCircleOwner(ctx, caller(ctx), req.Msg.Id, req.Msg.Uid)
	return reply(v, err, func(v *service.CircleView) *trellisv1.CirclesSetOwnerResponse {
		return &trellisv1.CirclesSetOwnerResponse{Circle: circleToProto(v)}
	})
}

func (h *circlesHandler) GetProfileDescription(ctx context.Context, _ *connect.Request[trellisv1.CirclesGetProfileDescriptionRequest]) (*connect.Response[trellisv1.CirclesGetProfileDescriptionResponse], error) {
	d, err := h.svc.Social.GetCircleProfileDescription(ctx, caller(ctx))
	return reply(d, err, func(d *domain.ProfileDescription) *trellisv1.CirclesGetProfileDescriptionResponse {
		return &trellisv1.CirclesGetProfileDescriptionResponse{Attributes: descriptionToProto(d)}
	})
}

func (h *circlesHandler) GetCircleProfile(ctx context.Context, req *connect.Request[trellisv1.GetCircleProfileRequest]) (*connect.Response[trellisv1.GetCircleProfileResponse], error) {
	vals, err := h.svc.Social.GetCircleProfile(ctx, caller(ctx), req.Msg.Id)
	return reply(vals, err, func(vals []domain.ProfileValue) *trellisv1.GetCircleProfileResponse {
		return &trellisv1.GetCircleProfileResponse{Id: req.Msg.Id, Attributes: profileToProto(vals)}
	})
}

func (h *circlesHandler) SetCircleProfile(ctx context.Context, req *connect.Request[trellisv1.SetCircleProfileRequest]) (*connect.Response[trellisv1.SetCircleProfileResponse], error) {
	ch, err := h.svc.Social.SetCircleProfile(ctx, caller(ctx), req.Msg.Id, req.Msg.Set, req.Msg.Clear)
	return reply(ch, err, func(ch []domain.AttributeChange) *trellisv1.SetCircleProfileResponse {
		return &trellisv1.SetCircleProfileResponse{Changes: changesToProto(ch)}
	})
}

type notificationsHandler struct{ svc *service.Service }

func (h *notificationsHandler) List(ctx context.Context, req *connect.Request[trellisv1.NotificationsListRequest]) (*connect.Response[trellisv1.NotificationsListResponse], error) {
	q := service.NotificationQuery{
		NotificationFilter: store.NotificationFilter{UnreadOnly: req.Msg.UnreadOnly, UrgentOnly: req.Msg.UrgentOnly},
		PageSize:           req.Msg.PageSize, PageToken: req.Msg.PageToken,
	}
	if req.Msg.Since != nil {
		q.Since = req.Msg.Since.AsTime()
	}
	if req.Msg.Until != nil {
		q.Until = req.Msg.Until.AsTime()
	}
	ns, next, err := h.svc.Social.ListNotifications(ctx, caller(ctx), q)
	return reply(ns, err, func(ns []*domain.Notification) *trellisv1.NotificationsListResponse {
		resp := &trellisv1.NotificationsListResponse{NextPageToken: next}
		for _, n := range ns {
			resp.Notifications = append(resp.Notifications, notificationToProto(n))
		}
		return resp
	})
}

func (h *notificationsHandler) Mark(ctx context.Context, req *connect.Request[trellisv1.NotificationsMarkRequest]) (*connect.Response[trellisv1.NotificationsMarkResponse], error) {
	n, err := h.svc.Social.MarkNotifications(ctx, caller(ctx), req.Msg.Ids, req.Msg.Read, req.Msg.Urgent)
	return reply(n, err, func(n int) *trellisv1.NotificationsMarkResponse {
		return &trellisv1.NotificationsMarkResponse{Changed: int32(n)}
	})
}

func (h *notificationsHandler) Send(ctx context.Context, req *connect.Request[trellisv1.NotificationsSendRequest]) (*connect.Response[trellisv1.NotificationsSendResponse], error) {
	to := service.Target{User: req.Msg.ToUser, Project: req.Msg.ToProject, Circle: req.Msg.ToCircle}
	n, err := h.svc.Social.SendNotification(ctx, caller(ctx), to, req.Msg.Text, req.Msg.Urgent)
	return reply(n, err, func(n int) *trellisv1.NotificationsSendResponse {
		return &trellisv1.NotificationsSendResponse{Recipients: int32(n)}
	})
}

func (h *notificationsHandler) Watch(ctx context.Context, req *connect.Request[trellisv1.NotificationsWatchRequest], stream *connect.ServerStream[trellisv1.NotificationsWatchResponse]) error {
	ready := func(after int64) error {
		return stream.Send(&trellisv1.NotificationsWatchResponse{Created: true, AfterId: after})
	}
	return h.svc.Social.WatchNotifications(ctx, caller(ctx), req.Msg.ResumeAfter, ready, func(n *domain.Notification) error {
		return stream.Send(&trellisv1.NotificationsWatchResponse{Notification: notificationToProto(n)})
	})
}

func (h *notificationsHandler) ListRequests(ctx context.Context, _ *connect.Request[trellisv1.ListRequestsRequest]) (*connect.Response[trellisv1.ListRequestsResponse], error) {
	rs, err := h.svc.Social.ListRequests(ctx, caller(ctx))
	return reply(rs, err, func(rs []service.RequestView) *trellisv1.ListRequestsResponse {
		resp := &trellisv1.ListRequestsResponse{}
		for _, r := range rs {
			resp.Requests = append(resp.Requests, &trellisv1.PendingRequest{
				Id: r.ID, Kind: requestKinds[r.Kind], Object: r.Object, Subject: r.Subject, Requester: r.Requester,
				Rights: r.Rights.Names(), Message: r.Message, CreatedAt: ts(r.CreatedAt), ExpiresAt: ts(r.ExpiresAt),
				Actionable: r.Actionable,
			})
		}
		return resp
	})
}

func (h *notificationsHandler) AcceptRequest(ctx context.Context, req *connect.Request[trellisv1.AcceptRequestRequest]) (*connect.Response[trellisv1.AcceptRequestResponse], error) {
	return done[trellisv1.AcceptRequestResponse](h.svc.Social.AcceptRequest(ctx, caller(ctx), req.Msg.Id))
}

func (h *notificationsHandler) DeclineRequest(ctx context.Context, req *connect.Request[trellisv1.DeclineRequestRequest]) (*connect.Response[trellisv1.DeclineRequestResponse], error) {
	return done[trellisv1.DeclineRequestResponse](h.svc.Social.DeclineRequest(ctx, caller(ctx), req.Msg.Id, req.Msg.Reason))
}

type policyHandler struct{ svc *service.Service }

func (h *policyHandler) Check(ctx context.Context, req *connect.Request[trellisv1.CheckRequest]) (*connect.Response[trellisv1.CheckResponse], error) {
	d, err := h.svc.Social.Check(ctx, caller(ctx), req.Msg.Uid, req.Msg.Action, req.Msg.Object)
	return reply(d, err, func(d policy.Decision) *trellisv1.CheckResponse {
		return &trellisv1.CheckResponse{Allowed: d.Allowed}
	})
}

func (h *policyHandler) Explain(ctx context.Context, req *connect.Request[trellisv1.ExplainRequest]) (*connect.Response[trellisv1.ExplainResponse], error) {
	d, err := h.svc.Social.Explain(ctx, caller(ctx), req.Msg.Uid, req.Msg.Action, req.Msg.Object)
	return reply(d, err, func(d policy.Decision) *trellisv1.ExplainResponse {
		return &trellisv1.ExplainResponse{Allowed: d.Allowed, Reasons: d.Reasons}
	})
}

func (h *policyHandler) ListAllowed(ctx context.Context, req *connect.Request[trellisv1.ListAllowedRequest]) (*connect.Response[trellisv1.ListAllowedResponse], error) {
	objs, err := h.svc.Social.ListAllowed(ctx, caller(ctx), req.Msg.Uid, req.Msg.Action, req.Msg.Kind)
	return reply(objs, err, func(objs []string) *trellisv1.ListAllowedResponse {
		return &trellisv1.ListAllowedResponse{Objects: objs}
	})
}
