package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSecurityHeaders(t *testing.T) {
	api := http.NewServeMux()
	api.HandleFunc("POST /trellis.v1.Auth/Login", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"tokens":{"accessToken":"secret"}}`))
	})
	api.HandleFunc("POST /oidc/oauth/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"access_token":"secret"}`))
	})
	api.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("test") })
	h := Handler(Options{
		API: api, Log: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry(),
		Ready:     func(context.Context) error { return nil },
		JWKS:      func() ([]byte, error) { return []byte(`{"keys":[]}`), nil },
		SSHUserCA: func() (string, error) { return "ssh-ed25519 AAAA", nil },
	})
	tests := []struct {
		method, path string
		status       int
		cache        string // Cache-Control
	}{
		{"POST", "/trellis.v1.Auth/Login", 200, "no-store"},
		{"POST", "/oidc/oauth/token", 200, "no-store"},
		{"GET", "/healthz", 200, "no-store"},
		{"GET", "/readyz", 200, "no-store"},
		{"GET", "/metrics", 200, "no-store"},
		{"GET", "/nowhere", 404, "no-store"},
		{"GET", "/panic", 500, "no-store"},
		// Public keys: caches may keep them a while, as their handlers say.
		{"GET", "/.well-known/jwks.json", 200, "public, max-age=300"},
		{"GET", "/ssh/trusted-user-ca-keys", 200, "public, max-age=300"},
	}
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	for _, srv := range []*httptest.Server{plain, secure} {
		overTLS := strings.HasPrefix(srv.URL, "https:")
		for _, tt := range tests {
			r, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			hsts := ""
			if overTLS {
				hsts = HSTS
			}
			got := resp.Header
			if resp.StatusCode != tt.status || got.Get("Cache-Control") != tt.cache ||
				got.Get("X-Content-Type-Options") != "nosniff" || got.Get("Strict-Transport-Security") != hsts {
				t.Errorf("%s %s (TLS %v): %s, Cache-Control %q, X-Content-Type-Options %q, Strict-Transport-Security %q; want %d, %q, nosniff, %q",
					tt.method, tt.path, overTLS, resp.Status, got.Get("Cache-Control"), got.Get("X-Content-Type-Options"),
					got.Get("Strict-Transport-Security"), tt.status, tt.cache, hsts)
			}
		}
	}
}
