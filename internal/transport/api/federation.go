package api

import (
	"context"

	"connectrpc.com/connect"

	oidcv1 "github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// oidcLoginHandler serves the oidc authentication backend's operations
// (trellis.v1.ext.auth.oidc.v1).
type oidcLoginHandler struct{ svc *service.Service }

func linkToProto(l *store.IdentityLink) *oidcv1.Link {
	out := &oidcv1.Link{Issuer: l.Issuer, Subject: l.Subject, Email: l.Email}
	if !l.CreatedAt.IsZero() {
		out.CreatedAt = ts(l.CreatedAt)
	}
	return out
}

func (h *oidcLoginHandler) StartLogin(ctx context.Context, req *connect.Request[oidcv1.StartLoginRequest]) (*connect.Response[oidcv1.StartLoginResponse], error) {
	st, err := h.svc.Federation.StartExternalLogin(ctx, auth.PrincipalFrom(ctx), req.Msg.Link, req.Msg.ReturnTo)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&oidcv1.StartLoginResponse{
		LoginId: st.ID, AuthorizationUrl: st.AuthorizationURL, PollSecret: st.PollSecret, ExpiresAt: ts(st.ExpiresAt),
	}), nil
}

func (h *oidcLoginHandler) FinishLogin(ctx context.Context, req *connect.Request[oidcv1.FinishLoginRequest]) (*connect.Response[oidcv1.FinishLoginResponse], error) {
	f, err := h.svc.Federation.FinishExternalLogin(ctx, req.Msg.LoginId, req.Msg.PollSecret, req.Msg.FinishCode, req.Msg.IssueClientCertificate)
	if err != nil {
		return nil, err
	}
	resp := &oidcv1.FinishLoginResponse{Identity: linkToProto(f.Link), Uid: f.Link.UID}
	if t := f.Tokens; t != nil {
		resp.Tokens, resp.ClientCertificatePem, resp.ClientKeyPem = tokensToProto(t), t.ClientCertificatePEM, t.ClientKeyPEM
	}
	return connect.NewResponse(resp), nil
}

func (h *oidcLoginHandler) ListLinks(ctx context.Context, _ *connect.Request[oidcv1.ListLinksRequest]) (*connect.Response[oidcv1.ListLinksResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	links, err := h.svc.Federation.ListIdentityLinks(ctx, p)
	if err != nil {
		return nil, err
	}
	resp := &oidcv1.ListLinksResponse{}
	for _, l := range links {
		resp.Links = append(resp.Links, linkToProto(l))
	}
	return connect.NewResponse(resp), nil
}

func (h *oidcLoginHandler) Unlink(ctx context.Context, req *connect.Request[oidcv1.UnlinkRequest]) (*connect.Response[oidcv1.UnlinkResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Federation.UnlinkIdentity(ctx, p, req.Msg.Issuer, req.Msg.Subject); err != nil {
		return nil, err
	}
	return connect.NewResponse(&oidcv1.UnlinkResponse{}), nil
}
