package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

func (h *usersHandler) CloseAccount(ctx context.Context, req *connect.Request[trellisv1.CloseAccountRequest]) (*connect.Response[trellisv1.CloseAccountResponse], error) {
	if err := h.svc.Accounts.CloseAccount(ctx, caller(ctx), req.Msg.Password); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CloseAccountResponse{}), nil
}

func (h *usersHandler) RemoveUser(ctx context.Context, req *connect.Request[trellisv1.RemoveUserRequest]) (*connect.Response[trellisv1.RemoveUserResponse], error) {
	if err := h.svc.Accounts.RemoveUser(ctx, caller(ctx), req.Msg.Uid); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveUserResponse{}), nil
}

func (h *usersHandler) CreateUser(ctx context.Context, req *connect.Request[trellisv1.CreateUserRequest]) (*connect.Response[trellisv1.CreateUserResponse], error) {
	m := req.Msg
	u, err := h.svc.Accounts.CreateUser(ctx, caller(ctx), service.NewAccount{
		Registration: service.Registration{UID: m.Uid, Email: m.Email, Password: m.Password, Profile: m.Profile},
		Admin:        m.Admin,
	})
	return reply(u, err, func(u *domain.User) *trellisv1.CreateUserResponse {
		return &trellisv1.CreateUserResponse{User: userToProto(u)}
	})
}

func (h *usersHandler) ImportUsers(ctx context.Context, req *connect.Request[trellisv1.ImportUsersRequest]) (*connect.Response[trellisv1.ImportUsersResponse], error) {
	in := make([]service.ImportedUser, len(req.Msg.Users))
	for i, u := range req.Msg.Users {
		in[i] = service.ImportedUser{UID: u.Uid, Email: u.Email, Profile: u.Profile, PasswordHash: u.PasswordHash, Admin: u.Admin, State: u.State}
	}
	users, err := h.svc.Accounts.ImportUsers(ctx, caller(ctx), in)
	return reply(users, err, func(users []*domain.User) *trellisv1.ImportUsersResponse {
		out := &trellisv1.ImportUsersResponse{}
		for _, u := range users {
			out.Users = append(out.Users, userToProto(u))
		}
		return out
	})
}

func (h *projectsHandler) ImportProjects(ctx context.Context, req *connect.Request[trellisv1.ImportProjectsRequest]) (*connect.Response[trellisv1.ImportProjectsResponse], error) {
	in := make([]service.ImportedProject, len(req.Msg.Projects))
	for i, p := range req.Msg.Projects {
		in[i] = service.ImportedProject{Name: p.Name, Owner: p.Owner, Description: p.Description}
		for _, m := range p.Members {
			in[i].Members = append(in[i].Members, service.ImportedMember{UID: m.Uid, Rights: m.Rights})
		}
	}
	names, err := h.svc.Social.ImportProjects(ctx, caller(ctx), in)
	return reply(names, err, func(names []string) *trellisv1.ImportProjectsResponse {
		return &trellisv1.ImportProjectsResponse{Names: names}
	})
}
