package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// tokenTypeAccessToken is RFC 8693's name of the token Auth.ExchangeToken
// issues.
const tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"

type servicesHandler struct{ svc *service.Service }

var serviceStates = map[trellisv1.ServiceState]string{
	trellisv1.ServiceState_SERVICE_STATE_ACTIVE:   store.ServiceActive,
	trellisv1.ServiceState_SERVICE_STATE_DISABLED: store.ServiceDisabled,
}

// serviceToProto describes a service; the message has no field for a secret.
func serviceToProto(s *store.Service) *trellisv1.RegisteredService {
	out := &trellisv1.RegisteredService{Name: s.Name, CreatedAt: ts(s.CreatedAt), Credential: "client_secret"}
	for k, v := range serviceStates {
		if v == s.State {
			out.State = k
		}
	}
	if s.PublicKey != nil {
		out.Credential, out.Fingerprint = "public_key", service.KeyFingerprint(s.PublicKey)
	}
	return out
}

func (h *servicesHandler) RegisterService(ctx context.Context, req *connect.Request[trellisv1.RegisterServiceRequest]) (*connect.Response[trellisv1.RegisterServiceResponse], error) {
	s, secret, err := h.svc.Federation.RegisterService(ctx, caller(ctx), req.Msg.Name, req.Msg.GetPublicKey(), req.Msg.GetGenerateSecret())
	return reply(s, err, func(s *store.Service) *trellisv1.RegisterServiceResponse {
		return &trellisv1.RegisterServiceResponse{Service: serviceToProto(s), ClientSecret: secret}
	})
}

func (h *servicesHandler) ListServices(ctx context.Context, _ *connect.Request[trellisv1.ListServicesRequest]) (*connect.Response[trellisv1.ListServicesResponse], error) {
	list, err := h.svc.Federation.ListServices(ctx, caller(ctx))
	return reply(list, err, func(list []*store.Service) *trellisv1.ListServicesResponse {
		resp := &trellisv1.ListServicesResponse{}
		for _, s := range list {
			resp.Services = append(resp.Services, serviceToProto(s))
		}
		return resp
	})
}

func (h *servicesHandler) SetServiceState(ctx context.Context, req *connect.Request[trellisv1.SetServiceStateRequest]) (*connect.Response[trellisv1.SetServiceStateResponse], error) {
	// An unknown state maps to "", which the service refuses once it has
	// authorized the caller.
	s, err := h.svc.Federation.SetServiceState(ctx, caller(ctx), req.Msg.Name, serviceStates[req.Msg.State])
	return reply(s, err, func(s *store.Service) *trellisv1.SetServiceStateResponse {
		return &trellisv1.SetServiceStateResponse{Service: serviceToProto(s)}
	})
}

func (h *servicesHandler) RemoveService(ctx context.Context, req *connect.Request[trellisv1.RemoveServiceRequest]) (*connect.Response[trellisv1.RemoveServiceResponse], error) {
	return done[trellisv1.RemoveServiceResponse](h.svc.Federation.RemoveService(ctx, caller(ctx), req.Msg.Name))
}

func (h *authHandler) ExchangeToken(ctx context.Context, req *connect.Request[trellisv1.ExchangeTokenRequest]) (*connect.Response[trellisv1.ExchangeTokenResponse], error) {
	x := service.Exchange{
		SubjectToken:   req.Msg.SubjectToken,
		ActorAssertion: req.Msg.GetActorAssertion(),
		ClientID:       req.Msg.GetClientCredentials().GetClientId(),
		ClientSecret:   req.Msg.GetClientCredentials().GetClientSecret(),
	}
	if v := req.Msg.Lifetime; v != nil {
		if err := v.CheckValid(); err != nil {
			return nil, domain.Invalid("lifetime", "lifetime.format", "not a valid duration")
		}
		d := v.AsDuration()
		x.Lifetime = &d
	}
	t, err := h.svc.Federation.ExchangeToken(ctx, caller(ctx), x)
	return reply(t, err, func(t *service.Exchanged) *trellisv1.ExchangeTokenResponse {
		return &trellisv1.ExchangeTokenResponse{AccessToken: t.AccessToken, ExpiresAt: ts(t.ExpiresAt), IssuedTokenType: tokenTypeAccessToken}
	})
}
