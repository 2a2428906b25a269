package oidcbackend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func TestNewChecksTheConfiguration(t *testing.T) {
	good := Config{Issuer: "https://idp.uni.example.edu", ClientID: "testbed", ClientSecret: "s", RedirectURL: "https://trellis.example.org/auth/oidc/callback"}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "--oidc-issuer"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "--oidc-client-id"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "--oidc-client-secret-file"},
		{"not a URL", func(c *Config) { c.Issuer = "idp.uni.example.edu" }, "not an http(s) URL"},
		{"other scheme", func(c *Config) { c.Issuer = "ftp://idp.uni.example.edu" }, "not an http(s) URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error naming %s", err, c.want)
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}

// A provider that cannot be reached refuses the login with a typed error,
// and is tried again on the next one (Trellis starts while it is down).
func TestUnreachableProvider(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	b, err := New(Config{Issuer: down.URL, ClientID: "testbed", ClientSecret: "s", RedirectURL: "http://127.0.0.1/cb"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = b.AuthCodeURL(context.Background(), "state", "nonce")
	if !domain.HasCode(err, domain.CodeUnavailable) || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("AuthCodeURL with the provider down: %v", err)
	}
	down.Close()
	if b.provider != nil {
		t.Fatal("a failed discovery was kept")
	}
	if _, why, err := b.Exchange(context.Background(), "code", "verifier", "nonce"); err == nil || why != "discovery" {
		t.Fatalf("Exchange with the provider down: %v (%s)", err, why)
	}
}
