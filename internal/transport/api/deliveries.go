package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
)

func deliveryToProto(d *domain.Delivery) *trellisv1.Delivery {
	return &trellisv1.Delivery{
		Id: d.ID, Provider: d.Provider, Kind: d.Kind, State: d.State(), CreatedAt: ts(d.CreatedAt), Attempts: int32(d.Attempts),
		NextAttemptAt: ts(d.NextAttempt), DeliveredAt: ts(d.DeliveredAt), FailedAt: ts(d.FailedAt), LastError: d.LastError,
		Payload: string(d.Payload),
	}
}

func (h *providersHandler) ListDeliveries(ctx context.Context, req *connect.Request[trellisv1.ListDeliveriesRequest]) (*connect.Response[trellisv1.ListDeliveriesResponse], error) {
	ds, next, err := h.svc.Sites.ListDeliveries(ctx, caller(ctx), req.Msg.Provider, req.Msg.IncludeDone, req.Msg.PageSize, req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &trellisv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d))
	}
	return connect.NewResponse(resp), nil
}
