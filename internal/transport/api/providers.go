package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

type providersHandler struct{ svc *service.Service }

var providerStates = map[trellisv1.ProviderState]string{
	trellisv1.ProviderState_PROVIDER_STATE_ACTIVE:   domain.ProviderActive,
	trellisv1.ProviderState_PROVIDER_STATE_DISABLED: domain.ProviderDisabled,
}

func providerToProto(p *domain.Provider) *trellisv1.Provider {
	out := &trellisv1.Provider{Name: p.Name, Url: p.URL, CreatedAt: ts(p.CreatedAt)}
	for k, v := range providerStates {
		if v == p.State {
			out.State = k
		}
	}
	if p.PublicKey != nil {
		out.Fingerprint, out.RegisteredAt = service.KeyFingerprint(p.PublicKey), ts(p.RegisteredAt)
	}
	return out
}

func connectionToProto(c *domain.ProviderConnection) *trellisv1.Connection {
	return &trellisv1.Connection{Provider: c.Provider, Uid: c.UID, LocalAccount: c.LocalAccount, UserKeyFingerprint: c.UserKeyFingerprint, CreatedAt: ts(c.CreatedAt)}
}

func (h *providersHandler) AddProvider(ctx context.Context, req *connect.Request[trellisv1.AddProviderRequest]) (*connect.Response[trellisv1.AddProviderResponse], error) {
	p, tok, exp, err := h.svc.Sites.AddProvider(ctx, caller(ctx), req.Msg.Name, req.Msg.Url)
	return reply(p, err, func(p *domain.Provider) *trellisv1.AddProviderResponse {
		return &trellisv1.AddProviderResponse{Provider: providerToProto(p), RegistrationToken: tok, ExpiresAt: ts(exp)}
	})
}

func (h *providersHandler) RegisterSite(ctx context.Context, req *connect.Request[trellisv1.RegisterSiteRequest]) (*connect.Response[trellisv1.RegisterSiteResponse], error) {
	r, err := h.svc.Sites.RegisterSite(ctx, caller(ctx), req.Msg.Token, req.Msg.PublicKey)
	return reply(r, err, func(r *service.SiteRegistration) *trellisv1.RegisterSiteResponse {
		return &trellisv1.RegisterSiteResponse{Name: r.Name, Issuer: r.Issuer, JwksUrl: r.JWKSURL, Audience: r.Audience, CentreAudience: r.CentreAudience}
	})
}

func (h *providersHandler) ListProviders(ctx context.Context, _ *connect.Request[trellisv1.ListProvidersRequest]) (*connect.Response[trellisv1.ListProvidersResponse], error) {
	list, err := h.svc.Sites.ListProviders(ctx, caller(ctx))
	return reply(list, err, func(list []*domain.Provider) *trellisv1.ListProvidersResponse {
		resp := &trellisv1.ListProvidersResponse{}
		for _, p := range list {
			resp.Providers = append(resp.Providers, providerToProto(p))
		}
		return resp
	})
}

func (h *providersHandler) GetProvider(ctx context.Context, req *connect.Request[trellisv1.GetProviderRequest]) (*connect.Response[trellisv1.GetProviderResponse], error) {
	p, err := h.svc.Sites.GetProvider(ctx, caller(ctx), req.Msg.Name)
	return reply(p, err, func(p *domain.Provider) *trellisv1.GetProviderResponse {
		return &trellisv1.GetProviderResponse{Provider: providerToProto(p)}
	})
}

func (h *providersHandler) SetProviderState(ctx context.Context, req *connect.Request[trellisv1.SetProviderStateRequest]) (*connect.Response[trellisv1.SetProviderStateResponse], error) {
	// An unknown state maps to "", which the service refuses once it has
	// authorized the caller.
	p, err := h.svc.Sites.SetProviderState(ctx, caller(ctx), req.Msg.Name, providerStates[req.Msg.State])
	return reply(p, err, func(p *domain.Provider) *trellisv1.SetProviderStateResponse {
		return &trellisv1.SetProviderStateResponse{Provider: providerToProto(p)}
	})
}

func (h *providersHandler) RemoveProvider(ctx context.Context, req *connect.Request[trellisv1.RemoveProviderRequest]) (*connect.Response[trellisv1.RemoveProviderResponse], error) {
	return done[trellisv1.RemoveProviderResponse](h.svc.Sites.RemoveProvider(ctx, caller(ctx), req.Msg.Name))
}

func (h *providersHandler) CreateConnectionTicket(ctx context.Context, req *connect.Request[trellisv1.CreateConnectionTicketRequest]) (*connect.Response[trellisv1.CreateConnectionTicketResponse], error) {
	t, err := h.svc.Sites.CreateConnectionTicket(ctx, caller(ctx), req.Msg.Provider)
	return reply(t, err, func(t *service.SiteTicket) *trellisv1.CreateConnectionTicketResponse {
		return &trellisv1.CreateConnectionTicketResponse{Ticket: t.Token, ExpiresAt: ts(t.ExpiresAt), Url: t.URL}
	})
}

func (h *providersHandler) CreateSiteToken(ctx context.Context, req *connect.Request[trellisv1.CreateSiteTokenRequest]) (*connect.Response[trellisv1.CreateSiteTokenResponse], error) {
	t, err := h.svc.Sites.CreateSiteToken(ctx, caller(ctx), req.Msg.Provider)
	return reply(t, err, func(t *service.SiteTicket) *trellisv1.CreateSiteTokenResponse {
		return &trellisv1.CreateSiteTokenResponse{Token: t.Token, ExpiresAt: ts(t.ExpiresAt), Url: t.URL}
	})
}

func (h *providersHandler) ListConnections(ctx context.Context, req *connect.Request[trellisv1.ListConnectionsRequest]) (*connect.Response[trellisv1.ListConnectionsResponse], error) {
	list, err := h.svc.Sites.ListConnections(ctx, caller(ctx), req.Msg.Uid)
	return reply(list, err, func(list []*domain.ProviderConnection) *trellisv1.ListConnectionsResponse {
		resp := &trellisv1.ListConnectionsResponse{}
		for _, c := range list {
			resp.Connections = append(resp.Connections, connectionToProto(c))
		}
		return resp
	})
}

func (h *providersHandler) RemoveConnection(ctx context.Context, req *connect.Request[trellisv1.RemoveConnectionRequest]) (*connect.Response[trellisv1.RemoveConnectionResponse], error) {
	return done[trellisv1.RemoveConnectionResponse](h.svc.Sites.RemoveConnection(ctx, caller(ctx), req.Msg.Uid, req.Msg.Provider))
}

func (h *providersHandler) ReportConnection(ctx context.Context, req *connect.Request[trellisv1.ReportConnectionRequest]) (*connect.Response[trellisv1.ReportConnectionResponse], error) {
	c, err := h.svc.Sites.ReportConnection(ctx, caller(ctx), domain.ProviderConnection{
		UID: req.Msg.Uid, LocalAccount: req.Msg.LocalAccount, UserKeyFingerprint: req.Msg.UserKeyFingerprint,
	}, req.Msg.TicketJti)
	return reply(c, err, func(c *domain.ProviderConnection) *trellisv1.ReportConnectionResponse {
		return &trellisv1.ReportConnectionResponse{Connection: connectionToProto(c)}
	})
}

func (h *providersHandler) Forward(ctx context.Context, req *connect.Request[trellisv1.ForwardRequest]) (*connect.Response[trellisv1.ForwardResponse], error) {
	m := req.Msg
	r, err := h.svc.Sites.Forward(ctx, caller(ctx), m.Provider, m.Method, m.Target, m.Body, m.UserSignature)
	return reply(r, err, func(r *service.ForwardResult) *trellisv1.ForwardResponse {
		return &trellisv1.ForwardResponse{Status: int32(r.Status), Body: r.Body, ContentType: r.ContentType, SiteUrl: r.SiteURL}
	})
}
