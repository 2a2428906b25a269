package api

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/requestid"
	"github.com/trellis-testbed/trellis/internal/store"
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

// RetryAfter is the hint an unavailable answer carries (the Retry-After
// header, in seconds): long enough for a restarting database or a cleared
// disk, short enough that clients do not give up.
const RetryAfter = 5 * time.Second

// toConnect turns a service error into what the caller sees: the domain
// message and field violations, or for anything unexpected only a request id
// to quote to the operators (the cause goes to the log). A store that cannot
// serve (store.ErrUnavailable, however deep) is unavailable with a retry
// hint, not a bug: its cause is logged once per outage, by the store's
// wrapper, not here for every request.
func toConnect(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	var de *domain.Error
	if errors.Is(err, store.ErrUnavailable) {
		de = &domain.Error{Code: domain.CodeUnavailable, Message: "the store is unavailable; try again shortly"}
	}
	if de != nil || errors.As(err, &de) && de.Code != domain.CodeInternal {
		out := connect.NewError(codes[de.Code], errors.New(de.Message))
		if de.Code == domain.CodeUnavailable {
			out.Meta().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
		}
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
