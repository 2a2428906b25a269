package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func (h *apiInfo) GetServerCertificate(ctx context.Context, _ *connect.Request[trellisv1.GetServerCertificateRequest]) (*connect.Response[trellisv1.GetServerCertificateResponse], error) {
	chain, ca, err := h.svc.Accounts.ServerCertificate(ctx, caller(ctx))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetServerCertificateResponse{CertificateChainPem: chain, CaCertificatePem: ca}), nil
}

func (h *apiInfo) GetClientCertificate(ctx context.Context, _ *connect.Request[trellisv1.GetClientCertificateRequest]) (*connect.Response[trellisv1.GetClientCertificateResponse], error) {
	iss, err := h.svc.Accounts.UnboundClientCertificate(ctx, caller(ctx))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetClientCertificateResponse{CertificatePem: string(iss.CertPEM), KeyPem: string(iss.KeyPEM)}), nil
}
