package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/service"
)

func (h *authHandler) RequestChallenge(ctx context.Context, req *connect.Request[trellisv1.RequestChallengeRequest]) (*connect.Response[trellisv1.RequestChallengeResponse], error) {
	c, err := h.svc.Accounts.RequestChallenge(ctx, caller(ctx), req.Msg.Uid, req.Msg.Types)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.RequestChallengeResponse{ChallengeId: c.ID, Type: c.Type, ExpiresAt: ts(c.ExpiresAt)}
	if sc := c.Scram; sc != nil {
		resp.ScramArgon2Id = &trellisv1.ScramArgon2IdChallenge{
			Salt:        sc.Salt,
			MemoryKib:   sc.Params.MemoryKiB,
			Time:        sc.Params.Time,
			Threads:     uint32(sc.Params.Threads),
			KeyLength:   sc.Params.KeyLen,
			ServerNonce: sc.ServerNonce,
		}
	}
	return connect.NewResponse(resp), nil
}

func (h *authHandler) ChallengeResponse(ctx context.Context, req *connect.Request[trellisv1.ChallengeResponseRequest]) (*connect.Response[trellisv1.ChallengeResponseResponse], error) {
	l, err := h.svc.Accounts.ChallengeResponse(ctx, caller(ctx), service.ChallengeAnswer{
		ChallengeID: req.Msg.ChallengeId,
		UID:         req.Msg.Uid,
		Password:    req.Msg.Password,
		ClientNonce: req.Msg.ClientNonce,
		ClientProof: req.Msg.ClientProof,

		IssueClientCertificate: req.Msg.IssueClientCertificate,
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ChallengeResponseResponse{
		Tokens:          tokensToProto(l.Tokens),
		ServerSignature: l.ServerSignature,

		ClientCertificatePem: l.Tokens.ClientCertificatePEM,
		ClientKeyPem:         l.Tokens.ClientKeyPEM,
	}), nil
}
