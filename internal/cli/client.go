package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

const (
	credentialsFileName = "credentials.json"
	lockFileName        = "credentials.lock"

	// refreshLeeway refreshes an access token this long before it expires, so
	// that a token does not expire between the check and the server's.
	refreshLeeway = 30 * time.Second

	// defaultRequestTimeout bounds every call: the API's calls are small and
	// quick, and a hung server should not hang a script.
	defaultRequestTimeout = 30 * time.Second

	// lockWait bounds the wait for another process's refresh: one round trip.
	lockWait = defaultRequestTimeout + 5*time.Second
)

// credentials is what login saves: enough to call the server as the user and
// to renew the access token without asking for the password again.
type credentials struct {
	Server               string    `json:"server"`
	UID                  string    `json:"uid"`
	AccessToken          string    `json:"access_token"`
	AccessTokenExpiresAt time.Time `json:"access_token_expires_at"`
	RefreshToken         string    `json:"refresh_token,omitempty"`
	SessionID            string    `json:"session_id"`
	SessionExpiresAt     time.Time `json:"session_expires_at"`
}

// applyTokens records tokens the server issued (by Login or Refresh). Refresh
// may leave the session fields out; the session is then the same one.
func (c *credentials) applyTokens(t *trellisv1.Tokens) {
	c.AccessToken = t.GetAccessToken()
	c.AccessTokenExpiresAt = timeOf(t.GetAccessTokenExpiresAt())
	c.RefreshToken = t.GetRefreshToken()
	if t.GetSessionId() != "" {
		c.SessionID = t.GetSessionId()
	}
	if t.GetSessionExpiresAt() != nil {
		c.SessionExpiresAt = timeOf(t.GetSessionExpiresAt())
	}
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// credStore keeps the credentials file in the config directory. The file holds
// a refresh token, which is as good as a password for a day: only its owner
// may read it, and it is replaced atomically so that a crash or a concurrent
// reader never sees half a file.
type credStore struct {
	dir string
}

func (s credStore) path() string { return filepath.Join(s.dir, credentialsFileName) }

// load returns the saved credentials, or nil if there are none.
func (s credStore) load() (*credentials, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading credentials: %w", err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading credentials %s: %w; log in again", s.path(), err)
	}
	return &c, nil
}

func (s credStore) save(c *credentials) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("saving credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("saving credentials: %w", err)
	}
	// CreateTemp makes the file 0600; the temporary file lives in the same
	// directory so that the rename is atomic.
	f, err := os.CreateTemp(s.dir, ".credentials-*.tmp")
	if err != nil {
		return fmt.Errorf("saving credentials: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("saving credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("saving credentials: %w", err)
	}
	// Sync before rename, or a crash may leave an empty file under the final
	// name on some file systems.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving credentials: %w", err)
	}
	if err := os.Rename(tmp, s.path()); err != nil {
		return fmt.Errorf("saving credentials: %w", err)
	}
	return nil
}

// remove deletes the credentials file; it reports whether there was one.
func (s credStore) remove() (bool, error) {
	err := os.Remove(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing credentials: %w", err)
	}
	return true, nil
}

// lock serializes refreshes between trellis processes sharing a config
// directory (a script running commands in parallel). Refresh tokens are single
// use and the server revokes the session when one is presented twice, so two
// processes refreshing with the same token would log the user out.
func (s credStore) lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(s.dir, lockFileName))
}

// conn is one command's connection to the server: the shared plumbing every
// command uses, so that server resolution, credentials, refresh and timeouts
// behave the same everywhere.
type conn struct {
	server string
	store  credStore
	tokens *tokenSource

	// Clients that send the caller's credentials.
	auth          trellisv1connect.AuthClient
	users         trellisv1connect.UsersClient
	admin         trellisv1connect.AdminClient
	projects      trellisv1connect.ProjectsClient
	circles       trellisv1connect.CirclesClient
	notifications trellisv1connect.NotificationsClient
	policy        trellisv1connect.PolicyClient
	experiments   trellisv1connect.ExperimentsClient
	libraries     trellisv1connect.LibrariesClient
	resources     trellisv1connect.ResourcesClient
	realizations  trellisv1connect.RealizationsClient
	services      trellisv1connect.ServicesClient
	oidcClients   trellisv1connect.OidcClientsClient
	providers     trellisv1connect.ProvidersClient
	// forwarder is Providers for Forward: a forwarded request lasts as
	// long as the site's work (its time limit), longer than other calls.
	forwarder trellisv1connect.ProvidersClient
	// identities is the oidc authentication backend's (the caller's links).
	identities oidcv1connect.LoginClient

	// notificationStream is for Notifications.Watch: a stream lasts as long
	// as its reader wants, so its HTTP client has no overall timeout (the
	// unary clients' would cut it off); interrupting the command ends it.
	notificationStream trellisv1connect.NotificationsClient
	// realizationStream is for Realizations.Watch, likewise.
	realizationStream trellisv1connect.RealizationsClient

	// Clients for the calls that need no credentials (login, register,
	// confirmation, password reset, version). They send none: a stale token
	// would only get an otherwise valid call refused, and these calls work
	// for people who have no login yet.
	anonAuth       trellisv1connect.AuthClient
	anonUsers      trellisv1connect.UsersClient
	anonIdentities oidcv1connect.LoginClient
	info           trellisv1connect.ApiInfoClient
}

// connect resolves the server and the config directory and builds the clients.
// It sends nothing yet: credentials are read and refreshed on the first
// authenticated call.
func (a *app) connect() (*conn, error) {
	dir, err := a.resolveConfigDir()
	if err != nil {
		return nil, err
	}
	store := credStore{dir: dir}
	// A corrupt credentials file must not stop login from replacing it, so
	// the error waits until an authenticated call needs the credentials.
	saved, loadErr := store.load()

	server, err := a.resolveServer(saved)
	if err != nil {
		return nil, err
	}

	rt, err := a.roundTripper()
	if err != nil {
		return nil, err
	}
	// Authenticated calls present the saved client certificate to an https
	// server (clientcert.go); anonymous ones send no credentials at all.
	anonHTTP := &http.Client{Timeout: a.timeout, Transport: rt}
	certRT, clientCert := a.withClientCert(rt, dir, server)
	httpClient := &http.Client{Timeout: a.timeout, Transport: certRT}
	transport := connect.WithInterceptors(transportErrors(server))
	anonAuth := trellisv1connect.NewAuthClient(anonHTTP, server, transport)

	ts := &tokenSource{
		server:   server,
		store:    store,
		envToken: strings.TrimSpace(os.Getenv(EnvToken)),
		creds:    saved,
		loadErr:  loadErr,
		refresh:  anonAuth,
		now:      a.now,
		// Without a token, a saved client certificate may still say who
		// the caller is: the call goes out and the server judges.
		clientCert: clientCert != nil && clientCert.present(),
	}
	// The bearer interceptor is outermost so that its own errors (not logged
	// in, refresh refused) are not mistaken for transport failures.
	authed := connect.WithInterceptors(&bearer{ts: ts}, transportErrors(server))

	// Dialing is still bounded by the default transport's timeouts.
	streamClient := &http.Client{Transport: certRT}

	return &conn{
		server:             server,
		store:              store,
		tokens:             ts,
		auth:               trellisv1connect.NewAuthClient(httpClient, server, authed),
		users:              trellisv1connect.NewUsersClient(httpClient, server, authed),
		admin:              trellisv1connect.NewAdminClient(httpClient, server, authed),
		projects:           trellisv1connect.NewProjectsClient(httpClient, server, authed),
		circles:            trellisv1connect.NewCirclesClient(httpClient, server, authed),
		notifications:      trellisv1connect.NewNotificationsClient(httpClient, server, authed),
		policy:             trellisv1connect.NewPolicyClient(httpClient, server, authed),
		experiments:        trellisv1connect.NewExperimentsClient(httpClient, server, authed),
		libraries:          trellisv1connect.NewLibrariesClient(httpClient, server, authed),
		resources:          trellisv1connect.NewResourcesClient(httpClient, server, authed),
		realizations:       trellisv1connect.NewRealizationsClient(httpClient, server, authed),
		services:           trellisv1connect.NewServicesClient(httpClient, server, authed),
		oidcClients:        trellisv1connect.NewOidcClientsClient(httpClient, server, authed),
		providers:          trellisv1connect.NewProvidersClient(httpClient, server, authed),
		forwarder:          trellisv1connect.NewProvidersClient(&http.Client{Timeout: forwardTimeout, Transport: certRT}, server, authed),
		identities:         oidcv1connect.NewLoginClient(httpClient, server, authed),
		anonIdentities:     oidcv1connect.NewLoginClient(anonHTTP, server, transport),
		notificationStream: trellisv1connect.NewNotificationsClient(streamClient, server, authed),
		realizationStream:  trellisv1connect.NewRealizationsClient(streamClient, server, authed),
		anonAuth:           anonAuth,
		anonUsers:          trellisv1connect.NewUsersClient(anonHTTP, server, transport),
		info:               trellisv1connect.NewApiInfoClient(anonHTTP, server, transport),
	}, nil
}

// usersAsCaller is for calls open to everyone that may show more to a member
// (the profile description): it sends credentials when there are some, so a
// person about to register can still make the call.
func (c *conn) usersAsCaller() trellisv1connect.UsersClient {
	if c.tokens.available() {
		return c.users
	}
	return c.anonUsers
}

func (a *app) resolveConfigDir() (string, error) {
	if a.configDir != "" {
		return a.configDir, nil
	}
	if d := os.Getenv(EnvConfigDir); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory: %w; set --config-dir or %s", err, EnvConfigDir)
	}
	return filepath.Join(base, "trellis"), nil
}

// resolveServer picks the server: the flag, the environment, the server the
// saved login is for (so that `trellis --server X login` is followed by plain
// `trellis whoami`), then the default.
func (a *app) resolveServer(saved *credentials) (string, error) {
	s := a.server
	switch {
	case s != "":
	case os.Getenv(EnvServer) != "":
		s = os.Getenv(EnvServer)
	case saved != nil && saved.Server != "":
		s = saved.Server
	default:
		s = DefaultServer
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError{cmd: "trellis", err: fmt.Errorf("server %q: want an http:// or https:// URL", s)}
	}
	return normalizeServer(s), nil
}

// normalizeServer makes "http://h:1/" and "http://h:1" the same server, both
// for the clients (which append "/trellis.v1...") and for matching saved
// credentials.
func normalizeServer(s string) string { return strings.TrimRight(s, "/") }

// insecureRemote reports whether server is plain HTTP to another machine.
func insecureRemote(server string) bool {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// warnInsecure warns before a password leaves for a plain-HTTP server on
// another machine, where it would cross the network in clear.
func (a *app) warnInsecure(c *conn) {
	if insecureRemote(c.server) {
		fmt.Fprintf(a.streams.Err, "warning: %s is plain HTTP: the password crosses the network unencrypted\n", c.server)
	}
}

// errNotLoggedIn is returned as a Connect error so that it prints and exits
// like the server's own "unauthenticated".
func errNotLoggedIn(server string) error {
	return connect.NewError(connect.CodeUnauthenticated,
		fmt.Errorf("not logged in to %s: run `trellis login UID` (or set %s)", server, EnvToken))
}

// tokenSource hands out the bearer token for authenticated calls, refreshing
// the saved access token when it is about to expire.
type tokenSource struct {
	mu sync.Mutex

	server   string
	store    credStore
	envToken string // TRELLIS_TOKEN: used as is, never refreshed nor saved
	creds    *credentials
	loadErr  error
	refresh  trellisv1connect.AuthClient
	now      func() time.Time

	// refreshed is set once this process refreshed; a second refusal after a
	// fresh token is the server's final word, not a reason to refresh again.
	refreshed bool

	// clientCert is set when the config directory holds a client
	// certificate that the transport presents (https only): with no token
	// saved, calls go out without one instead of failing here.
	clientCert bool
}

// certOnly reports whether there is no token to send but a client
// certificate may stand for the caller. Called with mu held.
func (t *tokenSource) certOnly() bool {
	return t.clientCert && t.envToken == "" && t.loadErr == nil && (t.creds == nil || t.creds.AccessToken == "")
}

// saved returns the saved credentials for this server, or an error saying why
// there are none to use.
func (t *tokenSource) saved() (*credentials, error) {
	if t.loadErr != nil {
		return nil, t.loadErr
	}
	if t.creds == nil || t.creds.AccessToken == "" {
		return nil, errNotLoggedIn(t.server)
	}
	// Never send one server's token to another.
	if normalizeServer(t.creds.Server) != t.server {
		return nil, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf(
			"the saved login is for %s, not %s: run `trellis --server %s login UID`",
			t.creds.Server, t.server, t.server))
	}
	return t.creds, nil
}

// token returns the bearer token to send. With force it refreshes even a token
// that looks valid, because the server just refused it (clock skew, a rotated
// signing key). It returns "" without error when there is no token but the
// saved client certificate may authenticate the call.
func (t *tokenSource) token(ctx context.Context, force bool) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.envToken != "" {
		return t.envToken, nil
	}
	if t.certOnly() {
		return "", nil
	}
	c, err := t.saved()
	if err != nil {
		return "", err
	}
	if !force && !t.expiring(c) {
		return c.AccessToken, nil
	}
	if c.RefreshToken == "" || (force && t.refreshed) {
		// Nothing to renew with: let the server judge the token we have.
		return c.AccessToken, nil
	}
	if !c.SessionExpiresAt.IsZero() && !t.now().Before(c.SessionExpiresAt) {
		return "", connect.NewError(connect.CodeUnauthenticated, fmt.Errorf(
			"session expired at %s: run `trellis login %s` again", formatTime(c.SessionExpiresAt), c.UID))
	}
	if err := t.refreshLocked(ctx, c); err != nil {
		return "", err
	}
	return t.creds.AccessToken, nil
}

// available reports whether there are credentials to send to this server.
func (t *tokenSource) available() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.envToken != "" || t.certOnly() {
		return true
	}
	_, err := t.saved()
	return err == nil
}

// canRetry reports whether a refusal of the current token may be cured by a
// refresh.
func (t *tokenSource) canRetry() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.envToken == "" && !t.refreshed && !t.certOnly() && t.creds != nil && t.creds.RefreshToken != ""
}

// expiring reports whether the access token expires within refreshLeeway. An
// unknown expiry is left to the server to judge.
func (t *tokenSource) expiring(c *credentials) bool {
	if c.AccessTokenExpiresAt.IsZero() {
		return false
	}
	return !t.now().Add(refreshLeeway).Before(c.AccessTokenExpiresAt)
}

func (t *tokenSource) refreshLocked(ctx context.Context, c *credentials) error {
	unlock, err := t.store.lock(ctx)
	if err != nil {
		return fmt.Errorf("refreshing credentials: %w", err)
	}
	defer unlock()

	// Another process may have refreshed while we waited for the lock; its
	// tokens replace ours, and our refresh token is already spent.
	if disk, err := t.store.load(); err == nil && disk != nil &&
		normalizeServer(disk.Server) == t.server && disk.RefreshToken != c.RefreshToken {
		t.creds = disk
		if !t.expiring(disk) {
			t.refreshed = true
			return nil
		}
		c = disk
	}

	resp, err := t.refresh.Refresh(ctx, connect.NewRequest(&trellisv1.RefreshRequest{RefreshToken: c.RefreshToken}))
	if err != nil {
		if connect.CodeOf(err) == connect.CodeUnauthenticated {
			return connect.NewError(connect.CodeUnauthenticated, fmt.Errorf(
				"session expired or revoked: run `trellis login %s` again", c.UID))
		}
		return err
	}
	if resp.Msg.GetTokens().GetAccessToken() == "" {
		return errors.New("refreshing credentials: the server returned no access token")
	}
	next := *c
	next.applyTokens(resp.Msg.GetTokens())
	// The old refresh token is spent: if the new one is not saved, the next
	// command would present the old one and the server would revoke the
	// session. Failing now at least says why.
	if err := t.store.save(&next); err != nil {
		return err
	}
	t.creds = &next
	t.refreshed = true
	return nil
}

// bearer is the interceptor that authenticates calls with the token source.
type bearer struct {
	ts *tokenSource
}

func (b *bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		tok, err := b.ts.token(ctx, false)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			req.Header().Set("Authorization", "Bearer "+tok)
		}
		resp, err := next(ctx, req)
		// A token the client thinks valid may still be refused (clock skew,
		// key rotation); one refresh and one retry cure that. The call was
		// refused before it did anything, so repeating it is safe.
		if connect.CodeOf(err) == connect.CodeUnauthenticated && connect.IsWireError(err) && b.ts.canRetry() {
			tok, rerr := b.ts.token(ctx, true)
			if rerr != nil {
				// The refresh's refusal ("session expired or revoked: log
				// in again") says more than the call's.
				return nil, rerr
			}
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
		return resp, err
	}
}

func (b *bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		c := next(ctx, spec)
		// A stream cannot fail here; without a token the server refuses it.
		if tok, err := b.ts.token(ctx, false); err == nil && tok != "" {
			c.RequestHeader().Set("Authorization", "Bearer "+tok)
		}
		return c
	}
}

func (b *bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// transportErrors names the server in errors that did not come from it (connection
// refused, timeout, bad TLS): Connect's bare "dial tcp ...: connection refused"
// does not say which server was tried.
func transportErrors(server string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			if err != nil {
				return nil, transportError(server, err)
			}
			return resp, nil
		}
	}
}

// transportError names the server in an error that did not come from it; the
// server's own errors are returned unchanged. Streams, which the unary
// interceptor does not see, call it on their final error.
func transportError(server string, err error) error {
	var cerr *connect.Error
	if err != nil && !connect.IsWireError(err) && errors.As(err, &cerr) {
		return connect.NewError(cerr.Code(), fmt.Errorf("request to %s failed: %s", server, cerr.Message()))
	}
	return err
}

// roundTripper is the default transport, trusting the certificate
// authority of --ca-file (or $TRELLIS_CA_FILE) instead of the system's when
// one is given: a `serve --tls-auto` server presents a certificate of its own
// Trellis CA.
func (a *app) roundTripper() (http.RoundTripper, error) {
	file := a.caFile
	if file == "" {
		file = os.Getenv(EnvCAFile)
	}
	if file == "" {
		return http.DefaultTransport, nil
	}
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", file)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
