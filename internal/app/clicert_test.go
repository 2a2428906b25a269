package app_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/cli"
)

// runCLI runs the real trellis client in-process against h, with its
// config directory dir, and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, h *harness, caFile, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	streams := cli.Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb}
	root := cli.NewRoot(streams)
	root.SetArgs(append([]string{"--server", h.url, "--ca-file", caFile, "--config-dir", dir}, args...))
	code := cli.Execute(root, streams)
	return out.String(), errb.String(), code
}

// TestCLIPresentsClientCertificate: over mutual TLS, the client presents the
// certificate `trellis cert get` saved, so that it is the user without any
// token; and a logout ends it.
func TestCLIPresentsClientCertificate(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testCLIPresentsClientCertificate(t, kind) })
	}
}

func testCLIPresentsClientCertificate(t *testing.T, kind storeKind) {
	t.Setenv(cli.EnvToken, "")
	h, ca := newTLSAutoHarness(t, kind)
	h.bootstrapAdmin()
	h.newUser("alice")
	caFile := filepath.Join(t.TempDir(), "trellis-ca.pem")
	if err := os.WriteFile(caFile, ca.CertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, stderr, code := runCLI(t, h, caFile, dir, userPassword+"\n", "cert", "get", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("cert get: exit %d: %s", code, stderr)
	}
	// Keep the session's token aside, then leave the certificate alone in
	// the config directory: no token at all.
	credsPath := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(credsPath)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &saved); err != nil || saved.AccessToken == "" {
		t.Fatalf("saved credentials %s: %v", b, err)
	}
	if err := os.Remove(credsPath); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := runCLI(t, h, caFile, dir, "", "whoami", "--output", "json")
	if code != 0 {
		t.Fatalf("whoami with the certificate alone: exit %d: %s", code, stderr)
	}
	var who struct{ Uid, SessionId string }
	if err := json.Unmarshal([]byte(out), &who); err != nil || who.Uid != "alice" || who.SessionId == "" {
		t.Fatalf("whoami = %q (%v), want alice with the certificate's session", out, err)
	}
	// An authenticated call of another service too.
	if out, stderr, code := runCLI(t, h, caFile, dir, "", "user", "show"); code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("user show with the certificate alone: exit %d: %s %s", code, out, stderr)
	}

	// Without the certificate, the same client is no one.
	empty := t.TempDir()
	if _, stderr, code := runCLI(t, h, caFile, empty, "", "whoami"); code == 0 || !strings.Contains(stderr, "not logged in") {
		t.Fatalf("whoami with neither token nor certificate: exit %d: %s", code, stderr)
	}

	// trellis logout with the certificate alone ends its session; the
	// server then refuses the certificate and says so.
	if out, stderr, code := runCLI(t, h, caFile, dir, "", "logout"); code != 0 || !strings.Contains(out, "Logged out the session of the saved client certificate") {
		t.Fatalf("logout with the certificate alone: exit %d: %s %s", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, h, caFile, dir, "", "whoami"); code == 0 || !strings.Contains(stderr, "logged out") {
		t.Fatalf("whoami after logout: exit %d: %s", code, stderr)
	}
	if out, _, code := runCLI(t, h, caFile, dir, "", "logout"); code != 0 || !strings.Contains(out, "stands for no session") {
		t.Fatalf("logout again: exit %d: %s", code, out)
	}
	// A password login from that config directory works, certificate or
	// not: anonymous calls present none.
	if _, stderr, code := runCLI(t, h, caFile, dir, userPassword+"\n", "login", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("login after logout: exit %d: %s", code, stderr)
	}
	if out, stderr, code := runCLI(t, h, caFile, dir, "", "whoami"); code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("whoami after a new login: exit %d: %s %s", code, out, stderr)
	}
}
