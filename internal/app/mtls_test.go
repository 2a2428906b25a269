package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
)

// newTLSAutoHarness starts a server as `trellis serve --tls-auto` does, with
// clients that trust the Trellis CA; it returns the CA too.
func newTLSAutoHarness(t testing.TB, kind storeKind) (*harness, *x509ca.CA) {
	t.Helper()
	st := openStore(t, kind)
	h := newServer(t, st, func(c *app.Config) { c.TLSAuto = true })
	ca, err := x509ca.Load(context.Background(), st, nil) // the same one, from the store
	if err != nil {
		t.Fatal(err)
	}
	h.url = strings.Replace(h.url, "http://", "https://", 1)
	h.http = mtlsClient(ca, nil)
	h.auth = trellisv1connect.NewAuthClient(h.http, h.url)
	h.users = trellisv1connect.NewUsersClient(h.http, h.url)
	h.info = trellisv1connect.NewApiInfoClient(h.http, h.url)
	return h, ca
}

// mtlsClient trusts ca and presents cert, when given.
func mtlsClient(ca *x509ca.CA, cert *tls.Certificate) *http.Client {
	c := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		// Present it whatever CAs the server names, as a hostile client
		// would (Go's default withholds one the server did not ask for).
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: true}}
}

func (h *harness) mtlsAuth(ca *x509ca.CA, certPEM, keyPEM string) trellisv1connect.AuthClient {
	h.t.Helper()
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		h.t.Fatal(err)
	}
	return trellisv1connect.NewAuthClient(mtlsClient(ca, &pair), h.url)
}

func whoAmI(c trellisv1connect.AuthClient) (string, error) {
	resp, err := c.WhoAmI(context.Background(), connect.NewRequest(&trellisv1.WhoAmIRequest{}))
	if err != nil {
		return "", err
	}
	return resp.Msg.Uid, nil
}

func wantRefused(t *testing.T, err error, code connect.Code, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want %v", code)
	}
	if connect.CodeOf(err) != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestMTLS(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testMTLS(t, kind) })
	}
}

func testMTLS(t *testing.T, kind storeKind) {
	ctx := context.Background()
	h, ca := newTLSAutoHarness(t, kind)
	h.newUser("alice")
	h.newUser("bob")

	// The server's certificate comes from the Trellis CA, for localhost and
	// 127.0.0.1, and GetServerCertificate says so.
	sc, err := h.info.GetServerCertificate(ctx, connect.NewRequest(&trellisv1.GetServerCertificateRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Msg.CaCertificatePem != string(ca.CertificatePEM()) || !strings.HasPrefix(sc.Msg.CertificateChainPem, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("GetServerCertificate = %+v", sc.Msg)
	}
	leaf := parsePEMCert(t, sc.Msg.CertificateChainPem)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("server certificate does not verify for localhost: %v", err)
	}

	// Login with issue_client_certificate: a certificate bound to the
	// session authenticates without a bearer token.
	login, err := h.auth.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "alice", Password: userPassword, IssueClientCertificate: true}))
	if err != nil {
		t.Fatal(err)
	}
	if login.Msg.ClientCertificatePem == "" || login.Msg.ClientKeyPem == "" {
		t.Fatalf("login issued no certificate: %+v", login.Msg)
	}
	if c := parsePEMCert(t, login.Msg.ClientCertificatePem); c.Subject.CommonName != "alice" || c.NotAfter.Sub(c.NotBefore) > 25*time.Hour {
		t.Errorf("client certificate: subject %q, valid %s to %s", c.Subject.CommonName, c.NotBefore, c.NotAfter)
	}
	alice := h.mtlsAuth(ca, login.Msg.ClientCertificatePem, login.Msg.ClientKeyPem)
	if uid, err := whoAmI(alice); err != nil || uid != "alice" {
		t.Fatalf("WhoAmI over mTLS = %q, %v; want alice", uid, err)
	}
	// A bearer token wins over the certificate.
	bobTok := h.login("bob", userPassword).AccessToken
	r := connect.NewRequest(&trellisv1.WhoAmIRequest{})
	r.Header().Set("Authorization", "Bearer "+bobTok)
	if resp, err := alice.WhoAmI(ctx, r); err != nil || resp.Msg.Uid != "bob" {
		t.Errorf("WhoAmI with bearer over mTLS = %v, %v; want bob", resp, err)
	}
	// alice's certificate may not log bob in.
	_, err = alice.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "bob", Password: userPassword}))
	wantRefused(t, err, connect.CodeUnauthenticated, "another user")

	// Logout (with the bearer token) ends the certificate too.
	if _, err := h.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, login.Msg.Tokens.AccessToken)); err != nil {
		t.Fatal(err)
	}
	_, err = whoAmI(alice)
	wantRefused(t, err, connect.CodeUnauthenticated, "logged out")
	// A public operation still goes through, anonymously: logging in with
	// the certificate binds it again.
	if _, err := alice.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "alice", Password: userPassword})); err != nil {
		t.Fatalf("login over mTLS with the certificate of an ended session: %v", err)
	}
	if uid, err := whoAmI(alice); err != nil || uid != "alice" {
		t.Fatalf("WhoAmI after binding again = %q, %v; want alice", uid, err)
	}

	// GetClientCertificate's unbound certificate authenticates nothing, until
	// a login made with it binds it.
	gc, err := h.info.GetClientCertificate(ctx, connect.NewRequest(&trellisv1.GetClientCertificateRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if c := parsePEMCert(t, gc.Msg.CertificatePem); c.Subject.CommonName != x509ca.UnboundCN {
		t.Errorf("unbound certificate's subject %q", c.Subject.CommonName)
	}
	unbound := h.mtlsAuth(ca, gc.Msg.CertificatePem, gc.Msg.KeyPem)
	_, err = whoAmI(unbound)
	wantRefused(t, err, connect.CodeUnauthenticated, "not bound")
	bl, err := unbound.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "bob", Password: userPassword, IssueClientCertificate: true}))
	if err != nil {
		t.Fatal(err)
	}
	if bl.Msg.ClientCertificatePem != "" {
		t.Errorf("a login made with a certificate issued another one")
	}
	if uid, err := whoAmI(unbound); err != nil || uid != "bob" {
		t.Fatalf("WhoAmI with the certificate bound by login = %q, %v; want bob", uid, err)
	}

	// A certificate of another authority, or an expired Trellis one, fails
	// the TLS handshake.
	certFile, keyFile, _ := selfSigned(t)
	otherCert, _ := os.ReadFile(certFile)
	otherKey, _ := os.ReadFile(keyFile)
	_, err = whoAmI(h.mtlsAuth(ca, string(otherCert), string(otherKey)))
	wantHandshakeRefusal(t, "certificate of another CA", err)
	expired, err := ca.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) }).IssueClient("alice")
	if err != nil {
		t.Fatal(err)
	}
	_, err = whoAmI(h.mtlsAuth(ca, string(expired.CertPEM), string(expired.KeyPEM)))
	wantHandshakeRefusal(t, "expired certificate", err)
}

// wantHandshakeRefusal checks that a request failed before any RPC ran: the
// TLS handshake refused the certificate. How the client words that varies
// (the alert, or HTTP/2's "client conn could not be established"); what
// must never happen is an answer from the API, which would mean the
// handshake let the certificate through.
func wantHandshakeRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: the request succeeded, want a TLS handshake refusal", what)
		return
	}
	// The client words a refused handshake many ways (unavailable, or
	// canceled when the reset reaches a write); what matters is that the
	// error did not come from the server.
	if connect.IsWireError(err) {
		t.Errorf("%s: %v, want a TLS handshake refusal, not an API answer", what, err)
	}
}

func parsePEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM in %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	return c
}

// BenchmarkMTLSWhoAmI measures authenticated calls over mutual TLS (HTTP/2,
// the certificate naming the session), beside the same calls with a Bearer
// token over the same TLS server:
//
//	go test -run '^$' -bench WhoAmITLS -benchtime 3s ./internal/app/
func BenchmarkWhoAmITLS(b *testing.B) {
	h, ca := newTLSAutoHarness(b, sqlite)
	h.bootstrapAdmin()
	ctx := context.Background()
	resp, err := h.auth.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: "ops", Password: adminPassword, IssueClientCertificate: true}))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		client trellisv1connect.AuthClient
		tok    string
	}{
		{"mtls", h.mtlsAuth(ca, resp.Msg.ClientCertificatePem, resp.Msg.ClientKeyPem), ""},
		{"bearer", h.auth, resp.Msg.Tokens.AccessToken},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := bc.client.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, bc.tok)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// TestClientCertificateRateLimited: an anonymous caller cannot make the
// server mint key pairs without end.
func TestClientCertificateRateLimited(t *testing.T) {
	h := newHarness(t, sqlite)
	var refused error
	for range 40 {
		if _, err := h.info.GetClientCertificate(context.Background(), connect.NewRequest(&trellisv1.GetClientCertificateRequest{})); err != nil {
			refused = err
			break
		}
	}
	wantRefused(t, refused, connect.CodeResourceExhausted, "too many requests")
	// Others are not held back.
	if _, err := h.info.GetVersion(context.Background(), connect.NewRequest(&trellisv1.GetVersionRequest{})); err != nil {
		t.Fatal(err)
	}
}
