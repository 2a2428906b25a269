package auth

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// NullUserHeader names the uid a request claims under the null backend.
const NullUserHeader = "X-Trellis-User"

// NullWarningHeader and NullWarning are on every response of a server that
// runs the null backend, so that no one mistakes it for a real one.
const (
	NullWarningHeader = "X-Trellis-Warning"
	NullWarning       = "null authentication backend: any caller may claim any uid"
)

// Null is the development backend: a request with "X-Trellis-User: UID" is
// that user, without any proof. The server refuses to run it unless it
// listens on loopback only, and says so loudly (see app.Build). The account
// must exist and be active, as for every backend.
type Null struct{}

// Name implements Backend.
func (Null) Name() string { return "null" }

// Authenticate implements Backend.
func (Null) Authenticate(_ context.Context, h http.Header) (*Principal, error) {
	uid := strings.TrimSpace(h.Get(NullUserHeader))
	if uid == "" {
		return nil, nil
	}
	if err := domain.ValidateUID("uid", uid); err != nil {
		return nil, domain.Unauthenticated("%s: not a uid", NullUserHeader)
	}
	return &Principal{UID: uid}, nil
}

// NullWarningMiddleware puts the null backend's warning on every response.
//
// It also refuses a request whose Host is not a loopback name: a web page
// the developer visits could otherwise reach the server through DNS
// rebinding (a name of the attacker's that resolves to 127.0.0.1) and
// claim any uid.
func NullWarningMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(NullWarningHeader, NullWarning)
		if !loopbackHost(r.Host) {
			http.Error(w, "the null authentication backend serves requests addressed to a loopback name only (127.0.0.1, ::1, localhost)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
