package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

type oidcClientsHandler struct{ svc *service.Service }

// oidcClientToProto describes a client; the message has no field for a
// secret.
func oidcClientToProto(c *store.OIDCClient) *trellisv1.OidcClient {
	return &trellisv1.OidcClient{Name: c.ID, RedirectUris: c.RedirectURIs, Public: c.SecretHash == nil, CreatedAt: ts(c.CreatedAt)}
}

func (o *oidcClientsHandler) AddClient(ctx context.Context, req *connect.Request[trellisv1.AddClientRequest]) (*connect.Response[trellisv1.AddClientResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	c, secret, err := o.svc.Federation.AddOIDCClient(ctx, p, req.Msg.Name, req.Msg.RedirectUris, req.Msg.Public)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.AddClientResponse{Client: oidcClientToProto(c), ClientSecret: secret}), nil
}

func (o *oidcClientsHandler) ListClients(ctx context.Context, _ *connect.Request[trellisv1.ListClientsRequest]) (*connect.Response[trellisv1.ListClientsResponse], error) {
	list, err := o.svc.Federation.ListOIDCClients(ctx)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListClientsResponse{}
	for _, c := range list {
		resp.Clients = append(resp.Clients, oidcClientToProto(c))
	}
	return connect.NewResponse(resp), nil
}

func (o *oidcClientsHandler) RemoveClient(ctx context.Context, req *connect.Request[trellisv1.RemoveClientRequest]) (*connect.Response[trellisv1.RemoveClientResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := o.svc.Federation.RemoveOIDCClient(ctx, p, req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveClientResponse{}), nil
}
