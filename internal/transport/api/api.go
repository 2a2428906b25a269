// Package api serves the Trellis API contract (proto/trellis/v1) with
// Connect, so one handler speaks gRPC, gRPC-Web and JSON over HTTP.
package api

import (
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/service"
)

// MaxRequestBytes bounds a decoded request message: room for the largest
// experiment document (8 MiB of aspects, sent as base64 in JSON).
const MaxRequestBytes = 12 << 20

const compressMinBytes = 4 << 10

// Options configure the API handlers.
type Options struct {
	Service       *service.Service
	Authenticator *auth.Authenticator
	Registerer    prometheus.Registerer
	Log           *slog.Logger
	Version       string
}

// Mount registers every API service on mux.
func Mount(mux *http.ServeMux, o Options) {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(newMetrics(o.Registerer), newLimiter(), &gate{authn: o.Authenticator, svc: o.Service, log: o.Log}),
		connect.WithReadMaxBytes(MaxRequestBytes),
		// Compressing a response of a few hundred bytes costs far more CPU
		// (a gzip writer's setup) than the bytes it saves on the wire.
		connect.WithCompressMinBytes(compressMinBytes),
	}
	mux.Handle(trellisv1connect.NewApiInfoHandler(&apiInfo{version: o.Version, svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewAuthHandler(&authHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewUsersHandler(&usersHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewAdminHandler(&adminHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewServicesHandler(&servicesHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewOidcClientsHandler(&oidcClientsHandler{svc: o.Service}, opts...))
	mux.Handle(oidcv1connect.NewLoginHandler(&oidcLoginHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewProjectsHandler(&projectsHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewCirclesHandler(&circlesHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewNotificationsHandler(&notificationsHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewPolicyHandler(&policyHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewExperimentsHandler(&experimentsHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewLibrariesHandler(&librariesHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewResourcesHandler(&resourcesHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewRealizationsHandler(&realizationsHandler{svc: o.Service}, opts...))
	mux.Handle(trellisv1connect.NewProvidersHandler(&providersHandler{svc: o.Service}, opts...))
}
