package api

import (
	"context"
	"runtime"

	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/buildinfo"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

// Handlers are thin: decode, call the service, encode. Authentication,
// authorization and error mapping happen in the interceptors.

type apiInfo struct {
	version string
	svc     *service.Service
}

func (h *apiInfo) GetVersion(context.Context, *connect.Request[trellisv1.GetVersionRequest]) (*connect.Response[trellisv1.GetVersionResponse], error) {
	resp := &trellisv1.GetVersionResponse{
		ApiVersion: "v1",
		Version:    h.version,
		GoVersion:  runtime.Version(),
		ServerTime: ts(time.Now()),
	}
	resp.Revision = buildinfo.Revision()
	return connect.NewResponse(resp), nil
}

func (h *apiInfo) GetValidPermissions(ctx context.Context, req *connect.Request[trellisv1.GetValidPermissionsRequest]) (*connect.Response[trellisv1.GetValidPermissionsResponse], error) {
	perms, err := h.svc.Social.ValidPermissions(ctx, caller(ctx), req.Msg.Kind)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.GetValidPermissionsResponse{Kind: req.Msg.Kind}
	for _, p := range perms {
		resp.Permissions = append(resp.Permissions, &trellisv1.Permission{Name: p.Name, Description: p.Description})
	}
	return connect.NewResponse(resp), nil
}

type authHandler struct{ svc *service.Service }

func tokensToProto(t *service.Tokens) *trellisv1.Tokens {
	return &trellisv1.Tokens{
		AccessToken:          t.AccessToken,
		AccessTokenExpiresAt: ts(t.AccessExpiresAt),
		RefreshToken:         t.RefreshToken,
		SessionId:            t.SessionID,
		SessionExpiresAt:     ts(t.SessionExpiresAt),
	}
}

func (h *authHandler) Login(ctx context.Context, req *connect.Request[trellisv1.LoginRequest]) (*connect.Response[trellisv1.LoginResponse], error) {
	t, err := h.svc.Accounts.Login(ctx, caller(ctx), req.Msg.Uid, req.Msg.Password, req.Msg.IssueClientCertificate)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.LoginResponse{
		Tokens:               tokensToProto(t),
		ClientCertificatePem: t.ClientCertificatePEM,
		ClientKeyPem:         t.ClientKeyPEM,
	}), nil
}

func (h *authHandler) Logout(ctx context.Context, _ *connect.Request[trellisv1.LogoutRequest]) (*connect.Response[trellisv1.LogoutResponse], error) {
	p := caller(ctx)
	if err := h.svc.Accounts.Logout(ctx, p); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.LogoutResponse{}), nil
}

func (h *authHandler) Refresh(ctx context.Context, req *connect.Request[trellisv1.RefreshRequest]) (*connect.Response[trellisv1.RefreshResponse], error) {
	t, err := h.svc.Accounts.Refresh(ctx, caller(ctx), req.Msg.RefreshToken)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RefreshResponse{Tokens: tokensToProto(t)}), nil
}

func (h *authHandler) WhoAmI(ctx context.Context, _ *connect.Request[trellisv1.WhoAmIRequest]) (*connect.Response[trellisv1.WhoAmIResponse], error) {
	p := caller(ctx)
	w, err := h.svc.Accounts.WhoAmI(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.WhoAmIResponse{
		Uid:              w.UID,
		Admin:            w.Admin,
		SessionId:        w.SessionID,
		SessionExpiresAt: ts(w.SessionExpires),
		TokenExpiresAt:   ts(w.TokenExpires),
		Actor:            w.Actor,
		ApiTokenName:     w.TokenName,
		Scopes:           w.Scopes,
		Backend:          w.Backend,
	}), nil
}

func (h *authHandler) Echo(ctx context.Context, req *connect.Request[trellisv1.EchoRequest]) (*connect.Response[trellisv1.EchoResponse], error) {
	uid, msg, err := h.svc.Accounts.Echo(ctx, caller(ctx), req.Msg.Message)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.EchoResponse{Uid: uid, Message: msg, ServerTime: ts(time.Now())}), nil
}

type usersHandler struct{ svc *service.Service }

func (h *usersHandler) Register(ctx context.Context, req *connect.Request[trellisv1.RegisterRequest]) (*connect.Response[trellisv1.RegisterResponse], error) {
	u, err := h.svc.Accounts.Register(ctx, caller(ctx), service.Registration{
		UID: req.Msg.Uid, Email: req.Msg.Email, Password: req.Msg.Password, Profile: req.Msg.Profile,
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RegisterResponse{User: userToProto(u)}), nil
}

func (h *usersHandler) ConfirmEmail(ctx context.Context, req *connect.Request[trellisv1.ConfirmEmailRequest]) (*connect.Response[trellisv1.ConfirmEmailResponse], error) {
	u, err := h.svc.Accounts.ConfirmEmail(ctx, caller(ctx), req.Msg.Token)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ConfirmEmailResponse{User: userToProto(u)}), nil
}

func (h *usersHandler) ResendConfirmation(ctx context.Context, req *connect.Request[trellisv1.ResendConfirmationRequest]) (*connect.Response[trellisv1.ResendConfirmationResponse], error) {
	if err := h.svc.Accounts.ResendConfirmation(ctx, caller(ctx), req.Msg.Uid); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ResendConfirmationResponse{}), nil
}

func (h *usersHandler) RequestPasswordReset(ctx context.Context, req *connect.Request[trellisv1.RequestPasswordResetRequest]) (*connect.Response[trellisv1.RequestPasswordResetResponse], error) {
	msg, err := h.svc.Accounts.RequestPasswordReset(ctx, caller(ctx), req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RequestPasswordResetResponse{Message: msg}), nil
}

func (h *usersHandler) ResetPassword(ctx context.Context, req *connect.Request[trellisv1.ResetPasswordRequest]) (*connect.Response[trellisv1.ResetPasswordResponse], error) {
	if err := h.svc.Accounts.ResetPassword(ctx, caller(ctx), req.Msg.Token, req.Msg.NewPassword); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ResetPasswordResponse{}), nil
}

func (h *usersHandler) GetUser(ctx context.Context, req *connect.Request[trellisv1.GetUserRequest]) (*connect.Response[trellisv1.GetUserResponse], error) {
	u, err := h.svc.Accounts.GetUser(ctx, caller(ctx), req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetUserResponse{User: userToProto(u)}), nil
}

func (h *usersHandler) ListUsers(ctx context.Context, req *connect.Request[trellisv1.ListUsersRequest]) (*connect.Response[trellisv1.ListUsersResponse], error) {
	users, next, err := h.svc.Accounts.ListUsers(ctx, caller(ctx), req.Msg.UidPrefix, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListUsersResponse{NextPageToken: next}
	for _, u := range users {
		resp.Users = append(resp.Users, userToProto(u))
	}
	return connect.NewResponse(resp), nil
}

func (h *usersHandler) GetProfileDescription(ctx context.Context, _ *connect.Request[trellisv1.GetProfileDescriptionRequest]) (*connect.Response[trellisv1.GetProfileDescriptionResponse], error) {
	d, err := h.svc.Accounts.GetProfileDescription(ctx, caller(ctx))
	return reply(d, err, func(d *domain.ProfileDescription) *trellisv1.GetProfileDescriptionResponse {
		return &trellisv1.GetProfileDescriptionResponse{Attributes: descriptionToProto(d)}
	})
}

func (h *usersHandler) GetUserProfile(ctx context.Context, req *connect.Request[trellisv1.GetUserProfileRequest]) (*connect.Response[trellisv1.GetUserProfileResponse], error) {
	p, uid := caller(ctx), req.Msg.Uid
	vals, err := h.svc.Accounts.GetUserProfile(ctx, p, uid)
	if err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID // the caller's own, as the service read it
	}
	return connect.NewResponse(&trellisv1.GetUserProfileResponse{Uid: uid, Attributes: profileToProto(vals)}), nil
}

func (h *usersHandler) SetUserProfile(ctx context.Context, req *connect.Request[trellisv1.SetUserProfileRequest]) (*connect.Response[trellisv1.SetUserProfileResponse], error) {
	p, uid := caller(ctx), req.Msg.Uid
	changes, err := h.svc.Accounts.SetUserProfile(ctx, p, uid, req.Msg.Set, req.Msg.Clear)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetUserProfileResponse{Changes: changesToProto(changes)}), nil
}

func (h *usersHandler) ChangePassword(ctx context.Context, req *connect.Request[trellisv1.ChangePasswordRequest]) (*connect.Response[trellisv1.ChangePasswordResponse], error) {
	p, uid := caller(ctx), req.Msg.Uid
	if err := h.svc.Accounts.ChangePassword(ctx, p, uid, req.Msg.CurrentPassword, req.Msg.NewPassword); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ChangePasswordResponse{}), nil
}

func (h *usersHandler) SetUserState(ctx context.Context, req *connect.Request[trellisv1.SetUserStateRequest]) (*connect.Response[trellisv1.SetUserStateResponse], error) {
	p := caller(ctx)
	state, err := domain.ParseUserState("state", userStateFromProto(req.Msg.State))
	if err != nil {
		return nil, err
	}
	u, err := h.svc.Accounts.SetUserState(ctx, p, req.Msg.Uid, state)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetUserStateResponse{User: userToProto(u)}), nil
}

func (h *usersHandler) SetAdmin(ctx context.Context, req *connect.Request[trellisv1.SetAdminRequest]) (*connect.Response[trellisv1.SetAdminResponse], error) {
	p := caller(ctx)
	u, err := h.svc.Accounts.SetAdmin(ctx, p, req.Msg.Uid, req.Msg.Admin)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetAdminResponse{User: userToProto(u)}), nil
}

type adminHandler struct{ svc *service.Service }

func (h *adminHandler) Bootstrap(ctx context.Context, req *connect.Request[trellisv1.BootstrapRequest]) (*connect.Response[trellisv1.BootstrapResponse], error) {
	m := req.Msg
	u, err := h.svc.Accounts.BootstrapAdmin(ctx, caller(ctx), m.BootstrapToken, m.Uid, m.Email, m.Password)
	return reply(u, err, func(u *domain.User) *trellisv1.BootstrapResponse {
		return &trellisv1.BootstrapResponse{User: userToProto(u)}
	})
}

func (h *adminHandler) RotateCertificateAuthority(ctx context.Context, _ *connect.Request[trellisv1.RotateCertificateAuthorityRequest]) (*connect.Response[trellisv1.RotateCertificateAuthorityResponse], error) {
	p := caller(ctx)
	r, err := h.svc.Accounts.RotateCertificateAuthority(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RotateCertificateAuthorityResponse{
		CaCertificatesPem: r.RootsPEM, IssuingSubject: r.Issuing.Subject.CommonName, PreviousTrustedUntil: ts(r.PreviousTrustedUntil),
	}), nil
}

func (h *adminHandler) ListAuditEvents(ctx context.Context, req *connect.Request[trellisv1.ListAuditEventsRequest]) (*connect.Response[trellisv1.ListAuditEventsResponse], error) {
	q := service.AuditQuery{
		Actor: req.Msg.Actor, Object: req.Msg.Object, Operation: req.Msg.Operation,
		PageSize: req.Msg.PageSize, PageToken: req.Msg.PageToken,
	}
	if req.Msg.Since != nil {
		q.Since = req.Msg.Since.AsTime()
	}
	evs, next, err := h.svc.Accounts.ListAuditEvents(ctx, caller(ctx), q)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListAuditEventsResponse{NextPageToken: next}
	for _, e := range evs {
		resp.Events = append(resp.Events, auditToProto(e))
	}
	return connect.NewResponse(resp), nil
}

func (h *adminHandler) ListOutbox(ctx context.Context, req *connect.Request[trellisv1.ListOutboxRequest]) (*connect.Response[trellisv1.ListOutboxResponse], error) {
	mail, next, err := h.svc.Accounts.ListOutbox(ctx, caller(ctx), req.Msg.To, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListOutboxResponse{NextPageToken: next}
	for _, m := range mail {
		resp.Messages = append(resp.Messages, mailToProto(m))
	}
	return connect.NewResponse(resp), nil
}

func (h *adminHandler) ListAttributes(ctx context.Context, req *connect.Request[trellisv1.ListAttributesRequest]) (*connect.Response[trellisv1.ListAttributesResponse], error) {
	attrs, err := h.svc.Accounts.ListAttributes(ctx, caller(ctx), profileKinds[req.Msg.Kind])
	return reply(attrs, err, func(attrs []domain.Attribute) *trellisv1.ListAttributesResponse {
		resp := &trellisv1.ListAttributesResponse{}
		for _, a := range attrs {
			resp.Attributes = append(resp.Attributes, definitionToProto(a))
		}
		return resp
	})
}

func (h *adminHandler) AddAttribute(ctx context.Context, req *connect.Request[trellisv1.AddAttributeRequest]) (*connect.Response[trellisv1.AddAttributeResponse], error) {
	in := req.Msg.GetAttribute()
	a := domain.Attribute{
		Name: in.GetName(), Description: in.GetDescription(), Optional: in.GetOptional(),
		Access: keyOf(accesses, in.GetAccess()), DataType: keyOf(dataTypes, in.GetDataType()),
		Format: in.GetFormat(), FormatDescription: in.GetFormatDescription(),
		LengthHint: int(in.GetLengthHint()), OrderingHint: int(in.GetOrderingHint()), MaxLength: int(req.Msg.MaxLength),
	}
	out, err := h.svc.Accounts.AddAttribute(ctx, caller(ctx), profileKinds[req.Msg.Kind], a)
	return reply(out, err, func(a *domain.Attribute) *trellisv1.AddAttributeResponse {
		return &trellisv1.AddAttributeResponse{Attribute: definitionToProto(*a)}
	})
}

func (h *adminHandler) ChangeAttribute(ctx context.Context, req *connect.Request[trellisv1.ChangeAttributeRequest]) (*connect.Response[trellisv1.ChangeAttributeResponse], error) {
	m := req.Msg
	var ch service.AttributePatch
	ch.Description, ch.Optional, ch.Format, ch.FormatDescription = m.Description, m.Optional, m.Format, m.FormatDescription
	ch.LengthHint, ch.OrderingHint, ch.MaxLength = intPtr(m.LengthHint), intPtr(m.OrderingHint), intPtr(m.MaxLength)
	if m.Access != trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_UNSPECIFIED {
		a := keyOf(accesses, m.Access)
		ch.Access = &a
	}
	if m.DataType != trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_UNSPECIFIED {
		t := keyOf(dataTypes, m.DataType)
		ch.DataType = &t
	}
	out, err := h.svc.Accounts.ChangeAttribute(ctx, caller(ctx), profileKinds[m.Kind], m.Name, ch)
	return reply(out, err, func(a *domain.Attribute) *trellisv1.ChangeAttributeResponse {
		return &trellisv1.ChangeAttributeResponse{Attribute: definitionToProto(*a)}
	})
}

func (h *adminHandler) RemoveAttribute(ctx context.Context, req *connect.Request[trellisv1.RemoveAttributeRequest]) (*connect.Response[trellisv1.RemoveAttributeResponse], error) {
	return done[trellisv1.RemoveAttributeResponse](h.svc.Accounts.RemoveAttribute(ctx, caller(ctx), profileKinds[req.Msg.Kind], req.Msg.Name))
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}
