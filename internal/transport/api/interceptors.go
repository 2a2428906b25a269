package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
)

// gate authenticates every call and narrows it by the API token's scopes.
// Authorization is the service's: every operation applies its one rule
// itself, whichever door calls it.
type gate struct {
	authn *auth.Authenticator
	svc   *service.Service
	log   *slog.Logger
}

func (g *gate) admit(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	op := opName(procedure)
	o, known := service.Operation(op)
	if !known {
		// Deny by default: an operation the rule table lacks is refused
		// before anything else.
		return ctx, domain.PermissionDenied("operation %s has no authorization rule", op)
	}
	p, err := g.authn.Authenticate(ctx, h)
	// A client certificate that names no live session stands for no one:
	// public operations (a login that binds it again) go on anonymously.
	var cr *auth.CertRefusal
	if errors.As(err, &cr) && o.Rule.Kind == policy.Public {
		p, err = nil, nil
	}
	if err != nil {
		// An API token that checked out but may not be used (expired,
		// revoked) has an owner to record; a bad token has none.
		var tr *auth.TokenRefusal
		if errors.As(err, &tr) {
			g.svc.AuditRefusal(ctx, op, &auth.Principal{UID: tr.UID}, "api_token:"+tr.Name, err, tr.Reason)
		}
		// So has an exchanged token whose service or user may no longer
		// act: the record names both.
		var ar *auth.ActingRefusal
		if errors.As(err, &ar) {
			g.svc.AuditRefusal(ctx, op, &auth.Principal{UID: ar.UID, Actor: auth.ActorOf(ar.Service)}, auth.ActorOf(ar.Service), err, ar.Reason)
		}
		// And a JWT in a registered site's name that its key did not sign.
		var sr *auth.SiteRefusal
		if errors.As(err, &sr) {
			g.svc.AuditRefusal(ctx, op, &auth.Principal{Provider: sr.Provider, Actor: auth.ProviderOf(sr.Provider)}, auth.ProviderOf(sr.Provider), err, sr.Reason)
		}
		return ctx, err
	}
	// An API token's scopes narrow, before the rule, what its user may do.
	if p != nil && !policy.ScopeAllows(p.Scopes, op) {
		err := policy.ScopeDenied(p.Scopes, op)
		g.svc.AuditRefusal(ctx, op, p, "api_token:"+p.TokenName, err, "api token scopes: "+strings.Join(p.Scopes, " "))
		return ctx, err
	}
	if p != nil {
		ctx = auth.WithPrincipal(ctx, p)
	}
	return ctx, nil
}

// opName turns a Connect procedure ("/trellis.v1.Users/GetUser") into the
// service's operation name ("trellis.v1.Users/GetUser").
func opName(procedure string) string { return strings.TrimPrefix(procedure, "/") }

func (g *gate) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := g.admit(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, g.challenge(toConnect(ctx, g.log, err))
		}
		resp, err := next(ctx, req)
		return resp, g.challenge(toConnect(ctx, g.log, err))
	}
}

// challenge adds to an unauthenticated answer (HTTP 401) the schemes the
// server accepts, as RFC 9110 asks of a 401: Bearer, and the backends'
// own (Basic with the local backend).
func (g *gate) challenge(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Code() == connect.CodeUnauthenticated {
		ce.Meta().Set("WWW-Authenticate", g.authn.Challenge())
	}
	return err
}

func (g *gate) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (g *gate) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := g.admit(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return toConnect(ctx, g.log, err)
		}
		return toConnect(ctx, g.log, next(ctx, conn))
	}
}

// metrics counts calls by operation and code and times them.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_rpc_requests_total",
			Help: "API calls by operation and result code.",
		}, []string{"operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "trellis_rpc_duration_seconds",
			Help:    "API call latency by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *metrics) observe(procedure string, start time.Time, err error) {
	op := opName(procedure)
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (m *metrics) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		m.observe(req.Spec().Procedure, start, err)
		return resp, err
	}
}

func (m *metrics) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (m *metrics) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		m.observe(conn.Spec().Procedure, start, err)
		return err
	}
}

// caller is who the gate authenticated: nil for an anonymous caller. The
// service decides what either may do.
func caller(ctx context.Context) *auth.Principal { return auth.PrincipalFrom(ctx) }

// reply converts a service result into a response, or passes its error on.
func reply[T, R any](v T, err error, conv func(T) *R) (*connect.Response[R], error) {
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(conv(v)), nil
}

// done answers an operation that returns nothing but its outcome.
func done[R any](err error) (*connect.Response[R], error) {
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(new(R)), nil
}
