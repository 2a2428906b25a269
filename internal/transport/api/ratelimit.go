package api

import (
	"context"
	"net"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
)

// limit is how often one address may call an operation: a steady rate and
// a burst.
type limit struct {
	every time.Duration
	burst int
}

// addressLimits bound, per client address, the public operations that cost
// the server something an anonymous caller could make it spend without
// end: a key pair and a signature (an unbound client certificate), a mail
// (reset, confirmation), a login through the identity provider. Password
// guessing is bounded per account by the login back-off instead.
var addressLimits = map[string]limit{
	policy.Op(trellisv1connect.ApiInfoGetClientCertificateProcedure): {every: 100 * time.Millisecond, burst: 20},
	policy.Op(trellisv1connect.UsersRequestPasswordResetProcedure):   {every: time.Second, burst: 10},
	policy.Op(trellisv1connect.UsersResendConfirmationProcedure):     {every: time.Second, burst: 10},
	policy.Op(oidcv1connect.LoginStartLoginProcedure):                {every: 200 * time.Millisecond, burst: 20},
}

// maxAddresses bounds the limiters kept; past it, those idle for a minute
// are dropped (an idle limiter is full again anyway).
const maxAddresses = 10_000

// limiter applies addressLimits. Behind a reverse proxy every caller has
// the proxy's address, and the limits apply to all of them together.
type limiter struct {
	mu   sync.Mutex
	byOp map[string]map[string]*addrLimiter
	now  func() time.Time
}

type addrLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter() *limiter {
	return &limiter{byOp: map[string]map[string]*addrLimiter{}, now: time.Now}
}

var errTooMany = domain.ResourceExhausted("too many requests of this kind from your address: wait a moment and try again")

func (l *limiter) allow(op, peer string) bool {
	lim, ok := addressLimits[op]
	if !ok {
		return true
	}
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		host = peer
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.byOp[op]
	if m == nil {
		m = map[string]*addrLimiter{}
		l.byOp[op] = m
	}
	a := m[host]
	if a == nil {
		if len(m) >= maxAddresses {
			for h, x := range m {
				if now.Sub(x.seen) > time.Minute {
					delete(m, h)
				}
			}
		}
		a = &addrLimiter{lim: rate.NewLimiter(rate.Every(lim.every), lim.burst)}
		m[host] = a
	}
	a.seen = now
	return a.lim.AllowN(now, 1)
}

func (l *limiter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !l.allow(policy.Op(req.Spec().Procedure), req.Peer().Addr) {
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
