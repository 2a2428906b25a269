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
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	s, secret, err := h.svc.Federation.RegisterService(ctx, p, req.Msg.Name, req.Msg.GetPublicKey(), req.Msg.GetGenerateSecret())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RegisterServiceResponse{Service: serviceToProto(s), ClientSecret: secret}), nil
}

func (h *servicesHandler) ListServices(ctx context.Context, _ *connect.Request[trellisv1.ListServicesRequest]) (*connect.Response[trellisv1.ListServicesResponse], error) {
	list, err := h.svc.Federation.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListServicesResponse{}
	for _, s := range list {
		resp.Services = append(resp.Services, serviceToProto(s))
	}
	return connect.NewResponse(resp), nil
}

func (h *servicesHandler) SetServiceState(ctx context.Context, req *connect.Request[trellisv1.SetServiceStateRequest]) (*connect.Response[trellisv1.SetServiceStateResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	state, ok := serviceStates[req.Msg.State]
	if !ok {
		return nil, domain.Invalid("state", "state.unknown", "a service's state is SERVICE_STATE_ACTIVE or SERVICE_STATE_DISABLED")
	}
	s, err := h.svc.Federation.SetServiceState(ctx, p, req.Msg.Name, state)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.SetServiceStateResponse{Service: serviceToProto(s)}), nil
}

func (h *servicesHandler) RemoveService(ctx context.Context, req *connect.Request[trellisv1.RemoveServiceRequest]) (*connect.Response[trellisv1.RemoveServiceResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.svc.Federation.RemoveService(ctx, p, req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveServiceResponse{}), nil
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
	t, err := h.svc.Federation.ExchangeToken(ctx, x)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ExchangeTokenResponse{
		AccessToken: t.AccessToken, ExpiresAt: ts(t.ExpiresAt), IssuedTokenType: tokenTypeAccessToken,
	}), nil
}
