// Package clientaddr carries the network address a request came from, as
// the key the server counts a client under: the login back-off (package
// service) and the per-address limits (package ratelimit) both use it, so
// that "one client" means the same thing to both.
//
// Behind a reverse proxy every request has the proxy's address, and every
// client behind it is one client.
package clientaddr

import (
	"context"
	"net"
	"net/http"
)

// MaxLen bounds a key: an IPv6 /64 is at most 43 characters; anything
// longer is not an address net/http produces and is cut here, so a key is
// always small enough to store.
const MaxLen = 64

// Key is the client a remote address is counted under: its IP, and for
// IPv6 its /64, which one host usually holds whole.
func Key(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		if len(host) > MaxLen {
			host = host[:MaxLen]
		}
		return host
	case ip.To4() != nil:
		return ip.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

type ctxKey struct{}

// With returns ctx carrying the client key of remoteAddr.
func With(ctx context.Context, remoteAddr string) context.Context {
	return context.WithValue(ctx, ctxKey{}, Key(remoteAddr))
}

// From returns the client key in ctx, or "" when the request came from no
// network (the operator's local commands, in-process calls).
func From(ctx context.Context) string {
	k, _ := ctx.Value(ctxKey{}).(string)
	return k
}

// Middleware puts the request's client key in its context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(With(r.Context(), r.RemoteAddr)))
	})
}
