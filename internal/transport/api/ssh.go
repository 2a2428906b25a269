package api

import (
	"context"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
)

func sshKeyToProto(k *domain.SSHKey) *trellisv1.SSHKey {
	return &trellisv1.SSHKey{
		Uid: k.UID, Fingerprint: k.Fingerprint, Type: k.Type, Bits: int32(k.Bits),
		Comment: k.Comment, PublicKey: k.PublicKey, CreatedAt: ts(k.CreatedAt),
	}
}

func (h *usersHandler) AddSSHKey(ctx context.Context, req *connect.Request[trellisv1.AddSSHKeyRequest]) (*connect.Response[trellisv1.AddSSHKeyResponse], error) {
	p, uid := caller(ctx), req.Msg.Uid
	k, err := h.svc.Accounts.AddSSHKey(ctx, p, uid, req.Msg.PublicKey)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.AddSSHKeyResponse{Key: sshKeyToProto(k)}), nil
}

func (h *usersHandler) ListSSHKeys(ctx context.Context, req *connect.Request[trellisv1.ListSSHKeysRequest]) (*connect.Response[trellisv1.ListSSHKeysResponse], error) {
	ks, err := h.svc.Accounts.ListSSHKeys(ctx, caller(ctx), req.Msg.Uid)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListSSHKeysResponse{}
	for _, k := range ks {
		resp.Keys = append(resp.Keys, sshKeyToProto(k))
	}
	return connect.NewResponse(resp), nil
}

func (h *usersHandler) RemoveSSHKey(ctx context.Context, req *connect.Request[trellisv1.RemoveSSHKeyRequest]) (*connect.Response[trellisv1.RemoveSSHKeyResponse], error) {
	p, uid := caller(ctx), req.Msg.Uid
	if err := h.svc.Accounts.RemoveSSHKey(ctx, p, uid, req.Msg.Fingerprint); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.RemoveSSHKeyResponse{}), nil
}

func (h *authHandler) IssueSSHCertificate(ctx context.Context, req *connect.Request[trellisv1.IssueSSHCertificateRequest]) (*connect.Response[trellisv1.IssueSSHCertificateResponse], error) {
	p := caller(ctx)
	var validity *time.Duration
	if v := req.Msg.Validity; v != nil {
		if err := v.CheckValid(); err != nil {
			return nil, domain.Invalid("validity", "validity.format", "not a valid duration")
		}
		d := v.AsDuration()
		validity = &d
	}
	c, err := h.svc.Accounts.IssueSSHCertificate(ctx, p, req.Msg.PublicKey, validity)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.IssueSSHCertificateResponse{
		Certificate: c.Certificate,
		Serial:      c.Serial,
		KeyId:       c.KeyID,
		Principals:  c.Principals,
		ValidAfter:  ts(c.ValidAfter),
		ValidBefore: ts(c.ValidBefore),
		Fingerprint: c.Fingerprint,
	}), nil
}

func (h *apiInfo) GetSSHCertificateAuthority(ctx context.Context, _ *connect.Request[trellisv1.GetSSHCertificateAuthorityRequest]) (*connect.Response[trellisv1.GetSSHCertificateAuthorityResponse], error) {
	line, err := h.svc.Accounts.SSHCertificateAuthority(ctx, caller(ctx))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetSSHCertificateAuthorityResponse{PublicKey: line}), nil
}
