package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/service"
)

// bundleClient trusts the PEM bundle and presents cert, when given, over a
// transport of its own, so that it makes its own handshakes.
func bundleClient(t *testing.T, bundle string, cert *tls.Certificate) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(bundle)) {
		t.Fatal("empty CA bundle")
	}
	c := &tls.Config{RootCAs: pool}
	if cert != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
}

// TestCARotation rotates the X.509 CA under a --tls-auto server: a client
// whose CA bundle was fetched before keeps trusting the server (the new
// root was published ahead), and a client certificate issued before keeps
// authenticating (the replaced root stays trusted for the overlap).
func TestCARotation(t *testing.T) {
	ctx := context.Background()
	h, _ := newTLSAutoHarness(t, sqlite)
	h.newUser("alice")
	h.newUser("bob")
	if _, err := h.srv.Service.Bootstrap(ctx, "ops", "ops@testbed.example.org", adminPassword); err != nil {
		t.Fatal(err)
	}
	adminTok := h.login("ops", adminPassword).AccessToken

	sc, err := h.info.GetServerCertificate(ctx, connect.NewRequest(&trellisv1.GetServerCertificateRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	bundle := sc.Msg.CaCertificatePem
	if n := strings.Count(bundle, "BEGIN CERTIFICATE"); n != 2 {
		t.Fatalf("CA bundle holds %d roots, want the issuing and the next one", n)
	}
	login, err := h.auth.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "alice", Password: userPassword, IssueClientCertificate: true}))
	if err != nil {
		t.Fatal(err)
	}
	alicePair, err := tls.X509KeyPair([]byte(login.Msg.ClientCertificatePem), []byte(login.Msg.ClientKeyPem))
	if err != nil {
		t.Fatal(err)
	}

	// Admins only; audited.
	admin := trellisv1connect.NewAdminClient(h.http, h.url)
	_, err = admin.RotateCertificateAuthority(ctx, req(&trellisv1.RotateCertificateAuthorityRequest{}, login.Msg.Tokens.AccessToken))
	wantCode(t, err, connect.CodePermissionDenied)
	rot, err := admin.RotateCertificateAuthority(ctx, req(&trellisv1.RotateCertificateAuthorityRequest{}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(rot.Msg.CaCertificatesPem, "BEGIN CERTIFICATE"); n != 3 || !strings.HasPrefix(rot.Msg.IssuingSubject, "Trellis CA ") {
		t.Fatalf("rotation: %d roots, issuing %q", n, rot.Msg.IssuingSubject)
	}
	if until := rot.Msg.PreviousTrustedUntil.AsTime(); until.Before(time.Now().Add(89 * 24 * time.Hour)) {
		t.Errorf("previous root trusted until %s only", until)
	}
	evs, _, err := h.srv.Service.Accounts.ListAuditEvents(ctx, operator, service.AuditQuery{Operation: "trellis.v1.Admin/RotateCertificateAuthority"})
	if err != nil || len(evs) == 0 || evs[0].Actor != "ops" || evs[0].Outcome != "ok" || !strings.Contains(evs[0].Detail, rot.Msg.IssuingSubject) {
		t.Fatalf("audit of the rotation: %v %+v", err, evs)
	}

	// The server presents a certificate of the new root, which the bundle
	// from before the rotation trusts; alice's certificate from before
	// still stands for her session.
	uid, err := whoAmI(trellisv1connect.NewAuthClient(bundleClient(t, bundle, &alicePair), h.url))
	if err != nil || uid != "alice" {
		t.Fatalf("alice's certificate from before the rotation, with the bundle from before: %q, %v", uid, err)
	}
	sc2, err := trellisv1connect.NewApiInfoClient(bundleClient(t, bundle, nil), h.url).GetServerCertificate(ctx, connect.NewRequest(&trellisv1.GetServerCertificateRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parsePEMCert(t, sc2.Msg.CertificateChainPem); leaf.Issuer.CommonName != rot.Msg.IssuingSubject {
		t.Errorf("server certificate issued by %q, want the new root %q", leaf.Issuer.CommonName, rot.Msg.IssuingSubject)
	}
	// A certificate issued now comes from the new root, and works too.
	bl, err := h.auth.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "bob", Password: userPassword, IssueClientCertificate: true}))
	if err != nil {
		t.Fatal(err)
	}
	bobPair, _ := tls.X509KeyPair([]byte(bl.Msg.ClientCertificatePem), []byte(bl.Msg.ClientKeyPem))
	if bobPair.Leaf.Issuer.CommonName != rot.Msg.IssuingSubject {
		t.Errorf("bob's certificate issued by %q", bobPair.Leaf.Issuer.CommonName)
	}
	if uid, err := whoAmI(trellisv1connect.NewAuthClient(bundleClient(t, rot.Msg.CaCertificatesPem, &bobPair), h.url)); err != nil || uid != "bob" {
		t.Fatalf("bob after the rotation: %q, %v", uid, err)
	}
	// A client that kept only the old issuing root, not the bundle, no
	// longer trusts the server: why clients keep the bundle.
	oldRoot := bundle[:strings.Index(bundle, "-----END CERTIFICATE-----")+len("-----END CERTIFICATE-----\n")]
	if _, err := whoAmI(trellisv1connect.NewAuthClient(bundleClient(t, oldRoot, &alicePair), h.url)); err == nil {
		t.Error("a client trusting the replaced root alone still trusts the server")
	}
}
