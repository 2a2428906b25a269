// Package oidcbackend is the oidc authentication backend: users log in to
// Trellis through an institution's OpenID Connect provider, and the
// identity it vouches for is linked to a Trellis account on first use.
// The relying-party protocol is go-oidc's and x/oauth2's; the logins in
// progress and the links live in the store (internal/service/federation.go).
package oidcbackend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
)

// Name is the backend's name in --auth-backends.
const Name = "oidc"

// CallbackPath is where the provider sends the browser back, on the
// server's public URL.
const CallbackPath = "/auth/oidc/callback"

// Config says which provider to trust and how Trellis is registered there.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the server's public URL followed by CallbackPath.
	RedirectURL string
	// HTTPClient reaches the provider (default http.DefaultClient).
	HTTPClient *http.Client
}

// Backend is the oidc backend.
type Backend struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovery succeeds
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

var _ auth.Linker = (*Backend)(nil)

// New checks the configuration. The provider is discovered on first use,
// so that Trellis starts while the provider is down.
func New(cfg Config) (*Backend, error) {
	for _, f := range []struct{ name, v string }{{"--oidc-issuer", cfg.Issuer}, {"--oidc-client-id", cfg.ClientID}, {"--oidc-client-secret-file", cfg.ClientSecret}} {
		if f.v == "" {
			return nil, fmt.Errorf("the oidc authentication backend needs %s", f.name)
		}
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("--oidc-issuer %q: not an http(s) URL", cfg.Issuer)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	return &Backend{cfg: cfg}, nil
}

func (b *Backend) Name() string { return Name }

// Issuer is the provider's issuer.
func (b *Backend) Issuer() string { return b.cfg.Issuer }

// Authenticate reads no request credentials: the backend's users arrive
// through a browser login (AuthCodeURL, Exchange) that ends in a Trellis
// session, whose tokens the built-in path reads.
func (b *Backend) Authenticate(context.Context, http.Header) (*auth.Principal, error) {
	return nil, nil
}

func (b *Backend) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, b.cfg.HTTPClient)
}

// discover fetches the provider's metadata once; a failure is retried on
// the next login.
func (b *Backend) discover(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.provider != nil {
		return nil
	}
	p, err := oidc.NewProvider(b.ctx(ctx), b.cfg.Issuer)
	if err != nil {
		return domain.Unavailable("the identity provider %s cannot be reached: %v", b.cfg.Issuer, err)
	}
	b.provider = p
	b.oauth = oauth2.Config{
		ClientID: b.cfg.ClientID, ClientSecret: b.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: b.cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}
	b.verifier = p.Verifier(&oidc.Config{ClientID: b.cfg.ClientID})
	return nil
}

// AuthCodeURL returns where to send the browser to log in, with PKCE: the
// verifier must be kept for Exchange.
func (b *Backend) AuthCodeURL(ctx context.Context, state, nonce string) (authURL, verifier string, err error) {
	if err := b.discover(ctx); err != nil {
		return "", "", err
	}
	verifier = oauth2.GenerateVerifier()
	return b.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), verifier, nil
}

// errRefused is the one answer to a login the provider did not vouch for;
// the reason goes to the audit record, not to the browser.
var errRefused = domain.Unauthenticated("the identity provider did not vouch for this login: start again")

// Exchange redeems the code the provider sent back and verifies the ID
// token (signature, issuer, audience, expiry, nonce). The error's detail
// says why, for the audit record.
func (b *Backend) Exchange(ctx context.Context, code, verifier, nonce string) (*auth.ExternalIdentity, string, error) {
	if err := b.discover(ctx); err != nil {
		return nil, "discovery", err
	}
	tok, err := b.oauth.Exchange(b.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, "code exchange: " + re.ErrorCode, errRefused
		}
		return nil, "code exchange failed", errRefused
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "no ID token", errRefused
	}
	idt, err := b.verifier.Verify(b.ctx(ctx), raw)
	if err != nil {
		return nil, "ID token: " + err.Error(), errRefused
	}
	if idt.Nonce != nonce {
		return nil, "ID token: nonce mismatch", errRefused
	}
	var c struct {
		Email             string `json:"email"`
		EmailVerified     bool   `json:"email_verified"`
		Name              string `json:"name"`
		PreferredUsername string `json:"preferred_username"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, "ID token claims unreadable", errRefused
	}
	return &auth.ExternalIdentity{Issuer: idt.Issuer, Subject: idt.Subject, Email: c.Email, EmailVerified: c.EmailVerified, Name: c.Name, PreferredUsername: c.PreferredUsername}, "", nil
}
