package provider

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/materialize"
	"github.com/trellis-testbed/trellis/verify"
)

// testClock is the centre's clock in these tests: real time plus what the
// test moved it on by (tokens the site signs are checked against it).
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// testSite is a real centre (in-process, apptest) and the parts of a real
// site that need no root: its key, registration, config, state, audit log
// and its delivery inbox, served on an address that the test brings up
// and down. The centre dispatches only when the test says so.
type testSite struct {
	t       *testing.T
	centre  *apptest.Server
	clock   *testClock
	admin   string
	cfg     *Config
	key     ed25519.PrivateKey
	dir     string
	state   *state
	audit   *auditLog
	inbox   *inbox
	addr    string
	srv     *http.Server
	handler http.Handler
	mat     *materializer
}

// withDriver gives the site a materializer with driver d, reporting to the
// centre signed with the site's key, running until the test ends.
func (ts *testSite) withDriver(d materialize.Driver, name string) {
	rz := trellisv1connect.NewRealizationsClient(http.DefaultClient, ts.centre.URL)
	rep := func(ctx context.Context, r *trellisv1.ReportStateRequest) error {
		req := connect.NewRequest(r)
		req.Header().Set("Authorization", "Bearer "+ts.siteJWT())
		_, err := rz.ReportState(ctx, req)
		return err
	}
	ts.mat = newMaterializer(d, name, ts.state, rep, ts.audit, slog.New(slog.DiscardHandler))
	ts.mat.retryBase = 10 * time.Millisecond
	ts.mat.register(ts.inbox)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ts.mat.run(ctx); err != nil {
			ts.t.Error(err)
		}
	}()
	ts.t.Cleanup(func() { cancel(); <-done })
}

func newTestSite(t *testing.T, name string, mutate ...func(*app.Config)) *testSite {
	t.Helper()
	return newTestSiteOn(t, "", name, mutate...)
}

// newTestSiteOn is newTestSite with the centre on a store of choice: a
// PostgreSQL URL, or empty for SQLite.
func newTestSiteOn(t *testing.T, database, name string, mutate ...func(*app.Config)) *testSite {
	t.Helper()
	clock := &testClock{}
	centre := apptest.StartOn(t, database, append([]func(*app.Config){func(c *app.Config) {
		c.Now = clock.now
		c.DeliveryInterval = -1
		c.ReapInterval = time.Hour
	}}, mutate...)...)
	ts := &testSite{t: t, centre: centre, clock: clock, admin: centre.AdminToken(t), dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	ln.Close() // down until up()

	ctx := context.Background()
	add, err := ts.providers(ts.admin).AddProvider(ctx, connect.NewRequest(&trellisv1.AddProviderRequest{Name: name, Url: "http://" + ts.addr}))
	if err != nil {
		t.Fatal(err)
	}
	_, ts.key, _ = ed25519.GenerateKey(nil)
	reg, err := ts.providers("").RegisterSite(ctx, connect.NewRequest(&trellisv1.RegisterSiteRequest{
		Token: add.Msg.GetRegistrationToken(), PublicKey: encodeKey(ts.key.Public().(ed25519.PublicKey))}))
	if err != nil {
		t.Fatal(err)
	}
	ts.cfg = &Config{Name: reg.Msg.Name, Central: centre.URL, Issuer: reg.Msg.Issuer, JWKSURL: reg.Msg.JwksUrl,
		Audience: reg.Msg.Audience, CentreAudience: reg.Msg.CentreAudience, Listen: ts.addr}
	ts.cfg.Defaults(ts.dir)
	v, err := verify.New(ctx, verify.Options{Issuer: ts.cfg.Issuer, JWKSURL: ts.cfg.JWKSURL, Audience: ts.cfg.Audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if ts.state, err = openState(filepath.Join(ts.dir, StateFile)); err != nil {
		t.Fatal(err)
	}
	if ts.audit, err = openAudit(filepath.Join(ts.dir, AuditFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.audit.Close() })
	ts.inbox = newInbox(v, ts.state, ts.audit)
	ts.handler = ts.inbox
	t.Cleanup(ts.down)
	return ts
}

// providers is a Providers client with token (none when empty).
func (ts *testSite) providers(tok string) trellisv1connect.ProvidersClient {
	var opts []connect.ClientOption
	if tok != "" {
		opts = append(opts, connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("Authorization", "Bearer "+tok)
				return next(ctx, req)
			}
		})))
	}
	return trellisv1connect.NewProvidersClient(http.DefaultClient, ts.centre.URL, opts...)
}

// siteJWT is a request JWT signed by the site's key, as the site makes one
// per request to the centre.
func (ts *testSite) siteJWT() string {
	jwt, err := token.SignAssertion(ts.key, "provider:"+ts.cfg.Name, ts.cfg.CentreAudience, ts.clock.now(), 2*time.Minute)
	if err != nil {
		ts.t.Fatal(err)
	}
	return jwt
}

// up serves the site's handler on its address.
func (ts *testSite) up() {
	ts.t.Helper()
	if ts.srv != nil {
		return
	}
	ln, err := net.Listen("tcp", ts.addr)
	if err != nil {
		ts.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /deliveries", ts.handler)
	ts.srv = &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(slog.NewTextHandler(io.Discard, nil).WithAttrs(nil), slog.LevelWarn)}
	go func() {
		if err := ts.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ts.t.Error(err)
		}
	}()
}

// down stops serving: the site is down.
func (ts *testSite) down() {
	if ts.srv != nil {
		_ = ts.srv.Close()
		ts.srv = nil
	}
}

// dispatch runs the centre's dispatcher once and returns how many
// deliveries it delivered.
func (ts *testSite) dispatch() int {
	ts.t.Helper()
	n, err := ts.centre.App.Service.DispatchDeliveries(context.Background())
	if err != nil {
		ts.t.Fatalf("dispatch: %v", err)
	}
	return n
}

// deliveries lists the site's deliveries as the admin sees them.
func (ts *testSite) deliveries(all bool) []*trellisv1.Delivery {
	ts.t.Helper()
	resp, err := ts.providers(ts.admin).ListDeliveries(context.Background(), connect.NewRequest(&trellisv1.ListDeliveriesRequest{Provider: ts.cfg.Name, IncludeDone: all}))
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.Msg.GetDeliveries()
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
