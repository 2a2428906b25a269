package verify_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

const (
	adminUID      = "ops"
	adminPassword = "correct horse battery staple"
)

// trellis is a real Trellis server on a loopback port, with an admin who can
// log in.
type trellis struct {
	srv  *app.Server
	url  string
	auth trellisv1connect.AuthClient
}

// startTrellis builds and serves a Trellis on an embedded store in dir. stop
// shuts it down and reports how serving ended.
func startTrellis(dir string) (tr *trellis, stop func() error, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	st, err := sqlstore.Open(ctx, dir+"/trellis.db")
	if err != nil {
		return nil, nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	params := password.TestParams()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("TRELLIS_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := app.Build(ctx, app.Config{
		Listen:         ln.Addr().String(),
		PasswordParams: &params,
		FeedInterval:   50 * time.Millisecond,
		Log:            log,
	}, st)
	if err != nil {
		ln.Close()
		st.Close()
		return nil, nil, err
	}
	if _, err := srv.Service.Bootstrap(ctx, adminUID, "ops@testbed.example.org", adminPassword); err != nil {
		ln.Close()
		st.Close()
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	hc := &http.Client{Timeout: 10 * time.Second}
	tr = &trellis{srv: srv, url: url, auth: trellisv1connect.NewAuthClient(hc, url)}
	stop = func() error {
		cancel()
		err := <-done
		st.Close()
		return err
	}
	return tr, stop, nil
}

// newTrellis starts a Trellis for the length of tb.
func newTrellis(tb testing.TB) *trellis {
	tb.Helper()
	tr, stop, err := startTrellis(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return tr
}

// loginToken logs the admin in through the API and returns the access token.
func (tr *trellis) loginToken(ctx context.Context) (string, error) {
	resp, err := tr.auth.Login(ctx, connect.NewRequest(&trellisv1.LoginRequest{Uid: adminUID, Password: adminPassword}))
	if err != nil {
		return "", err
	}
	return resp.Msg.Tokens.AccessToken, nil
}

func (tr *trellis) login(tb testing.TB) string {
	tb.Helper()
	tok, err := tr.loginToken(context.Background())
	if err != nil {
		tb.Fatalf("login: %v", err)
	}
	return tok
}

// countingTransport counts the requests that reach the server, and tells
// fetched of each one answered (news of several may merge into one).
type countingTransport struct {
	n       atomic.Int64
	fetched chan struct{}
}

func newCountingTransport() *countingTransport {
	return &countingTransport{fetched: make(chan struct{}, 1)}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	resp, err := http.DefaultTransport.RoundTrip(r)
	select {
	case c.fetched <- struct{}{}:
	default:
	}
	return resp, err
}

func (c *countingTransport) client() *http.Client {
	return &http.Client{Transport: c, Timeout: 10 * time.Second}
}

// staticSigner is a signing key that Trellis does not know.
type staticSigner struct {
	kid  string
	priv ed25519.PrivateKey
}

func (s staticSigner) Signer() (string, ed25519.PrivateKey) { return s.kid, s.priv }

func newSigner(tb testing.TB, kid string) staticSigner {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return staticSigner{kid: kid, priv: priv}
}

// foreignToken is a well-formed token for tr, signed by a key it never
// published.
func foreignToken(tb testing.TB, tr *trellis, kid string) string {
	tb.Helper()
	now := time.Now()
	raw, err := token.Sign(newSigner(tb, kid), token.Claims{
		Issuer: tr.url, Subject: adminUID, Audience: []string{"trellis"},
		IssuedAt: now, Expiry: now.Add(10 * time.Minute),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// kidOf reads the key id in a token's header.
func kidOf(tb testing.TB, raw string) string {
	tb.Helper()
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		tb.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		tb.Fatal(err)
	}
	return h.KID
}

func wantErr(tb testing.TB, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("want %v, got %v", want, err)
	}
}
