package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
	"github.com/trellis-testbed/trellis/internal/auth/password"
)

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr string
		tls  bool
		ok   bool
	}{
		{"127.0.0.1:7700", false, true},
		{"[::1]:7700", false, true},
		{"localhost:7700", false, true},
		{"127.0.0.2:7700", false, true},
		{"0.0.0.0:7700", false, false},
		{":7700", false, false},
		{"10.1.2.3:7700", false, false},
		{"testbed.example.org:443", false, false},
		{"0.0.0.0:443", true, true},
		{"no-port", false, false},
	}
	for _, tt := range tests {
		err := app.CheckListen(tt.addr, tt.tls)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, tls=%v) = %v, want ok=%v", tt.addr, tt.tls, err, tt.ok)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "trellis test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	st := openStore(t, sqlite)
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	params := password.TestParams()
	srv, err := app.Build(ctx, app.Config{Listen: ln.Addr().String(), TLSCert: certFile, TLSKey: keyFile, PasswordParams: &params, Log: quietLog()}, st)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	url := "https://" + ln.Addr().String()
	// gRPC over TLS (HTTP/2) and Connect both work on the one port.
	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}} {
		c := trellisv1connect.NewApiInfoClient(hc, url, opts...)
		resp, err := c.GetVersion(ctx, connect.NewRequest(&trellisv1.GetVersionRequest{}))
		if err != nil || resp.Msg.ApiVersion != "v1" {
			t.Fatalf("%s over TLS: %v %v", name, resp, err)
		}
	}
	if srv.Service.Config().Issuer != url {
		t.Errorf("issuer %q, want %q from the TLS listen address", srv.Service.Config().Issuer, url)
	}
}

// TestGRPCOverCleartext checks that plain gRPC clients (HTTP/2 without TLS,
// h2c) reach the loopback server too.
func TestGRPCOverCleartext(t *testing.T) {
	h := newHarness(t, sqlite)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	c := trellisv1connect.NewApiInfoClient(hc, h.url, connect.WithGRPC())
	resp, err := c.GetVersion(context.Background(), connect.NewRequest(&trellisv1.GetVersionRequest{}))
	if err != nil || resp.Msg.ApiVersion != "v1" {
		t.Fatalf("gRPC over h2c: %v %v", resp, err)
	}
}

// TestShutdownEndsWatchStreams: an interrupt ends the notification streams
// open at the time, so that the server stops at once (not after its grace
// period, with an error) and their clients learn that it went away.
func TestShutdownEndsWatchStreams(t *testing.T) {
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	tok := srv.Login(t, "alice", apptest.Password).GetAccessToken()
	stream, err := srv.Clients(tok).Notifications.Watch(context.Background(), connect.NewRequest(&trellisv1.NotificationsWatchRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() || !stream.Msg().GetCreated() {
		t.Fatalf("the watch did not start: %v", stream.Err())
	}
	start := time.Now()
	srv.Stop() // fails the test if serving ends in error
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if stream.Receive() {
		t.Fatalf("a notification after shutdown: %v", stream.Msg())
	}
	if err := stream.Err(); err != nil {
		t.Errorf("the stream ended with %v, want a clean end", err)
	}
}
