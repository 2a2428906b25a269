package api

import (
	"context"
	"github.com/trellis-testbed/trellis/internal/domain"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/service"
)

type oidcClientsHandler struct{ svc *service.Service }

// oidcClientToProto describes a client; the message has no field for a
// secret.
func oidcClientToProto(c *domain.OIDCClient) *trellisv1.OidcClient {
	return &trellisv1.OidcClient{Name: c.ID, RedirectUris: c.RedirectURIs, Public: c.SecretHash == nil, CreatedAt: ts(c.CreatedAt)}
}

func (o *oidcClientsHandler) AddClient(ctx context.Context, req *connect.Request[trellisv1.AddClientRequest]) (*connect.Response[trellisv1.AddClientResponse], error) {
	c, secret, err := o.svc.Federation.AddOIDCClient(ctx, caller(ctx), req.Msg.Name, req.Msg.RedirectUris, req.Msg.Public)
	return reply(c, err, func(c *domain.OIDCClient) *trellisv1.AddClientResponse {
		return &trellisv1.AddClientResponse{Client: oidcClientToProto(c), ClientSecret: secret}
	})
}

func (o *oidcClientsHandler) ListClients(ctx context.Context, _ *connect.Request[trellisv1.ListClientsRequest]) (*connect.Response[trellisv1.ListClientsResponse], error) {
	list, err := o.svc.Federation.ListOIDCClients(ctx, caller(ctx))
	return reply(list, err, func(list []*domain.OIDCClient) *trellisv1.ListClientsResponse {
		resp := &trellisv1.ListClientsResponse{}
		for _, c := range list {
			resp.Clients = append(resp.Clients, oidcClientToProto(c))
		}
		return resp
	})
}

func (o *oidcClientsHandler) RemoveClient(ctx context.Context, req *connect.Request[trellisv1.RemoveClientRequest]) (*connect.Response[trellisv1.RemoveClientResponse], error) {
	return done[trellisv1.RemoveClientResponse](o.svc.Federation.RemoveOIDCClient(ctx, caller(ctx), req.Msg.Name))
}
