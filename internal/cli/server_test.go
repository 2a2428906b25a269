package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// The client's tests run its commands against a real Trellis
// (internal/app/apptest) and check what the server then holds, what the
// client printed and how it exited.

func TestMain(m *testing.M) {
	// Every command line names its server and config directory (env.run):
	// the developer's own environment must not leak in, above all a
	// TRELLIS_TOKEN, which the client would send instead of the test's login.
	for _, v := range []string{EnvServer, EnvConfigDir, EnvToken, EnvCAFile} {
		os.Unsetenv(v)
	}
	// The OpenID Connect library logs through the default logger.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// env is one client: a config directory of its own, and the server its
// command lines name.
type env struct {
	t      *testing.T
	srv    *apptest.Server // nil for an offline env
	dir    string
	server string
}

// newEnv is a client of srv with an empty config directory.
func newEnv(t *testing.T, srv *apptest.Server) *env {
	t.Helper()
	return &env{t: t, srv: srv, dir: filepath.Join(t.TempDir(), "config", "trellis"), server: srv.URL}
}

// offline is a client for command lines that must fail before any request:
// it is logged in to a server that refuses connections, so a request that
// goes out anyway fails with "request to ... failed", not with the error
// the test wants.
func offline(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: filepath.Join(t.TempDir(), "config", "trellis"), server: closedURL(t)}
	if err := (credStore{dir: e.dir}).save(&credentials{
		Server: e.server, UID: "alice", AccessToken: "never-sent",
		AccessTokenExpiresAt: time.Now().Add(time.Hour), SessionExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// closedURL is the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

type result struct {
	out, err string
	code     int
}

// run executes one command line the way main does, with the env's server
// and config directory (a later --server on the line wins).
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.exec(stdin, append([]string{"--server", e.server, "--config-dir", e.dir}, args...)...)
}

// exec executes exactly the command line given.
func (e *env) exec(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	streams := Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb}
	root := NewRoot(streams)
	root.SetArgs(args)
	code := Execute(root, streams)
	return result{out: out.String(), err: errb.String(), code: code}
}

// passwordOf is the password apptest gives uid.
func passwordOf(uid string) string {
	if uid == apptest.AdminUID {
		return apptest.AdminPassword
	}
	return apptest.Password
}

// login logs uid in with `trellis login`.
func (e *env) login(uid string) {
	e.t.Helper()
	if r := e.run(passwordOf(uid)+"\n", "login", uid, "--password-stdin"); r.code != 0 {
		e.t.Fatalf("login %s: code %d, stderr %q", uid, r.code, r.err)
	}
}

// as is a new client of srv with uid logged in.
func as(t *testing.T, srv *apptest.Server, uid string) *env {
	t.Helper()
	e := newEnv(t, srv)
	e.login(uid)
	return e
}

func (e *env) credentialsPath() string { return filepath.Join(e.dir, credentialsFileName) }

// credentials reads the saved credentials.
func (e *env) credentials() *credentials {
	e.t.Helper()
	b, err := os.ReadFile(e.credentialsPath())
	if err != nil {
		e.t.Fatal(err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		e.t.Fatal(err)
	}
	return &c
}

// editCredentials changes the saved credentials, as time or another
// process would.
func (e *env) editCredentials(edit func(*credentials)) {
	e.t.Helper()
	c := e.credentials()
	edit(c)
	if err := (credStore{dir: e.dir}).save(c); err != nil {
		e.t.Fatal(err)
	}
}

// api calls the server as the saved login, to see what the server holds.
func (e *env) api() *apptest.Clients {
	e.t.Helper()
	return e.srv.Clients(e.credentials().AccessToken)
}

// whoAmI asks the server whom token stands for; "" when it refuses it.
func whoAmI(t *testing.T, srv *apptest.Server, token string) string {
	t.Helper()
	resp, err := srv.Clients(token).Auth.WhoAmI(context.Background(), connect.NewRequest(&trellisv1.WhoAmIRequest{}))
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.GetUid()
}

// must takes the results of an API call made to set a scene or to check
// its outcome, and returns a function that fails the test if the call
// failed and returns the message otherwise: must(api.X(ctx, req))(t). (Go
// passes a call's several results only as a function's whole arguments.)
func must[T any](resp *connect.Response[T], err error) func(testing.TB) *T {
	return func(t testing.TB) *T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg
	}
}

// req wraps a message for the API.
func req[T any](m *T) *connect.Request[T] { return connect.NewRequest(m) }

var bg = context.Background()
