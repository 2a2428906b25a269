package api

import (
	"context"

	"connectrpc.com/connect"

	oidcv1 "github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1"
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
	st, err := h.svc.Federation.StartExternalLogin(ctx, caller(ctx), req.Msg.Link, req.Msg.ReturnTo)
	return reply(st, err, func(st *service.ExternalLoginStart) *oidcv1.StartLoginResponse {
		return &oidcv1.StartLoginResponse{LoginId: st.ID, AuthorizationUrl: st.AuthorizationURL, PollSecret: st.PollSecret, ExpiresAt: ts(st.ExpiresAt)}
	})
}

func (h *oidcLoginHandler) FinishLogin(ctx context.Context, req *connect.Request[oidcv1.FinishLoginRequest]) (*connect.Response[oidcv1.FinishLoginResponse], error) {
	f, err := h.svc.Federation.FinishExternalLogin(ctx, caller(ctx), req.Msg.LoginId, req.Msg.PollSecret, req.Msg.FinishCode, req.Msg.IssueClientCertificate)
	return reply(f, err, func(f *service.ExternalFinish) *oidcv1.FinishLoginResponse {
		resp := &oidcv1.FinishLoginResponse{Identity: linkToProto(f.Link), Uid: f.Link.UID}
		if t := f.Tokens; t != nil {
			resp.Tokens, resp.ClientCertificatePem, resp.ClientKeyPem = tokensToProto(t), t.ClientCertificatePEM, t.ClientKeyPEM
		}
		return resp
	})
}

func (h *oidcLoginHandler) ListLinks(ctx context.Context, _ *connect.Request[oidcv1.ListLinksRequest]) (*connect.Response[oidcv1.ListLinksResponse], error) {
	links, err := h.svc.Federation.ListIdentityLinks(ctx, caller(ctx))
	return reply(links, err, func(links []*store.IdentityLink) *oidcv1.ListLinksResponse {
		resp := &oidcv1.ListLinksResponse{}
		for _, l := range links {
			resp.Links = append(resp.Links, linkToProto(l))
		}
		return resp
	})
}

func (h *oidcLoginHandler) Unlink(ctx context.Context, req *connect.Request[oidcv1.UnlinkRequest]) (*connect.Response[oidcv1.UnlinkResponse], error) {
	return done[oidcv1.UnlinkResponse](h.svc.Federation.UnlinkIdentity(ctx, caller(ctx), req.Msg.Issuer, req.Msg.Subject))
}
