package main_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

// TestTLSAutoEndToEnd: `serve --tls-auto` serves HTTPS with a certificate
// of its own CA; the CLI reaches it once told to trust that CA, and not
// before.
func TestTLSAutoEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	base := &cli{t: t}
	base.ok(adminPW+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	s := launch(t, dataDir, "--tls-auto")
	base.server = s.url

	// An operator takes the CA certificate once (here without checking it;
	// in real life its fingerprint is compared out of band).
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := trellisv1connect.NewApiInfoClient(insecure, s.url).GetServerCertificate(context.Background(), connect.NewRequest(&trellisv1.GetServerCertificateRequest{}))
	if err != nil || !strings.Contains(resp.Msg.CaCertificatePem, "BEGIN CERTIFICATE") {
		t.Fatalf("server certificate: %v %v", resp, err)
	}
	caFile := filepath.Join(t.TempDir(), "trellis-ca.pem")
	if err := os.WriteFile(caFile, []byte(resp.Msg.CaCertificatePem), 0o644); err != nil {
		t.Fatal(err)
	}

	admin := base.as("ops")
	if r := admin.run(adminPW+"\n", "login", "ops", "--password-stdin"); r.code == 0 || !strings.Contains(r.err, "certificate") {
		t.Fatalf("login without trusting the CA: exit %d %s", r.code, r.err)
	}
	admin.ok(adminPW+"\n", "--ca-file", caFile, "login", "ops", "--password-stdin")
	trusting := &cli{t: t, server: admin.server, env: append(admin.env, "TRELLIS_CA_FILE="+caFile)}
	if out := trusting.ok("", "whoami"); !strings.Contains(out, "ops") {
		t.Fatalf("whoami over TLS: %s", out)
	}

	// The CA rotates; the CA file from before still trusts the server
	// (the new root was in its bundle), and the new bundle is printed.
	bundle := trusting.ok("", "admin", "rotate-ca")
	if strings.Count(bundle, "BEGIN CERTIFICATE") != 3 {
		t.Fatalf("rotate-ca printed:\n%s", bundle)
	}
	if out := trusting.ok("", "whoami"); !strings.Contains(out, "ops") {
		t.Fatalf("whoami after the rotation, with the CA file from before: %s", out)
	}
}
