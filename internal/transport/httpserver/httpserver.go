// Package httpserver assembles Trellis's HTTP surface: the API, health and
// readiness, metrics, the token key set; the middleware every request
// passes through (request id, size and time limits on its body, panic
// recovery, logging); and a listener that bounds each client's connections.
package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/requestid"
	"github.com/trellis-testbed/trellis/internal/store"
)

// MaxBodyBytes bounds every request body; the API's own limit on a decoded
// message is tighter.
const MaxBodyBytes = 16 << 20

// DefaultBodyTimeout is how long a request body may take to arrive: a
// whole MaxBodyBytes body at about 2.2 Mbit/s, far longer than any
// operation's few kilobytes need.
const DefaultBodyTimeout = time.Minute

// Options for the handler.
type Options struct {
	// API serves the Connect routes; it is mounted at "/".
	API http.Handler
	// Ready reports whether the server can serve: the store commits (a
	// write probe, since a store may answer and yet be unable to write).
	Ready func(ctx context.Context) error
	// Draining, when set and true, makes /readyz answer 503 while the
	// server still serves: it is shutting down, and load balancers should
	// send new clients elsewhere.
	Draining func() bool
	// JWKS returns the public key set for tokens.
	JWKS     func() ([]byte, error)
	Gatherer prometheus.Gatherer
	Log      *slog.Logger

	// SSHUserCA, when set, returns the SSH user CA's public key as a line
	// of sshd's TrustedUserCAKeys file, served to sites without
	// credentials at GET /ssh/trusted-user-ca-keys.
	SSHUserCA func() (string, error)

	// BodyTimeout bounds how long a request's body may take to arrive
	// after its headers (which the server's ReadHeaderTimeout bounds): a
	// client trickling a body a byte at a time would otherwise hold a
	// connection and a handler without end. Zero: DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Streaming reports whether a path is a streaming procedure (such as
	// /trellis.v1.Notifications/Watch), whose body lasts as long as the
	// stream: BodyTimeout does not apply to it. nil: none is.
	Streaming func(path string) bool
}

// Handler returns the server's root handler.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", o.API)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Draining != nil && o.Draining() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		if err := o.Ready(ctx); err != nil {
			// An outage of the store is logged once, where it is seen
			// (storemetrics); anything else here, at every probe.
			if !errors.Is(err, store.ErrUnavailable) {
				o.Log.WarnContext(ctx, "not ready", "err", err)
			}
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("store unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b, err := o.JWKS()
		if err != nil {
			o.Log.ErrorContext(r.Context(), "key set unavailable", "err", err)
			http.Error(w, "key set unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	})
	if o.SSHUserCA != nil {
		mux.HandleFunc("GET /ssh/trusted-user-ca-keys", func(w http.ResponseWriter, r *http.Request) {
			line, err := o.SSHUserCA()
			if err != nil {
				o.Log.ErrorContext(r.Context(), "SSH user CA unavailable", "err", err)
				http.Error(w, "SSH user CA unavailable", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			// Short caching: a site polling this picks up a replaced
			// authority within minutes.
			w.Header().Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write([]byte(line + "\n"))
		})
	}
	return middleware(mux, o)
}

// HSTS is the Strict-Transport-Security of every answer over TLS: a year,
// for this host only (others under its domain may not speak HTTPS).
const HSTS = "max-age=31536000"

// middleware gives each request an id (the caller's X-Request-Id when it is
// safe to log), sets the security headers of its answer, bounds its body in
// size and time, recovers panics and logs it. Headers are never logged:
// they carry credentials.
func middleware(next http.Handler, o Options) http.Handler {
	log := o.Log
	bodyTimeout := o.BodyTimeout
	if bodyTimeout <= 0 {
		bodyTimeout = DefaultBodyTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestid.Accept(r.Header.Get("X-Request-Id"))
		h := w.Header()
		h.Set("X-Request-Id", id)
		// No answer is to be sniffed into another type, nor kept by a
		// cache unless its handler says so (the key set, the SSH CA):
		// the API's and the OpenID Connect provider's answers carry
		// tokens, certificates and secrets.
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", HSTS)
		}
		ctx := requestid.With(r.Context(), id)
		r = r.WithContext(ctx)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		if r.ContentLength != 0 && (o.Streaming == nil || !o.Streaming(r.URL.Path)) {
			// Reads of the body fail past the deadline: on HTTP/1 the
			// connection's, which net/http clears once the body is
			// read (so a handler working longer keeps its context,
			// TestHandlerOutlivesBodyTimeout), on HTTP/2 this
			// stream's. A writer without deadlines (a test's
			// recorder) is left as it is.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(ctx, "panic serving request", "panic", p, "path", r.URL.Path, "stack", string(debug.Stack()))
				if !rec.wrote {
					http.Error(rec, "internal error; request id "+id, http.StatusInternalServerError)
				}
			}
			level := slog.LevelDebug
			if rec.status >= 500 {
				level = slog.LevelError
			}
			log.Log(ctx, level, "request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration", time.Since(start), "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder remembers the status code; Unwrap keeps http.ResponseController
// (flushing for streams) working.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// SecurePage sets the headers of a page that takes a password: never
// framed (no clickjacking), never cached, no referrer leaking its query.
// No form-action: browsers apply it to every redirect after a form's post,
// and a login's post ends at the client's redirect URI, another origin.
func SecurePage(h http.Header) {
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

// Status is the HTTP status of a typed error, for pages (the API maps
// errors to its protocols' codes in internal/transport/api).
func Status(c domain.Code) int {
	switch c {
	case domain.CodeNotFound:
		return http.StatusNotFound
	case domain.CodeUnauthenticated:
		return http.StatusUnauthorized
	case domain.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case domain.CodePermissionDenied:
		return http.StatusForbidden
	case domain.CodeAlreadyExists, domain.CodeFailedPrecondition, domain.CodeAborted:
		return http.StatusConflict
	case domain.CodeInternal:
		return http.StatusInternalServerError
	default:
		return http.StatusBadRequest
	}
}
