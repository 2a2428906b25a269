package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/requestid"
)

// codes maps Trellis's error vocabulary to protocol codes, once.
var codes = map[domain.Code]connect.Code{
	domain.CodeNotFound:           connect.CodeNotFound,
	domain.CodeAlreadyExists:      connect.CodeAlreadyExists,
	domain.CodeInvalidArgument:    connect.CodeInvalidArgument,
	domain.CodeFailedPrecondition: connect.CodeFailedPrecondition,
	domain.CodeUnauthenticated:    connect.CodeUnauthenticated,
	domain.CodePermissionDenied:   connect.CodePermissionDenied,
	domain.CodeResourceExhausted:  connect.CodeResourceExhausted,
	domain.CodeAborted:            connect.CodeAborted,
	domain.CodeUnavailable:        connect.CodeUnavailable,
}

// toConnect turns a service error into what the caller sees: the domain
// message and field violations, or for anything unexpected only a request id
// to quote to the operators (the cause goes to the log).
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	var de *domain.Error
	if errors.As(err, &de) && de.Code != domain.CodeInternal {
		out := connect.NewError(codes[de.Code], errors.New(de.Message))
		if len(de.Violations) > 0 {
			fv := &trellisv1.FieldViolations{}
			for _, v := range de.Violations {
				fv.Violations = append(fv.Violations, &trellisv1.FieldViolation{Field: v.Field, Rule: v.Rule, Description: v.Description})
			}
			if d, derr := connect.NewErrorDetail(fv); derr == nil {
				out.AddDetail(d)
			}
		}
		return out
	}
	if errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	id := requestid.From(ctx)
	log.ErrorContext(ctx, "internal error", "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error; quote request id "+id+" to the operators"))
}
