// Package apptest runs a real Trellis in-process for tests of other
// packages: the embedded SQLite store in a temporary directory, a loopback
// listener, cheap password hashing, and an administrator. Its helpers set up
// users, projects and resources through the public API, as any client
// would, so that tests built on it see what a real server does.
package apptest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/store"
)

// The administrator every server starts with, and the password of every
// user the helpers make (it contains none of their uids).
const (
	AdminUID      = "ops"
	AdminEmail    = "ops@testbed.example.org"
	AdminPassword = "correct horse battery staple"
	Password      = "mad hatter tea party"
)

// Server is a running Trellis.
type Server struct {
	// URL is where it listens: http://127.0.0.1:PORT.
	URL string
	// App is the server itself, for what the API does not show. Restart
	// replaces it.
	App *app.Server

	t    testing.TB
	http *http.Client
	anon *Clients
	dir  string
	cfg  app.Config
	// database is the PostgreSQL URL of StartOn; empty: SQLite in dir.
	database string

	run *running

	mu     sync.Mutex
	tokens map[string]string // uid -> access token of the helpers' login
}

// running is one life of the server, from start to Stop.
type running struct {
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
	st       store.Store
}

// Start runs a server until the test ends. mutate may change its
// configuration before it is built (a shorter token lifetime, say).
func Start(t testing.TB, mutate ...func(*app.Config)) *Server {
	t.Helper()
	return StartOn(t, "", mutate...)
}

// StartOn is Start on a store of choice: database is a PostgreSQL URL
// (pgtest.NewDatabase), or empty for the embedded SQLite store.
func StartOn(t testing.TB, database string, mutate ...func(*app.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := copyMigrated(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The cheapest argon2id the hasher accepts: a test logs in often, and
	// the production cost would dominate its time.
	params := password.TestParams()
	cfg := app.Config{
		Listen:         ln.Addr().String(),
		PasswordParams: &params,
		// One server is the store's only writer: its own changes reach its
		// caches as it makes them, and polling for others' (the feed's
		// interval) would only burn the CPU that many servers in parallel
		// tests share.
		FeedInterval: 10 * time.Second,
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s := &Server{
		URL:  "http://" + ln.Addr().String(),
		t:    t,
		http: &http.Client{Timeout: 10 * time.Second},
		dir:  dir,
		cfg:  cfg,

		database: database,
	}
	s.anon = s.Clients("")
	if err := s.start(ln, true); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// start opens the store in s.dir, builds the server and serves on ln.
func (s *Server) start(ln net.Listener, bootstrap bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := app.OpenStore(ctx, app.StoreConfig{DataDir: s.dir, Database: s.database})
	if err != nil {
		cancel()
		return err
	}
	srv, err := app.Build(ctx, s.cfg, st)
	if err == nil && bootstrap {
		// A second replica on a shared database (StartOn) finds the
		// administrator there.
		var has bool
		if has, err = srv.Service.HasAdmin(ctx); err == nil && !has {
			err = srv.Bootstrap(ctx, AdminUID, AdminEmail, AdminPassword)
		}
	}
	if err != nil {
		cancel()
		st.Close()
		return err
	}
	r := &running{cancel: cancel, done: make(chan error, 1), st: st}
	s.App, s.run = srv, r
	go func() { r.done <- srv.Serve(ctx, ln) }()
	return nil
}

// Stop shuts the server down, as an operator's interrupt does, and waits
// for it; the test's end does it too.
func (s *Server) Stop() {
	r := s.run
	r.stopOnce.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			s.t.Errorf("serve: %v", err)
		}
		if err := r.st.Close(); err != nil {
			s.t.Errorf("close store: %v", err)
		}
	})
}

// Interrupt tells the server to stop, as an operator's interrupt does,
// and returns at once (a draining server goes on serving); Stop waits for
// the end.
func (s *Server) Interrupt() { s.run.cancel() }

// Restart stops the server if it runs and starts it again on the same
// store and address, as an operator's restart does: what was stored
// (accounts, sessions, signing keys) survives, open streams end.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.t.Fatalf("restart: %v", err)
	}
	if err := s.start(ln, false); err != nil {
		ln.Close()
		s.t.Fatalf("restart: %v", err)
	}
}

// migrated holds the files of an embedded store migrated once per process:
// migrating takes most of a server's start (a third of a second with the
// race detector), and every server starts from the same schema.
var migrated struct {
	once  sync.Once
	files map[string][]byte
	err   error
}

// copyMigrated writes a freshly migrated, empty store into dir.
func copyMigrated(dir string) error {
	migrated.once.Do(func() {
		migrated.files, migrated.err = migrate()
	})
	if migrated.err != nil {
		return migrated.err
	}
	for name, b := range migrated.files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// migrate creates and migrates a store in a scratch directory and returns
// its closed files (the lock file aside).
func migrate() (map[string][]byte, error) {
	tmp, err := os.MkdirTemp("", "trellis-apptest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	st, err := app.OpenStore(context.Background(), app.StoreConfig{DataDir: tmp})
	if err != nil {
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(tmp, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

// Clients are the API's clients, each sending a bearer token when one is
// given.
type Clients struct {
	Auth          trellisv1connect.AuthClient
	Users         trellisv1connect.UsersClient
	Admin         trellisv1connect.AdminClient
	Info          trellisv1connect.ApiInfoClient
	Projects      trellisv1connect.ProjectsClient
	Circles       trellisv1connect.CirclesClient
	Notifications trellisv1connect.NotificationsClient
	Policy        trellisv1connect.PolicyClient
	Experiments   trellisv1connect.ExperimentsClient
	Libraries     trellisv1connect.LibrariesClient
	Resources     trellisv1connect.ResourcesClient
	Realizations  trellisv1connect.RealizationsClient
	Providers     trellisv1connect.ProvidersClient
}

// Clients returns clients that call the server with token ("" for none).
func (s *Server) Clients(token string) *Clients {
	opts := []connect.ClientOption{}
	if token != "" {
		opts = append(opts, connect.WithInterceptors(bearer(token)))
	}
	hc, u := s.http, s.URL
	return &Clients{
		Auth:          trellisv1connect.NewAuthClient(hc, u, opts...),
		Users:         trellisv1connect.NewUsersClient(hc, u, opts...),
		Admin:         trellisv1connect.NewAdminClient(hc, u, opts...),
		Info:          trellisv1connect.NewApiInfoClient(hc, u, opts...),
		Projects:      trellisv1connect.NewProjectsClient(hc, u, opts...),
		Circles:       trellisv1connect.NewCirclesClient(hc, u, opts...),
		Notifications: trellisv1connect.NewNotificationsClient(hc, u, opts...),
		Policy:        trellisv1connect.NewPolicyClient(hc, u, opts...),
		Experiments:   trellisv1connect.NewExperimentsClient(hc, u, opts...),
		Libraries:     trellisv1connect.NewLibrariesClient(hc, u, opts...),
		Resources:     trellisv1connect.NewResourcesClient(hc, u, opts...),
		Realizations:  trellisv1connect.NewRealizationsClient(hc, u, opts...),
		Providers:     trellisv1connect.NewProvidersClient(hc, u, opts...),
	}
}

// bearer authenticates calls, streams included, with a fixed token.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Login logs uid in with pw and returns the session's tokens.
func (s *Server) Login(t testing.TB, uid, pw string) *trellisv1.Tokens {
	t.Helper()
	resp, err := s.anon.Auth.Login(context.Background(), connect.NewRequest(&trellisv1.LoginRequest{Uid: uid, Password: pw}))
	if err != nil {
		t.Fatalf("login %s: %v", uid, err)
	}
	return resp.Msg.GetTokens()
}

// AdminToken returns an access token of the administrator.
func (s *Server) AdminToken(t testing.TB) string {
	t.Helper()
	return s.token(t, AdminUID, AdminPassword)
}

// token returns the access token of the helpers' login of uid, logging in
// on first use: a login is a session written, and helpers act as the same
// few users again and again. (A test that ends uid's sessions, by changing
// its password say, uses Login afterwards.)
func (s *Server) token(t testing.TB, uid, pw string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens[uid] == "" {
		if s.tokens == nil {
			s.tokens = map[string]string{}
		}
		s.tokens[uid] = s.Login(t, uid, pw).GetAccessToken()
	}
	return s.tokens[uid]
}

// Admin returns clients that call as the administrator.
func (s *Server) Admin(t testing.TB) *Clients { return s.Clients(s.AdminToken(t)) }

// As returns clients that call as uid, logged in with Password (with
// AdminPassword for AdminUID) on first use.
func (s *Server) As(t testing.TB, uid string) *Clients {
	t.Helper()
	if uid == AdminUID {
		return s.Admin(t)
	}
	return s.Clients(s.token(t, uid, Password))
}

// Email is the address the helpers register uid with.
func Email(uid string) string { return uid + "@uni.example.edu" }

// NewUser registers uid with Password and confirms its e-mail with the
// token of the mail in the outbox: an active user that belongs to no
// project (powerless).
func (s *Server) NewUser(t testing.TB, uid string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.anon.Users.Register(ctx, connect.NewRequest(&trellisv1.RegisterRequest{
		Uid: uid, Email: Email(uid), Password: Password,
		Profile: map[string]string{"name": strings.ToUpper(uid[:1]) + uid[1:] + " Tester", "phone": "+1 310 555 0100"},
	})); err != nil {
		t.Fatalf("register %s: %v", uid, err)
	}
	if _, err := s.anon.Users.ConfirmEmail(ctx, connect.NewRequest(&trellisv1.ConfirmEmailRequest{
		Token: s.MailToken(t, Email(uid)),
	})); err != nil {
		t.Fatalf("confirm %s: %v", uid, err)
	}
}

// tokenInMail finds the token a mail carries, alone on an indented line.
var tokenInMail = regexp.MustCompile(`(?m)^    ([A-Za-z0-9_-]{43})$`)

// MailToken reads the newest mail to addr in the outbox, as an admin, and
// returns the token in it.
func (s *Server) MailToken(t testing.TB, addr string) string {
	t.Helper()
	resp, err := s.Admin(t).Admin.ListOutbox(context.Background(), connect.NewRequest(&trellisv1.ListOutboxRequest{To: addr, PageSize: 1}))
	if err != nil {
		t.Fatalf("outbox of %s: %v", addr, err)
	}
	if len(resp.Msg.GetMessages()) == 0 {
		t.Fatalf("no mail to %s", addr)
	}
	body := resp.Msg.GetMessages()[0].GetBody()
	m := tokenInMail.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token in the mail to %s:\n%s", addr, body)
	}
	return m[1]
}

// NewProject makes owner the owner of the approved project name, asking
// an admin's approval when the server wants it: the owner is powerful then.
func (s *Server) NewProject(t testing.TB, owner, name string) {
	t.Helper()
	ctx := context.Background()
	resp, err := s.As(t, owner).Projects.RequestProject(ctx, connect.NewRequest(&trellisv1.RequestProjectRequest{
		Name: name, Description: "research on " + name,
	}))
	if err != nil {
		t.Fatalf("request project %s: %v", name, err)
	}
	if resp.Msg.GetRequestId() == "" {
		return
	}
	if _, err := s.Admin(t).Projects.ApproveProject(ctx, connect.NewRequest(&trellisv1.ApproveProjectRequest{Name: name})); err != nil {
		t.Fatalf("approve project %s: %v", name, err)
	}
}

// NewPowerfulUser registers uid and makes it the owner of the approved
// project project.
func (s *Server) NewPowerfulUser(t testing.TB, uid, project string) {
	t.Helper()
	s.NewUser(t, uid)
	s.NewProject(t, uid, project)
}

// AddMember adds uid to project with rights: the owner asks, uid consents
// through the request its notification carries.
func (s *Server) AddMember(t testing.TB, owner, project, uid string, rights ...string) {
	t.Helper()
	ctx := context.Background()
	resp, err := s.As(t, owner).Projects.AddUsers(ctx, connect.NewRequest(&trellisv1.ProjectsAddUsersRequest{
		Name: project, Uids: []string{uid}, Rights: append([]string{}, rights...),
	}))
	if err != nil {
		t.Fatalf("add %s to %s: %v", uid, project, err)
	}
	s.consent(t, uid, project, resp.Msg.GetOutcomes()[0])
}

// AddCircleMember adds uid to circle with rights: the owner asks, uid
// consents.
func (s *Server) AddCircleMember(t testing.TB, owner, circle, uid string, rights ...string) {
	t.Helper()
	ctx := context.Background()
	resp, err := s.As(t, owner).Circles.AddUsers(ctx, connect.NewRequest(&trellisv1.CirclesAddUsersRequest{
		Id: circle, Uids: []string{uid}, Rights: append([]string{}, rights...),
	}))
	if err != nil {
		t.Fatalf("add %s to %s: %v", uid, circle, err)
	}
	s.consent(t, uid, circle, resp.Msg.GetOutcomes()[0])
}

// consent has uid accept the request an invitation made, if it made one.
func (s *Server) consent(t testing.TB, uid, group string, o *trellisv1.UserOutcome) {
	t.Helper()
	switch o.GetOutcome() {
	case "added":
	case "requested":
		if _, err := s.As(t, uid).Notifications.AcceptRequest(context.Background(), connect.NewRequest(&trellisv1.AcceptRequestRequest{Id: o.GetRequestId()})); err != nil {
			t.Fatalf("%s accepts %s: %v", uid, o.GetRequestId(), err)
		}
	default:
		t.Fatalf("add %s to %s: %s %s", uid, group, o.GetOutcome(), o.GetReason())
	}
}

// AddProvider adds a provider (site) as the administrator, unless it is
// there already; its registration token is not used.
func (s *Server) AddProvider(t testing.TB, name string) {
	t.Helper()
	_, err := s.Admin(t).Providers.AddProvider(context.Background(), connect.NewRequest(&trellisv1.AddProviderRequest{
		Name: name, Url: "https://" + name + ".example.org:7800",
	}))
	if err != nil && connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("add provider %s: %v", name, err)
	}
}

// RegisterSite registers a site's key with the registration token
// `trellis admin provider add` printed, as `trellis provider init` does,
// and returns the site's private key. A registered site's realizations
// are materialized: the centre queues work for it.
func (s *Server) RegisterSite(t testing.TB, token string) ed25519.PrivateKey {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Clients("").Providers.RegisterSite(context.Background(), connect.NewRequest(&trellisv1.RegisterSiteRequest{
		Token: strings.TrimSpace(token), PublicKey: base64.StdEncoding.EncodeToString(pub),
	})); err != nil {
		t.Fatalf("register site: %v", err)
	}
	return key
}

// AddResource registers a node at provider, as the administrator, adding
// the provider first when it is not registered (a resource names a
// registered provider).
func (s *Server) AddResource(t testing.TB, name, provider string, attrs map[string]string) {
	t.Helper()
	s.AddProvider(t, provider)
	if _, err := s.Admin(t).Resources.RegisterResource(context.Background(), connect.NewRequest(&trellisv1.RegisterResourceRequest{
		Name: name, Kind: "node", Provider: provider, Attributes: attrs,
	})); err != nil {
		t.Fatalf("register resource %s: %v", name, err)
	}
}
