package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func (h *realizationsHandler) ReportState(ctx context.Context, req *connect.Request[trellisv1.ReportStateRequest]) (*connect.Response[trellisv1.ReportStateResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("not yet"))
}

func (h *realizationsHandler) Watch(ctx context.Context, req *connect.Request[trellisv1.RealizationsWatchRequest], stream *connect.ServerStream[trellisv1.RealizationsWatchResponse]) error {
	return connect.NewError(connect.CodeUnimplemented, errors.New("not yet"))
}
