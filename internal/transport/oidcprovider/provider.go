// Package oidcprovider is Trellis's OpenID Connect provider: discovery, the
// authorization code flow with PKCE, ID tokens, userinfo, revocation and
// the key set, so that other web services log Trellis users in the
// standard way. The protocol is github.com/zitadel/oidc's (an OpenID
// certified implementation); this package adapts it to the service layer
// and adds the login page.
package oidcprovider

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/service"
)

// Prefix is where the provider is mounted; the issuer is the server's
// public URL followed by it.
const Prefix = "/oidc"

// Options configure the provider.
type Options struct {
	Service *service.Service
	Keys    *keys.Manager
	// PublicURL is how browsers and clients reach the server.
	PublicURL string
	// TokenKey encrypts the opaque access tokens; every replica must have
	// the same (service.OIDCTokenKey).
	TokenKey [32]byte
	Log      *slog.Logger
}

// discovery is the library's discovery document, saying only what this
// provider does: the library's lists every flow it could serve, while
// Trellis serves the code flow with PKCE S256 and nothing else (no
// implicit or hybrid flow, no device, JWT-bearer or refresh grant).
func discovery(ctx context.Context, p *op.Provider, st *storage) *oidc.DiscoveryConfiguration {
	d := op.CreateDiscoveryConfig(ctx, p, st)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.DeviceAuthorizationEndpoint = ""
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	return d
}

// BrowserPaths are the provider's pages a browser visits (below Prefix):
// anyone may load them, so they are rate-limited by address.
var BrowserPaths = []string{"/authorize", "/authorize/callback", "/login", "/end_session"}

// Issuer returns the issuer of a server reached at publicURL.
func Issuer(publicURL string) string { return strings.TrimRight(publicURL, "/") + Prefix }

// New returns the provider's handler, to be mounted at Prefix with the
// prefix stripped.
func New(o Options) (http.Handler, error) {
	issuer := Issuer(o.PublicURL)
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc issuer %q: %w", issuer, err)
	}
	st := &storage{svc: o.Service, keys: o.Keys, loginURL: func(id string) string {
		return issuer + "/login?id=" + url.QueryEscape(id)
	}}
	cfg := &op.Config{
		CryptoKey:          o.TokenKey,
		CodeMethodS256:     true,
		AuthMethodPost:     true,
		SupportedUILocales: []language.Tag{language.English},
		SupportedScopes:    supportedScopes,
		SupportedClaims: []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash",
			"preferred_username", "name", "email", "email_verified",
		},
	}
	var opts []op.Option
	// Plain http is served on loopback only (app.CheckListen); the
	// library refuses an http issuer unless told.
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	l := &loginPage{svc: o.Service, callback: op.AuthCallbackURL(provider), log: log}
	issuerCtx := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.Handle("/login", issuerCtx.Handler(l))
	mux.Handle("GET /.well-known/openid-configuration", issuerCtx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op.Discover(w, discovery(r.Context(), provider, st))
	}))
	mux.Handle("/", audit(provider, o.Service))
	return mux, nil
}
