package api

import (
	"context"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
)

// apiTokenToProto describes a token; the message has no field for its secret.
func apiTokenToProto(t *domain.APIToken) *trellisv1.APIToken {
	return &trellisv1.APIToken{
		Name: t.Name, Scopes: policy.DecodeScopes(t.Scopes),
		CreatedAt: ts(t.CreatedAt), ExpiresAt: ts(t.ExpiresAt),
		LastUsedAt: ts(t.LastUsedAt), RevokedAt: ts(t.RevokedAt), // unset when zero
	}
}

func (h *authHandler) CreateAPIToken(ctx context.Context, req *connect.Request[trellisv1.CreateAPITokenRequest]) (*connect.Response[trellisv1.CreateAPITokenResponse], error) {
	p := caller(ctx)
	var expires *time.Duration
	if v := req.Msg.Expires; v != nil {
		if err := v.CheckValid(); err != nil {
			return nil, domain.Invalid("expires", "expires.format", "not a valid duration")
		}
		d := v.AsDuration()
		expires = &d
	}
	tok, t, err := h.svc.Accounts.CreateAPIToken(ctx, p, req.Msg.Name, req.Msg.Scopes, expires)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.CreateAPITokenResponse{Token: tok, ApiToken: apiTokenToProto(t)}), nil
}

func (h *authHandler) ListAPITokens(ctx context.Context, req *connect.Request[trellisv1.ListAPITokensRequest]) (*connect.Response[trellisv1.ListAPITokensResponse], error) {
	p := caller(ctx)
	toks, err := h.svc.Accounts.ListAPITokens(ctx, p)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListAPITokensResponse{}
	for _, t := range toks {
		resp.ApiTokens = append(resp.ApiTokens, apiTokenToProto(t))
	}
	return connect.NewResponse(resp), nil
}

func (h *authHandler) RevokeAPIToken(ctx context.Context, req *connect.Request[trellisv1.RevokeAPITokenRequest]) (*connect.Response[trellisv1.RevokeAPITokenResponse], error) {
	p := caller(ctx)
	if err := h.svc.Accounts.RevokeAPIToken(ctx, p, req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RevokeAPITokenResponse{}), nil
}
