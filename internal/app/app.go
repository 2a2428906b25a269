// Package app wires Trellis together: it opens the store, builds the
// service and its dependencies from a Config, and runs the server. The
// commands in commands.go are thin shells around it.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/sshca"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/buildinfo"
	"github.com/trellis-testbed/trellis/internal/changefeed"
	"github.com/trellis-testbed/trellis/internal/clientaddr"
	"github.com/trellis-testbed/trellis/internal/exclusive"
	"github.com/trellis-testbed/trellis/internal/mail"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/requestid"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
	"github.com/trellis-testbed/trellis/internal/store/storemetrics"
	"github.com/trellis-testbed/trellis/internal/transport/api"
	"github.com/trellis-testbed/trellis/internal/transport/httpserver"
	"github.com/trellis-testbed/trellis/internal/transport/oidclogin"
	"github.com/trellis-testbed/trellis/internal/transport/oidcprovider"
	"github.com/trellis-testbed/trellis/internal/transport/portal"
	"github.com/trellis-testbed/trellis/internal/transport/ratelimit"
)

// StoreConfig says where the data lives.
type StoreConfig struct {
	// DataDir holds the embedded SQLite store (default ./trellis-data).
	DataDir string
	// Database, when set (postgres://…), selects PostgreSQL instead.
	Database string
}

// Spec returns what sqlstore.Open takes.
func (c StoreConfig) Spec() string {
	if c.Database != "" {
		return c.Database
	}
	dir := c.DataDir
	if dir == "" {
		dir = "trellis-data"
	}
	return filepath.Join(dir, "trellis.db")
}

// OpenStore opens and migrates the configured store.
func OpenStore(ctx context.Context, c StoreConfig) (store.Store, error) {
	st, err := sqlstore.Open(ctx, c.Spec())
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	return st, nil
}

// Config is everything `trellis serve` is told.
type Config struct {
	Store  StoreConfig
	Listen string
	// TLSCert and TLSKey, when both set, serve HTTPS.
	TLSCert, TLSKey string
	// TLSAuto serves HTTPS with a certificate the Trellis X.509 CA issues
	// for the listen host, the public URL's host and loopback.
	TLSAuto bool
	// KEKFile holds the key that encrypts private keys (and mailed tokens
	// waiting in the outbox) at rest; Build creates it, mode 0600, when
	// missing. `trellis serve` defaults it to DefaultKEKFile. Empty: they
	// are stored unencrypted (embedders and tests only).
	KEKFile string
	// PublicURL is how clients reach this server (mail links, token issuer).
	PublicURL string
	// FeedInterval bounds how long a change made on another replica takes
	// to reach this one's caches.
	FeedInterval time.Duration
	// SMTP, when its Addr is set, delivers the outbox; otherwise mail stays
	// in the outbox for admins to read.
	SMTP mail.SMTPConfig
	// MailBodyRetention is how long a delivered mail's body stays in the
	// outbox (its token never does); zero: the body goes at delivery and
	// only the record that the mail was sent stays.
	MailBodyRetention time.Duration
	// PasswordParams override the argon2id parameters (tests use cheap ones).
	PasswordParams *password.Params
	Service        service.Config
	Log            *slog.Logger
	// ReapInterval is how often expired realizations are released (30s).
	ReapInterval time.Duration
	// DeliveryInterval is how often work queued for sites is posted to
	// them (2s); DeliveryInterval < 0 leaves it to the caller (tests
	// dispatch with Service.DispatchDeliveries).
	DeliveryInterval time.Duration
	// SiteCAFile, when set, is a PEM bundle of CA certificates the centre
	// trusts for sites' HTTPS certificates, besides the system's roots.
	SiteCAFile string
	// Now is the service's clock; tests move it.
	Now func() time.Time
	// BrowserPageLimit bounds how often one address may load the OpenID
	// Connect pages a browser visits (DefaultBrowserPageLimit when zero).
	BrowserPageLimit ratelimit.Limit
	// AuthBackends are the authentication backends, in the order they are
	// asked (see auth.Backend and backends.go): "local" (passwords, also
	// as HTTP Basic), "null" (development only, loopback only). nil means
	// DefaultAuthBackends. Without local, password logins are refused.
	AuthBackends []string
	// OIDCBackend configures the oidc backend, when AuthBackends has it.
	OIDCBackend OIDCBackendConfig
	// HTTP bounds what slow or greedy clients may hold.
	HTTP HTTPLimits
	// BootstrapFile, when set, is where a server that starts without an
	// administrator writes its one-time bootstrap token (bootstrap.go);
	// serve sets it to DATA-DIR/bootstrap.json.
	BootstrapFile string
	// StrictRevocation makes every request catch up with the change feed
	// before its credentials are checked, so a logout or a locked account
	// on any replica is refused by all from the moment it is acknowledged
	// (auth.Authenticator.Strict). Off, other replicas follow within
	// FeedInterval.
	StrictRevocation bool
	// Drain is how long the server keeps serving after it is told to stop,
	// with /readyz answering 503, so that load balancers move new clients
	// away before it closes its listener. Zero: stop at once.
	Drain time.Duration
}

// HTTPLimits bound how long a client may take to send a request, how long
// an idle connection stays open, and how many connections one client may
// hold. Zero fields take the defaults below.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds the arrival of a request's headers.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds the arrival of its body, streams excepted
	// (httpserver.Options.BodyTimeout).
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request.
	IdleTimeout time.Duration
	// MaxConnsPerClient bounds the connections open at once from one
	// address (an IPv6 /64); negative: no bound (behind a reverse proxy,
	// which is every request's client).
	MaxConnsPerClient int
}

// Defaults of HTTPLimits. A client keeps a connection or two; a campus
// behind one NAT address keeps many more.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxConnsPerClient = 256
)

func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = httpserver.DefaultBodyTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConnsPerClient == 0 {
		l.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	return l
}

// DefaultBrowserPageLimit lets one address through a login (about four
// pages) several times a second, steadily.
var DefaultBrowserPageLimit = ratelimit.Limit{Every: 50 * time.Millisecond, Burst: 60}

// Server is a built, not yet serving, Trellis.
type Server struct {
	cfg     Config
	Store   store.Store
	Service *service.Service
	Keys    *keys.Manager
	Feed    *changefeed.Follower
	Handler http.Handler
	log     *slog.Logger
	// replicaID names this process when it holds a lease.
	replicaID string
	// authn records API tokens' last use in the background.
	authn *auth.Authenticator
	// tls, when set, serves HTTPS.
	tls *tls.Config
	// xca is the X.509 CA, reloaded with the signing keys.
	xca *x509ca.CA
	// connsRefused counts connections over a client's limit.
	connsRefused prometheus.Counter
	// Sealer seals private keys and the tokens waiting in the outbox.
	Sealer keys.Sealer
	// endStreams ends the long-lived streams (see endOnShutdown) when a
	// shutdown begins.
	endStreams context.CancelFunc
	// draining is set from the stop signal to the shutdown (Config.Drain).
	draining *atomic.Bool
}

// Build assembles a server on an open store.
func Build(ctx context.Context, cfg Config, st store.Store) (*Server, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.PublicURL == "" {
		scheme := "http"
		if cfg.TLSCert != "" || cfg.TLSAuto {
			scheme = "https"
		}
		cfg.PublicURL = scheme + "://" + cfg.Listen
	}
	cfg.Service.PublicURL = cfg.PublicURL
	cfg.Service.MailDelivered = cfg.SMTP.Addr != ""
	backendNames, err := checkAuthBackends(cfg.AuthBackends, cfg.Listen)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(backendNames, BackendLocal) {
		cfg.Service.PasswordLoginDisabled = true
	}
	if cfg.FeedInterval == 0 {
		cfg.FeedInterval = 500 * time.Millisecond
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = 30 * time.Second
	}
	if cfg.DeliveryInterval == 0 {
		cfg.DeliveryInterval = 2 * time.Second
	}
	cfg.HTTP = cfg.HTTP.withDefaults()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st = storemetrics.Wrap(st, reg, log)
	connsRefused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trellis_http_connections_refused_total",
		Help: "Connections closed at once because their client had too many open (--max-conns-per-client).",
	})
	reg.MustRegister(connsRefused)

	sealer, kekCreated, err := openKEK(cfg, log)
	if err != nil {
		return nil, err
	}
	svcCfg := cfg.Service
	km := keys.NewManager(st, sealer, keys.Options{TokenTTL: signingKeyTTL(svcCfg)})
	if err := km.Init(ctx); err != nil {
		if kekCreated && errors.Is(err, keys.ErrWrongKEK) {
			// The key just made cannot be the one the store's keys were
			// sealed with: take it away again, lest the next start take it
			// for the right one, and say where the right one should be.
			os.Remove(cfg.KEKFile)
			return nil, fmt.Errorf("signing keys: the store's keys are sealed with a key-encryption key, and there was none at %s (a new one made there was removed again): give the original with --kek-file; every replica needs a copy of the same file", cfg.KEKFile)
		}
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	// The SSH user CA lives as long as sites trust it: created on first
	// start, its private key sealed like the signing keys'.
	ca, err := sshca.Load(ctx, st, sealer)
	if err != nil {
		return nil, err
	}
	// So does the X.509 CA, which issues client certificates and, with
	// --tls-auto, the server's.
	xca, err := x509ca.Load(ctx, st, sealer)
	if err != nil {
		return nil, err
	}
	var (
		tlsCfg     *tls.Config
		serverCert func() []byte
	)
	if cfg.TLSCert != "" || cfg.TLSAuto {
		if tlsCfg, serverCert, err = tlsConfig(cfg, xca); err != nil {
			return nil, err
		}
	}

	params := password.DefaultParams()
	if cfg.PasswordParams != nil {
		params = *cfg.PasswordParams
	}
	feed, err := changefeed.New(ctx, st, log)
	if err != nil {
		return nil, fmt.Errorf("change feed: %w", err)
	}
	engine, err := policy.NewEngine(ctx, st, feed, log)
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	idp, err := newIdentityProvider(backendNames, cfg.OIDCBackend, cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	var linker auth.Linker // nil, not a nil *oidcbackend.Backend, when off
	if idp != nil {
		linker = idp
	}
	siteClient, err := newSiteClient(cfg.SiteCAFile, xca)
	if err != nil {
		return nil, err
	}
	svc := service.New(svcCfg, service.Deps{
		IdentityProvider: linker, Sealer: sealer, SiteHTTP: siteClient,
		Store: st, Hasher: &password.Hasher{Params: params}, Keys: km, SSHCA: ca, X509CA: xca, ServerCertificate: serverCert, Feed: feed, Engine: engine, Log: log, Now: storeClock(cfg.Now),
	})
	eff := svc.Config()
	if eff.SSHCertValidity > eff.SSHCertMaxValidity {
		return nil, fmt.Errorf("the default SSH certificate validity (%s) exceeds the maximum (%s)", eff.SSHCertValidity, eff.SSHCertMaxValidity)
	}
	verifier := token.NewVerifier(km, token.VerifierOptions{Issuer: eff.Issuer, Audience: eff.Audience, Leeway: 30 * time.Second})
	authn := auth.NewAuthenticator(verifier, st, nil)
	// Sites sign their reports with their own keys, addressed to this
	// audience (internal/auth/site.go).
	authn.AcceptSites(eff.Audience)
	feed.On(store.ChangeSession, authn.InvalidateSession)
	feed.On(store.ChangeUser, authn.InvalidateUser)
	feed.On(store.ChangeAPIToken, authn.InvalidateAPIToken)
	feed.On(store.ChangeService, authn.InvalidateService)
	feed.On(store.ChangeCertBinding, authn.InvalidateCertBinding)
	feed.OnReset(authn.Reset)
	if cfg.StrictRevocation {
		authn.Strict(feed.Barrier)
	}
	// The backends' caches (verified passwords) follow the feed through
	// authn.InvalidateUser and authn.Reset.
	authn.Use(newAuthBackends(backendNames, svc, idp)...)

	mux := http.NewServeMux()
	api.Mount(mux, api.Options{Service: svc, Authenticator: authn, Registerer: reg, Log: log, Version: buildinfo.Version()})
	tokenKey, err := svc.OIDCTokenKey(ctx)
	if err != nil {
		return nil, err
	}
	op, err := oidcprovider.New(oidcprovider.Options{Service: svc, Keys: km, PublicURL: cfg.PublicURL, TokenKey: tokenKey, Log: log})
	if err != nil {
		return nil, err
	}
	// The browser-facing OpenID Connect pages answer anyone and write
	// state and audit records: bounded per address like the anonymous
	// operations of the contract. (The token, userinfo and key endpoints
	// serve relying parties' servers, which speak for many users each.)
	pageLimit := cfg.BrowserPageLimit
	if pageLimit.Every == 0 {
		pageLimit = DefaultBrowserPageLimit
	}
	pages := ratelimit.New(map[string]ratelimit.Limit{"pages": pageLimit})
	limited := pages.Middleware("pages", http.StripPrefix(oidcprovider.Prefix, op))
	for _, p := range oidcprovider.BrowserPaths {
		mux.Handle(oidcprovider.Prefix+p, limited)
	}
	mux.Handle(oidcprovider.Prefix+"/", http.StripPrefix(oidcprovider.Prefix, op))
	// The portal: pages at "/" on precise patterns, beside the API's.
	web, err := portal.New(portal.Options{
		Service: svc, Authenticator: authn, Log: log,
		Secure:         tlsCfg != nil || strings.HasPrefix(cfg.PublicURL, "https://"),
		LimitAnonymous: func(next http.Handler) http.Handler { return pages.Middleware("pages", next) },
		ExternalLogin:  idp != nil,
	})
	if err != nil {
		return nil, err
	}
	web.Mount(mux)
	if idp != nil {
		backend := http.NewServeMux()
		oidclogin.Mount(backend, svc, log)
		mux.Handle("/auth/oidc/", pages.Middleware("pages", backend))
	}
	draining := new(atomic.Bool)
	var h http.Handler = httpserver.Handler(httpserver.Options{
		API: mux, Ready: st.Probe, Draining: draining.Load, JWKS: km.JWKS, Gatherer: reg, Log: log,
		// Anyone may fetch the SSH authority's key (a public operation).
		SSHUserCA:   func() (string, error) { return svc.Accounts.SSHCertificateAuthority(context.Background(), nil) },
		BodyTimeout: cfg.HTTP.BodyTimeout, Streaming: streamingProcedure,
	})
	// Requests over mutual TLS carry their verified client certificate.
	h = auth.ClientCertMiddleware(h)
	// Every request knows its client, which the login back-off counts by.
	h = clientaddr.Middleware(h)
	streams, endStreams := context.WithCancel(context.Background())
	h = endOnShutdown(h, streams, trellisv1connect.NotificationsWatchProcedure, trellisv1connect.RealizationsWatchProcedure, portal.EventsPath)
	if slices.Contains(backendNames, BackendNull) {
		h = auth.NullWarningMiddleware(h)
	}
	host, _ := os.Hostname()
	replica := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), requestid.New())
	return &Server{cfg: cfg, Store: st, Service: svc, Keys: km, Feed: feed, Handler: h, log: log, replicaID: replica, authn: authn, tls: tlsCfg, xca: xca, connsRefused: connsRefused, endStreams: endStreams, draining: draining, Sealer: sealer}, nil
}

// DefaultKEKFile is where `trellis serve` keeps the key-encryption key
// when --kek-file is not given: in the data directory, beside the embedded
// store, made on first start.
func DefaultKEKFile(c StoreConfig) string {
	dir := c.DataDir
	if dir == "" {
		dir = "trellis-data"
	}
	return filepath.Join(dir, "trellis.kek")
}

// signingKeyTTL is how long a signing key stays published after it stops
// signing: as long as the longest-lived token it signs.
func signingKeyTTL(c service.Config) time.Duration {
	return max(c.AccessTokenTTL, service.ExchangedTokenMaxTTL, service.OIDCAccessTokenTTL)
}

// openKEK returns the sealer of private keys at rest: AES-GCM under the
// key-encryption key in cfg.KEKFile, made there on first start (created),
// or the plain sealer when no file is configured.
func openKEK(cfg Config, log *slog.Logger) (sealer keys.Sealer, created bool, err error) {
	if cfg.KEKFile == "" {
		log.Warn("no key-encryption key configured (--kek-file): signing keys, the certificate authorities' keys and mailed tokens are stored unencrypted")
		return keys.Plain(), false, nil
	}
	kek, created, err := keys.LoadOrCreateKEKFile(cfg.KEKFile)
	if err != nil {
		return nil, false, err
	}
	if sealer, err = keys.NewAESGCM(kek); err != nil {
		return nil, false, err
	}
	if created {
		log.Warn("created a new key-encryption key; back it up apart from the store: without it the signing and certificate authority keys cannot be opened", "kek_file", cfg.KEKFile)
	}
	if dir, ok := sameBackupPath(cfg.KEKFile, cfg.Store); ok {
		log.Warn("THE KEY-ENCRYPTION KEY IS IN THE STORE'S DIRECTORY: a copy or backup of that directory holds both the sealed keys and the key that opens them; move it elsewhere (--kek-file), or keep it out of the store's backups",
			"kek_file", cfg.KEKFile, "data_dir", dir)
	}
	return sealer, created, nil
}

// sameBackupPath reports whether the key file lies in the directory of the
// embedded store (or below it), returning that directory.
func sameBackupPath(kekFile string, c StoreConfig) (string, bool) {
	if c.Database != "" {
		return "", false
	}
	dir, err := filepath.Abs(filepath.Dir(c.Spec()))
	if err != nil {
		return "", false
	}
	kek, err := filepath.Abs(kekFile)
	if err != nil {
		return "", false
	}
	// Compare real paths where they resolve: a symbolic link does not
	// separate two files on one backup.
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	if k, err := filepath.EvalSymlinks(filepath.Dir(kek)); err == nil {
		kek = filepath.Join(k, filepath.Base(kek))
	}
	rel, err := filepath.Rel(dir, kek)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return dir, true
}

// storeClock reads now (time.Now when nil) to the microsecond, the
// precision both stores keep: finer, the object an operation returns
// (created_at, updated_at, ...) would differ from the same object read back
// a moment later, and a client comparing the two would see a change that
// never happened.
func storeClock(now func() time.Time) func() time.Time {
	if now == nil {
		now = time.Now
	}
	return func() time.Time { return now().Truncate(time.Microsecond) }
}

// endOnShutdown gives the requests to paths (server streams that last as
// long as their reader wants, such as Notifications.Watch) a context that
// also ends when streams does. Such a stream never finishes by itself: a
// graceful shutdown would wait its whole grace period for it, fail, and
// leave the client hanging on a connection nobody serves. Ended, the stream
// closes normally and the client learns that the server went away.
func endOnShutdown(h http.Handler, streams context.Context, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(paths, r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(streams, cancel)
		defer stop()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Bootstrap creates the first administrator through this server's service,
// with its password parameters. `trellis admin bootstrap` does the same on
// the store directly; this is for embedders and tests (apptest), which hold
// a running server and no second handle on its store.
func (s *Server) Bootstrap(ctx context.Context, uid, email, password string) error {
	_, err := s.Service.Bootstrap(ctx, uid, email, password)
	return err
}

// streamingProcedure reports whether path is one of the API's streaming
// procedures (/trellis.v1.Service/Method), read from the contract itself so
// that a new stream is exempt from the body timeout without a list to keep.
func streamingProcedure(path string) bool { return streamingPaths[path] }

var streamingPaths = func() map[string]bool {
	paths := map[string]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("trellis.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				if m := svc.Methods().Get(j); m.IsStreamingClient() || m.IsStreamingServer() {
					paths["/"+string(svc.FullName())+"/"+string(m.Name())] = true
				}
			}
		}
		return true
	})
	return paths
}()

// CheckListen refuses to serve plain HTTP beyond the loopback interface:
// passwords and tokens would cross the network in clear.
func CheckListen(addr string, tls bool) error {
	if tls {
		return nil
	}
	ok, err := loopback(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if ok {
		return nil
	}
	return fmt.Errorf("refusing to serve plain HTTP on %s: passwords and tokens would cross the network in clear; listen on a loopback address (127.0.0.1:7700) or give --tls-cert and --tls-key", addr)
}

// Serve listens on ln and serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if ok, err := s.Service.HasAdmin(ctx); err == nil && !ok {
		if s.cfg.BootstrapFile == "" {
			s.log.Warn("this testbed has no administrator yet; create one with: trellis admin bootstrap --uid UID --email EMAIL (same --data-dir/--database as serve)")
		} else if remove, err := s.armBootstrap(s.cfg.BootstrapFile, ln); err != nil {
			s.log.Warn("this testbed has no administrator yet, and the bootstrap file could not be written; stop the server and run trellis admin bootstrap on the store", "err", err)
		} else {
			defer remove()
			s.log.Warn("this testbed has no administrator yet; create one with: trellis admin bootstrap --uid UID --email EMAIL (same --data-dir as serve); it uses the one-time token in the bootstrap file", "file", s.cfg.BootstrapFile)
		}
	}
	// No ReadTimeout nor WriteTimeout: they would end streams
	// (Notifications/Watch). The handler bounds bodies instead.
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if n := s.cfg.HTTP.MaxConnsPerClient; n > 0 {
		lim := httpserver.LimitConnsPerClient(ln, n)
		lim.OnRefuse = func(client string) {
			s.connsRefused.Inc()
			s.log.Debug("connection refused: too many open from one client", "client", client, "max", n)
		}
		ln = lim
	}
	// gRPC needs HTTP/2; without TLS that means cleartext HTTP/2 (h2c).
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	srv.Protocols = &protos
	// Shutdown closes the listeners, then ends the streams, which would
	// otherwise hold it for its whole grace period.
	srv.RegisterOnShutdown(s.endStreams)

	// The background work (the change feed above all) goes on while the
	// server drains, and stops after it.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.Feed.Run(bg, s.cfg.FeedInterval) })
	wg.Go(func() { s.maintainKeys(bg) })
	reaper := exclusive.Job{Name: "realization-reaper", Every: s.cfg.ReapInterval, Work: func(ctx context.Context) error {
		if _, err := s.Service.ReleaseExpired(ctx); err != nil {
			return err
		}
		// Sites that leave a realization's materialization unanswered.
		_, err := s.Service.MarkSilentSites(ctx)
		return err
	}}
	wg.Go(func() { exclusive.Run(bg, s.Store, s.replicaID, reaper, s.log) })
	if s.cfg.DeliveryInterval > 0 {
		// Work for sites; every delivery is also claimed before it is
		// posted, so a replica taking over from one that stalled never
		// sends one twice at once.
		dispatcher := exclusive.Job{Name: "site-deliveries", Every: s.cfg.DeliveryInterval, Work: func(ctx context.Context) error {
			_, err := s.Service.DispatchDeliveries(ctx)
			return err
		}}
		wg.Go(func() { exclusive.Run(bg, s.Store, s.replicaID, dispatcher, s.log) })
		// New work is sent at once by the replica that hears of it first
		// (the claims keep it single).
		wg.Go(func() {
			for {
				select {
				case <-bg.Done():
					return
				case <-s.Service.DeliveriesQueued():
					if _, err := s.Service.DispatchDeliveries(bg); err != nil && bg.Err() == nil && !errors.Is(err, store.ErrUnavailable) {
						s.log.Warn("dispatching deliveries failed", "err", err)
					}
				}
			}
		})
	}
	janitor := exclusive.Job{Name: "janitor", Every: 10 * time.Minute, Work: s.tidy}
	wg.Go(func() { exclusive.Run(bg, s.Store, s.replicaID, janitor, s.log) })
	if s.cfg.SMTP.Addr != "" {
		sender := mail.NewSender(s.cfg.SMTP, s.Store, s.Sealer, s.log)
		sender.KeepBodies = s.cfg.MailBodyRetention > 0
		job := exclusive.Job{Name: "mail-delivery", Every: 5 * time.Second, Work: func(ctx context.Context) error {
			_, err := sender.DeliverPending(ctx)
			return err
		}}
		wg.Go(func() { exclusive.Run(bg, s.Store, s.replicaID, job, s.log) })
	}

	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			srv.TLSConfig = s.tls
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.log.Info("trellis serving", "addr", ln.Addr().String(), "store", s.Store.Kind(), "version", buildinfo.Version(), "auth_backends", strings.Join(s.authn.Backends(), ","))
	if slices.Contains(s.authn.Backends(), BackendNull) {
		s.log.Warn(nullDanger, "addr", ln.Addr().String())
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = s.drainAndShutdown(srv, errc)
	}
	stopBG()
	wg.Wait()
	s.authn.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// drainAndShutdown keeps serving for the drain period, with /readyz
// answering 503, then shuts srv down: the listener closes, open streams end
// cleanly, and requests under way get a grace period to finish.
func (s *Server) drainAndShutdown(srv *http.Server, errc <-chan error) error {
	if d := s.cfg.Drain; d > 0 {
		s.draining.Store(true)
		s.log.Info("draining: /readyz answers 503 while requests are still served", "for", d)
		t := time.NewTimer(d)
		select {
		case err := <-errc:
			t.Stop()
			return err
		case <-t.C:
		}
	}
	s.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// Retention of what the janitor removes.
const (
	changeRetention  = time.Hour      // far beyond any replica's polling interval
	expiredRetention = 24 * time.Hour // expired sessions stay a day for the record
	// deliveryRetention keeps delivered and failed deliveries for admins
	// to look back on (trellis admin provider deliveries --all).
	deliveryRetention = 30 * 24 * time.Hour
)

// tidy removes what nobody needs any more: old change-feed entries,
// long-expired sessions, expired login challenges, the OpenID Connect
// provider's expired requests and tokens, expired logins through the
// identity provider, the used actor assertions that expired, the failed
// login counts that the back-off forgot, the bodies of delivered mail
// past their retention and sites' deliveries done a month ago.
func (s *Server) tidy(ctx context.Context) error {
	now := time.Now()
	return s.Store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Changes().Prune(ctx, now.Add(-changeRetention)); err != nil {
			return err
		}
		if _, err := tx.Challenges().DeleteExpired(ctx, now); err != nil {
			return err
		}
		if _, err := tx.OIDC().DeleteExpired(ctx, now); err != nil {
			return err
		}
		if _, err := tx.Federation().DeleteExpiredLogins(ctx, now); err != nil {
			return err
		}
		if _, err := tx.Services().DeleteExpiredAssertions(ctx, now); err != nil {
			return err
		}
		// Failure counts past their reset are ignored by the back-off;
		// deleting them keeps guessing from growing the store for good.
		if _, err := tx.LoginFailures().DeleteBefore(ctx, now.Add(-s.Service.Config().LoginFailureReset)); err != nil {
			return err
		}
		if _, err := tx.Deliveries().DeleteDone(ctx, now.Add(-deliveryRetention)); err != nil {
			return err
		}
		if r := s.cfg.MailBodyRetention; r > 0 {
			if _, err := tx.Outbox().DropBodies(ctx, now.Add(-r)); err != nil {
				return err
			}
		}
		_, err := tx.Sessions().DeleteExpired(ctx, now.Add(-expiredRetention))
		return err
	})
}

// maintainKeys rotates signing keys ahead of their end and drops keys no
// longer published, and picks up a rotation of the X.509 CA. Every replica
// runs it; the key manager tolerates that.
func (s *Server) maintainKeys(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Keys.Maintain(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("signing key maintenance failed", "err", err)
			}
			// A rotation of the X.509 CA made on another replica.
			if changed, err := s.xca.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reloading the X.509 CA failed", "err", err)
			} else if changed {
				s.log.Info("the X.509 CA was rotated: issuing with its new root", "root", s.xca.Certificate().Subject.CommonName)
			}
		}
	}
}

// newSiteClient is how the centre reaches sites: the system's roots, its
// own X.509 authority's and caFile's certificates when given.
func newSiteClient(caFile string, xca *x509ca.CA) (*http.Client, error) {
	var extra []byte
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("site CA file: %w", err)
		}
		extra = b
	}
	c, err := service.SiteHTTPClient(xca, extra)
	if err != nil {
		return nil, fmt.Errorf("site CA file %s: %w", caFile, err)
	}
	return c, nil
}

// envOr returns the environment variable's value or def.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
		return v
	}
	return def
}
