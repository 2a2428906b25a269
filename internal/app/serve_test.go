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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestTLSHardening: TLS 1.2 only with forward-secret AEAD suites, TLS 1.3,
// and the security headers on answers over TLS, the OpenID Connect token
// endpoint's included.
func TestTLSHardening(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	addr := strings.TrimPrefix(h.url, "http://")

	handshakes := []struct {
		name     string
		version  uint16
		suite    uint16 // TLS 1.2 only
		accepted bool
	}{
		{"1.2 AES-128-GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"1.2 AES-256-GCM", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true},
		{"1.2 ChaCha20-Poly1305", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"1.2 AES-128-CBC-SHA", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"1.2 AES-256-CBC-SHA", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{"1.2 AES-128-CBC-SHA256", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, false},
		{"1.3", tls.VersionTLS13, 0, true},
		{"1.1", tls.VersionTLS11, 0, false},
	}
	for _, hs := range handshakes {
		cfg := &tls.Config{RootCAs: pool, MinVersion: hs.version, MaxVersion: hs.version}
		if hs.suite != 0 {
			cfg.CipherSuites = []uint16{hs.suite}
		}
		conn, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			conn.Close()
		}
		if (err == nil) != hs.accepted {
			t.Errorf("TLS %s: handshake error %v, want accepted %v", hs.name, err, hs.accepted)
		}
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	answers := []struct {
		method, path, contentType, body string
		cache                           string
	}{
		{"POST", "/trellis.v1.ApiInfo/GetVersion", "application/json", "{}", "no-store"},
		{"POST", "/trellis.v1.Auth/Login", "application/json", `{"uid":"nobody","password":"wrong"}`, "no-store"},
		{"POST", "/oidc/oauth/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=nothing", "no-store"},
		{"GET", "/.well-known/jwks.json", "", "", "public, max-age=300"},
	}
	for _, a := range answers {
		r, err := http.NewRequest(a.method, "https://"+addr+a.path, strings.NewReader(a.body))
		if err != nil {
			t.Fatal(err)
		}
		if a.contentType != "" {
			r.Header.Set("Content-Type", a.contentType)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header
		if got.Get("Cache-Control") != a.cache || got.Get("X-Content-Type-Options") != "nosniff" || got.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s %s (%s): Cache-Control %q, X-Content-Type-Options %q, Strict-Transport-Security %q; want %q, nosniff, set",
				a.method, a.path, resp.Status, got.Get("Cache-Control"), got.Get("X-Content-Type-Options"), got.Get("Strict-Transport-Security"), a.cache)
		}
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

// TestWatchResumesAfter: a watch with resume_after first sends what the
// caller missed after that id, oldest first, then what arrives; without it
// the stream starts after the newest notification; each start names its
// point in after_id.
func TestWatchResumesAfter(t *testing.T) {
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	alice := srv.Clients(srv.Login(t, "alice", apptest.Password).GetAccessToken())
	send := func(text string) {
		t.Helper()
		if _, err := srv.Admin(t).Notifications.Send(context.Background(), connect.NewRequest(&trellisv1.NotificationsSendRequest{ToUser: "alice", Text: text})); err != nil {
			t.Fatal(err)
		}
	}
	for _, text := range []string{"n1", "n2", "n3"} {
		send(text)
	}
	list, err := alice.Notifications.List(context.Background(), connect.NewRequest(&trellisv1.NotificationsListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, n := range list.Msg.GetNotifications() {
		ids[n.GetText()] = n.GetId()
	}
	// watch opens a stream and returns its after_id and a function that
	// reads the next n notifications' texts.
	watch := func(resume *int64) (int64, func(n int) []string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		stream, err := alice.Notifications.Watch(ctx, connect.NewRequest(&trellisv1.NotificationsWatchRequest{ResumeAfter: resume}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stream.Close() })
		if !stream.Receive() || !stream.Msg().GetCreated() {
			t.Fatalf("the watch did not start: %v", stream.Err())
		}
		after := stream.Msg().GetAfterId()
		return after, func(n int) []string {
			t.Helper()
			var texts []string
			for range n {
				if !stream.Receive() {
					t.Fatalf("after %v: %v", texts, stream.Err())
				}
				texts = append(texts, stream.Msg().GetNotification().GetText())
			}
			return texts
		}
	}

	resume := ids["n1"]
	after, next := watch(&resume)
	if after != ids["n1"] {
		t.Errorf("after_id %d, want the resume point %d", after, ids["n1"])
	}
	if got := next(2); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Errorf("backlog %v, want [n2 n3]", got)
	}
	send("n4")
	if got := next(1); !slices.Equal(got, []string{"n4"}) {
		t.Errorf("then %v, want [n4]", got)
	}

	// From the very start: every notification, oldest first.
	zero := int64(0)
	if after, next := watch(&zero); after != 0 {
		t.Errorf("after_id %d, want 0", after)
	} else if got := next(4); !slices.Equal(got, []string{"n1", "n2", "n3", "n4"}) {
		t.Errorf("from 0: %v", got)
	}

	// Without a resume point: after the newest, nothing old.
	newest, err := alice.Notifications.List(context.Background(), connect.NewRequest(&trellisv1.NotificationsListRequest{PageSize: 1}))
	if err != nil || len(newest.Msg.GetNotifications()) != 1 {
		t.Fatal(newest, err)
	}
	after, next = watch(nil)
	if want := newest.Msg.GetNotifications()[0].GetId(); after != want {
		t.Errorf("after_id %d, want the newest's id %d", after, want)
	}
	send("n5")
	if got := next(1); !slices.Equal(got, []string{"n5"}) {
		t.Errorf("new watch got %v, want [n5]", got)
	}

	bad := int64(-1)
	stream, err := alice.Notifications.Watch(context.Background(), connect.NewRequest(&trellisv1.NotificationsWatchRequest{ResumeAfter: &bad}))
	if err == nil {
		defer stream.Close()
		for stream.Receive() {
		}
		err = stream.Err()
	}
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "resume_after") {
		t.Errorf("resume_after -1: %v", err)
	}
}

// TestDrain: after the stop signal a server with a drain period answers
// /readyz with 503 but goes on serving, new requests and open streams
// alike; then it shuts down, ending the streams cleanly.
func TestDrain(t *testing.T) {
	srv := apptest.Start(t, func(c *app.Config) { c.Drain = 3 * time.Second })
	srv.NewUser(t, "alice")
	alice := srv.Clients(srv.Login(t, "alice", apptest.Password).GetAccessToken())
	ready := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := ready(); code != http.StatusOK {
		t.Fatalf("readyz %d before the signal", code)
	}
	stream, err := alice.Notifications.Watch(context.Background(), connect.NewRequest(&trellisv1.NotificationsWatchRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() || !stream.Msg().GetCreated() {
		t.Fatalf("the watch did not start: %v", stream.Err())
	}

	srv.Interrupt()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("readyz still ready 10s after the signal")
		}
		code, body := ready()
		if code == http.StatusServiceUnavailable {
			if body != "shutting down\n" {
				t.Errorf("readyz while draining: %q", body)
			}
			break
		}
	}
	// Still serving: a new request, and the open stream.
	if _, err := srv.Admin(t).Notifications.Send(context.Background(), connect.NewRequest(&trellisv1.NotificationsSendRequest{ToUser: "alice", Text: "while draining"})); err != nil {
		t.Fatalf("a request while draining: %v", err)
	}
	if !stream.Receive() || stream.Msg().GetNotification().GetText() != "while draining" {
		t.Fatalf("the stream while draining: %v %v", stream.Msg(), stream.Err())
	}
	srv.Stop() // fails the test if serving ends in error
	if stream.Receive() {
		t.Fatalf("a message after shutdown: %v", stream.Msg())
	}
	if err := stream.Err(); err != nil {
		t.Errorf("the stream ended with %v, want a clean end", err)
	}
}

// TestBootstrapToken: Admin/Bootstrap takes only the armed token, creates
// nothing with a wrong one, and the token is spent by its first success.
func TestBootstrapToken(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	bootstrap := func(token, uid string) error {
		_, err := h.admin.Bootstrap(ctx, req(&trellisv1.BootstrapRequest{BootstrapToken: token, Uid: uid, Email: uid + "@testbed.example.org", Password: adminPassword}, ""))
		return err
	}
	wantCode(t, bootstrap("anything", "ops"), connect.CodeFailedPrecondition) // nothing armed
	used := 0
	h.srv.Service.ArmBootstrap("the-one-time-token", func() { used++ })
	wantCode(t, bootstrap("", "ops"), connect.CodeUnauthenticated)
	wantCode(t, bootstrap("the-one-time-token-", "ops"), connect.CodeUnauthenticated)
	if ok, err := h.srv.Service.HasAdmin(ctx); ok || err != nil {
		t.Fatalf("an administrator after refused bootstraps: %v %v", ok, err)
	}
	if err := bootstrap("the-one-time-token", "ops"); err != nil {
		t.Fatal(err)
	}
	if used != 1 {
		t.Errorf("onUsed ran %d times", used)
	}
	wantCode(t, bootstrap("the-one-time-token", "ops2"), connect.CodeFailedPrecondition)
	h.login("ops", adminPassword)
}
