package main_test

import (
	"context"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trellis-testbed/trellis/internal/oidctest"
)

// TestOIDCEndToEnd registers an OpenID Connect client with the real CLI
// and logs a user in to it through the real server, with the standard
// relying-party libraries and a plain HTTP client as the browser.
func TestOIDCEndToEnd(t *testing.T) {
	const pw = "sesame for the testbed admin"
	const redirect = "http://127.0.0.1:9/hub/oauth_callback"
	dataDir := t.TempDir()
	base := &cli{t: t}
	base.ok(pw+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	srv := launch(t, dataDir, "--log-level", "debug")
	base.server = srv.url
	admin := base.as("ops")
	admin.ok(pw+"\n", "login", "ops", "--password-stdin")

	// The secret alone on stdout, shown this once.
	secret := strings.TrimSpace(admin.ok("", "admin", "oidc-client", "add", "notebooks", "--redirect-uri", redirect))
	if len(secret) < 40 || strings.ContainsAny(secret, " \n") {
		t.Fatalf("oidc-client add printed %q", secret)
	}
	if r := admin.run("", "admin", "oidc-client", "add", "dash", "--redirect-uri", "http://dash.example.org/cb"); r.code == 0 || !strings.Contains(r.err, "redirect_uris[0]") {
		t.Fatalf("http redirect off loopback: exit %d, stderr %q", r.code, r.err)
	}
	list := admin.ok("", "admin", "oidc-client", "list")
	if !strings.Contains(list, "notebooks") || !strings.Contains(list, "confidential") || strings.Contains(list, secret) {
		t.Fatalf("oidc-client list:\n%s", list)
	}

	ctx := context.Background()
	rp := oidctest.NewRP(t, base.server+"/oidc", "notebooks", secret, redirect)
	verifier := oauth2.GenerateVerifier()
	back := oidctest.NewBrowser(t).Authorize(rp.Config.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n1")), "ops", pw)
	if !strings.HasPrefix(back.String(), redirect) || back.Query().Get("state") != "st" {
		t.Fatalf("sent back to %s", back)
	}
	tok, err := rp.Config.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.Provider.Verifier(&oidc.Config{ClientID: "notebooks"}).Verify(ctx, raw)
	if err != nil || idt.Subject != "ops" || idt.Nonce != "n1" {
		t.Fatalf("ID token: %v %+v", err, idt)
	}
	info, err := rp.Provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "ops@testbed.example.org" {
		t.Fatalf("userinfo: %v %+v", err, info)
	}

	// Audited, and removal ends the client's tokens.
	if out := admin.ok("", "admin", "audit", "--operation", "oidc.token"); !strings.Contains(out, "oidc_client:notebooks") {
		t.Fatalf("audit of the token:\n%s", out)
	}
	admin.ok("", "admin", "oidc-client", "rm", "notebooks")
	if _, err := rp.Provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("userinfo after the client was removed")
	}
	if out := admin.ok("", "admin", "oidc-client", "list"); !strings.Contains(out, "No OpenID Connect clients.") {
		t.Fatalf("list after rm:\n%s", out)
	}
	// Nothing secret reached the server's log, even at debug level.
	srv.kill(t) // the log is complete, and no longer written
	logs := srv.logs.String()
	for name, secret := range map[string]string{"client secret": secret, "password": pw, "code": back.Query().Get("code"), "access token": tok.AccessToken, "ID token": raw} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log holds the %s", name)
		}
	}
}
