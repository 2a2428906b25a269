package app

import (
	"context"

	"fmt"
	"github.com/trellis-testbed/trellis/internal/domain"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/oidcbackend"
	"github.com/trellis-testbed/trellis/internal/service"
)

// Authentication backend names (see auth.Backend).
const (
	BackendLocal = "local"
	BackendNull  = "null"
	BackendOIDC  = "oidc"
)

// DefaultAuthBackends are the backends of a Config that names none.
var DefaultAuthBackends = []string{BackendLocal}

// nullDanger is what the server says, loudly, when it runs the null backend.
const nullDanger = "NULL AUTHENTICATION BACKEND ENABLED: ANY CALLER MAY CLAIM ANY UID WITHOUT PROOF (X-Trellis-User). FOR DEVELOPMENT ONLY: NEVER RUN THIS ON A SHARED OR REACHABLE MACHINE"

// ParseAuthBackends reads --auth-backends: names separated by commas. It
// never returns nil: an empty list is an error (see checkAuthBackends), not
// the default.
func ParseAuthBackends(s string) []string {
	names := []string{}
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			names = append(names, f)
		}
	}
	return names
}

// checkAuthBackends validates the configured backends (nil means
// DefaultAuthBackends) and returns them. The null backend runs only on a
// server that listens on loopback: TLS does not make it safe, since the
// danger is who may reach it, not what crosses the wire.
func checkAuthBackends(names []string, listen string) ([]string, error) {
	if names == nil {
		names = DefaultAuthBackends
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--auth-backends: name at least one of %s, %s", BackendLocal, BackendNull)
	}
	for i, n := range names {
		switch n {
		case BackendLocal:
		case BackendNull:
			ok, err := loopback(listen)
			if err != nil {
				return nil, fmt.Errorf("--auth-backends null: --listen %q: %w", listen, err)
			}
			if !ok {
				return nil, fmt.Errorf("refusing the null authentication backend on %s: it lets any caller claim any uid, so it runs only on a loopback address (127.0.0.1, ::1, localhost), with or without TLS", listen)
			}
		case BackendOIDC:
			// Its flags are checked when it is built (oidcbackend.New).
		default:
			return nil, fmt.Errorf("--auth-backends: unknown authentication backend %q: known are %s, %s, %s", n, BackendLocal, BackendOIDC, BackendNull)
		}
		if slices.Contains(names[:i], n) {
			return nil, fmt.Errorf("--auth-backends: %s is listed twice", n)
		}
	}
	return names, nil
}

// newAuthBackends builds the backends, in the configured order.
func newAuthBackends(names []string, svc *service.Service, idp *oidcbackend.Backend) []auth.Backend {
	var bs []auth.Backend
	for _, n := range names {
		switch n {
		case BackendLocal:
			// HTTP Basic: the password is the credential (a public
			// operation); nobody is authenticated yet.
			check := func(ctx context.Context, uid, pw string) (*domain.User, error) {
				return svc.Accounts.AuthenticatePassword(ctx, nil, uid, pw)
			}
			bs = append(bs, auth.NewLocal(check, auth.LocalOptions{}))
		case BackendNull:
			bs = append(bs, auth.Null{})
		case BackendOIDC:
			bs = append(bs, idp)
		}
	}
	return bs
}

// loopback reports whether addr (host:port) is a loopback address.
func loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// OIDCBackendConfig configures the oidc authentication backend: the
// institution's identity provider and Trellis's registration there, whose
// redirect URI is the public URL followed by /auth/oidc/callback.
type OIDCBackendConfig struct {
	Issuer   string
	ClientID string
	// ClientSecretFile holds the client secret (ClientSecret, when set,
	// is used instead).
	ClientSecretFile string
	ClientSecret     string
}

// newIdentityProvider builds the oidc backend when it is enabled.
func newIdentityProvider(names []string, c OIDCBackendConfig, publicURL string) (*oidcbackend.Backend, error) {
	if !slices.Contains(names, BackendOIDC) {
		return nil, nil
	}
	secret := c.ClientSecret
	if secret == "" && c.ClientSecretFile != "" {
		b, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	return oidcbackend.New(oidcbackend.Config{
		Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: secret,
		RedirectURL: strings.TrimRight(publicURL, "/") + oidcbackend.CallbackPath,
	})
}
