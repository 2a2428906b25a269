package api

import (
	"context"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

func materializationToProto(m *domain.Materialization) *trellisv1.Materialization {
	if m == nil {
		return nil
	}
	out := &trellisv1.Materialization{State: m.State, Reason: m.Reason, Suspect: m.Suspect, UpdatedAt: ts(m.UpdatedAt)}
	for _, e := range m.Elements {
		out.Elements = append(out.Elements, &trellisv1.ElementState{
			Kind: e.Kind, Name: e.Name, Provider: e.Provider, State: e.State, Reason: e.Reason, Address: e.Address, UpdatedAt: ts(e.UpdatedAt),
		})
	}
	return out
}

func (h *realizationsHandler) ReportState(ctx context.Context, req *connect.Request[trellisv1.ReportStateRequest]) (*connect.Response[trellisv1.ReportStateResponse], error) {
	rep := service.SiteReport{Realization: req.Msg.Realization, Operation: req.Msg.Operation, Generation: req.Msg.Generation, Done: req.Msg.Done, Error: req.Msg.Error}
	for _, e := range req.Msg.Elements {
		rep.Elements = append(rep.Elements, domain.ElementState{Kind: e.Kind, Name: e.Name, State: e.State, Reason: e.Reason, Address: e.Address})
	}
	m, err := h.svc.Testbed.ReportState(ctx, caller(ctx), rep)
	return reply(m, err, func(m *domain.Materialization) *trellisv1.ReportStateResponse {
		return &trellisv1.ReportStateResponse{Materialization: materializationToProto(m)}
	})
}

func (h *realizationsHandler) Watch(ctx context.Context, req *connect.Request[trellisv1.RealizationsWatchRequest], stream *connect.ServerStream[trellisv1.RealizationsWatchResponse]) error {
	return h.svc.Testbed.WatchRealization(ctx, caller(ctx), req.Msg.Id, func(v *service.RealizationView) error {
		return stream.Send(&trellisv1.RealizationsWatchResponse{Realization: realizationToProto(v)})
	})
}
