package api

import (
	"context"
	"time"

	"connectrpc.com/connect"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/transport/ratelimit"
)

// addressLimits bound, per client address, the public operations that cost
// the server something an anonymous caller could make it spend without
// end: a key pair and a signature (an unbound client certificate), a mail
// (reset, confirmation), a login through the identity provider, a password
// check (an Argon2id run: Login, and ChallengeResponse which checks a clear
// answer), a challenge and its audit record (RequestChallenge). Password guessing against one account is bounded per account and
// client by the login back-off (docs/operations.md, "Login lockout
// policy"); this limit bounds one address's guessing across accounts.
var addressLimits = map[string]ratelimit.Limit{
	opName(trellisv1connect.ApiInfoGetClientCertificateProcedure): {Every: 100 * time.Millisecond, Burst: 20},
	opName(trellisv1connect.UsersRequestPasswordResetProcedure):   {Every: time.Second, Burst: 10},
	opName(trellisv1connect.UsersResendConfirmationProcedure):     {Every: time.Second, Burst: 10},
	opName(oidcv1connect.LoginStartLoginProcedure):                {Every: 200 * time.Millisecond, Burst: 20},
	opName(trellisv1connect.AuthLoginProcedure):                   {Every: 200 * time.Millisecond, Burst: 30},
	opName(trellisv1connect.AuthChallengeResponseProcedure):       {Every: 200 * time.Millisecond, Burst: 30},
	opName(trellisv1connect.AuthRequestChallengeProcedure):        {Every: 200 * time.Millisecond, Burst: 30},
}

var errTooMany = domain.ResourceExhausted("too many requests of this kind from your address: wait a moment and try again")

// limiter applies addressLimits to the calls of the contract.
type limiter struct{ l *ratelimit.Limiter }

func newLimiter() *limiter { return &limiter{l: ratelimit.New(addressLimits)} }

func (l *limiter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !l.l.Allow(opName(req.Spec().Procedure), req.Peer().Addr) {
			return nil, toConnect(ctx, nil, errTooMany)
		}
		return next(ctx, req)
	}
}

func (l *limiter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *limiter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
