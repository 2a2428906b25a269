package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
	"github.com/trellis-testbed/trellis/verify"
)

// Purposes of the centre's tokens that a site accepts, each where it
// expects it (see service.PurposeConnect).
const (
	purposeConnect = "connect"
	purposeRequest = "request"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// Server is the site's server.
type Server struct {
	cfg      *Config
	dir      string
	key      ed25519.PrivateKey
	verifier *verify.Verifier
	state    *state
	audit    *auditLog
	mapper   mapper
	sup      *supervisor
	centre   trellisv1connect.ProvidersClient
	nonces   *nonceCache
	log      *slog.Logger
	// now is the site's clock (time.Now; tests move it): tokens,
	// signatures and tickets are judged by it.
	now func() time.Time
	// tokens are the one-time tokens of transfers and terminals
	// (files.go, terminal.go).
	tokens *oneTimeTokens
	inbox  *inbox        // POST /deliveries (deliveries.go)
	mat    *materializer // materialization deliveries (materializer.go)
}

// ConnectRequest is the body of POST /connect.
type ConnectRequest struct {
	Ticket        string `json:"ticket"`
	UserPublicKey string `json:"user_public_key"` // 32 bytes, base64
}

// ConnectResponse answers it.
type ConnectResponse struct {
	LocalAccount string `json:"local_account"`
}

// ExecRequest is the body of POST /exec.
type ExecRequest struct {
	Argv           []string `json:"argv"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
}

// HTTPClient is how the site reaches the centre: the system's roots, or
// the CA file given.
func HTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// NewServer loads the site from dir. It refuses to run as root.
func NewServer(ctx context.Context, dir string, log *slog.Logger) (*Server, error) {
	if os.Geteuid() == 0 {
		return nil, errors.New("refusing to run as root: run trellis provider serve as an unprivileged service account (docs/provider.md)")
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("tls_cert and tls_key go together")
	}
	if cfg.TLSCert == "" {
		host, _, err := net.SplitHostPort(cfg.Listen)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return nil, fmt.Errorf("refusing plain HTTP on %s: tokens would cross the network in clear; set tls_cert and tls_key, or listen on loopback", cfg.Listen)
		}
	}
	key, err := LoadKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	m, err := newMapper(cfg.Mapper, time.Duration(cfg.MapperTimeout))
	if err != nil {
		return nil, err
	}
	st, err := openState(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	hc, err := HTTPClient(cfg.CentralCAFile)
	if err != nil {
		return nil, err
	}
	v, err := verify.New(ctx, verify.Options{Issuer: cfg.Issuer, JWKSURL: cfg.JWKSURL, Audience: cfg.Audience, HTTPClient: hc, Now: time.Now})
	if err != nil {
		return nil, fmt.Errorf("fetching the centre's key set: %w", err)
	}
	aud, err := openAudit(filepath.Join(dir, AuditFile))
	if err != nil {
		v.Close()
		return nil, err
	}
	bin, err := os.Executable()
	if err != nil {
		v.Close()
		return nil, err
	}
	if cfg.Launcher == "setuid" {
		// The server keeps CAP_SETUID and CAP_SETGID for itself; nothing
		// it starts inherits them.
		_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	}
	sup, err := newSupervisor(cfg, bin, log, aud)
	if err != nil {
		v.Close()
		return nil, err
	}
	srv := &Server{
		cfg: cfg, dir: dir, key: key, verifier: v, state: st, audit: aud, mapper: m, sup: sup,
		centre: trellisv1connect.NewProvidersClient(hc, cfg.Central),
		nonces: newNonceCache(100_000), log: log, now: time.Now, tokens: newOneTimeTokens(time.Now),
	}
	srv.inbox = newInbox(v, st, aud)
	srv.inbox.handle("disconnect", disconnectHandler(st))
	if err := srv.newMaterializer(hc); err != nil {
		v.Close()
		return nil, err
	}
	return srv, nil
}

// Handler is the site's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect", s.connect)
	mux.HandleFunc("POST /exec", s.exec)
	mux.HandleFunc("POST /disconnect", s.disconnect)
	s.transferRoutes(mux)
	mux.Handle("POST /deliveries", s.inbox)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !streamed(r) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		mux.ServeHTTP(w, r)
	})
}

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	defer s.verifier.Close()
	defer s.audit.Close()
	go s.sup.serve(ctx)
	defer s.sup.close()
	go func() {
		if err := s.mat.run(ctx); err != nil {
			s.log.Error("materializer stopped", "err", err)
		}
	}()
	srv := &http.Server{Addr: s.cfg.Listen, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return err
		}
		srv.TLSConfig = intermediateTLS()
		srv.TLSConfig.Certificates = []tls.Certificate{cert}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.log.Info("site serving", "name", s.cfg.Name, "listen", ln.Addr().String(), "launcher", s.cfg.Launcher, "tls", s.cfg.TLSCert != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// intermediateTLS is Mozilla's "intermediate" configuration: TLS 1.2 with
// ECDHE and AEAD suites only, or TLS 1.3.
func intermediateTLS() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// httpError is a refusal with its status, for the client and the audit.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func refused(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, e auditEntry, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	e.Op, e.Outcome, e.Reason, e.Remote = op, "refused", err.Error(), r.RemoteAddr
	if status >= 500 {
		e.Outcome = "failed"
	}
	s.audit.write(e)
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// centreToken verifies a token of the centre's for this site with purpose.
func (s *Server) centreToken(ctx context.Context, raw, purpose string) (*verify.Claims, error) {
	c, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, refused(http.StatusUnauthorized, "centre token refused: %v", err)
	}
	if c.Purpose != purpose {
		return nil, refused(http.StatusUnauthorized, "centre token refused: its purpose is %q, not %q", c.Purpose, purpose)
	}
	if c.ID == "" {
		return nil, refused(http.StatusUnauthorized, "centre token refused: no jti")
	}
	return c, nil
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	const op = "connect"
	var req ConnectRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.fail(w, r, op, auditEntry{}, refused(http.StatusBadRequest, "body: %v", err))
		return
	}
	c, err := s.centreToken(r.Context(), req.Ticket, purposeConnect)
	if err != nil {
		s.fail(w, r, op, auditEntry{}, err)
		return
	}
	e := auditEntry{UID: c.Subject}
	pub, err := decodeKey(req.UserPublicKey)
	if err != nil {
		s.fail(w, r, op, e, refused(http.StatusBadRequest, "user_public_key: %v", err))
		return
	}
	fresh, err := s.state.useTicket(c.ID, c.Expiry, s.now())
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	if !fresh {
		s.fail(w, r, op, e, refused(http.StatusConflict, "ticket used already: ask the centre for a new one (trellis provider connect)"))
		return
	}
	name, err := s.mapper(r.Context(), c.Subject)
	if err != nil {
		s.fail(w, r, op, e, refused(http.StatusForbidden, "no local account: %v", err))
		return
	}
	e.LocalAccount = name
	if _, err := checkAccount(name, s.cfg.MinUID); err != nil {
		s.fail(w, r, op, e, refused(http.StatusForbidden, "%v", err))
		return
	}
	fp := usersig.Fingerprint(pub)
	// The centre hears of the mapping before the site keeps it: a
	// connection the centre refused leaves nothing here.
	if err := s.report(r.Context(), c.Subject, name, fp, c.ID); err != nil {
		s.fail(w, r, op, e, refused(http.StatusBadGateway, "the centre refused the connection: %v", err))
		return
	}
	if err := s.state.putMapping(c.Subject, &Mapping{Account: name, UserKey: pub, CreatedAt: s.now().UTC()}); err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	e.Op, e.Outcome, e.Detail, e.Remote = op, "ok", "user key "+fp, r.RemoteAddr
	s.audit.write(e)
	writeJSON(w, http.StatusOK, ConnectResponse{LocalAccount: name})
}

// report tells the centre of a mapping, signed with the site's key.
func (s *Server) report(ctx context.Context, uid, account, fp, jti string) error {
	iss := "provider:" + s.cfg.Name
	jwt, err := token.SignAssertion(s.key, iss, s.cfg.CentreAudience, s.now(), 2*time.Minute)
	if err != nil {
		return err
	}
	req := connect.NewRequest(&trellisv1.ReportConnectionRequest{Uid: uid, LocalAccount: account, UserKeyFingerprint: fp, TicketJti: jti})
	req.Header().Set("Authorization", "Bearer "+jwt)
	_, err = s.centre.ReportConnection(ctx, req)
	return err
}

// userRequest authenticates a user's request: the centre's token for this
// site, a mapping, and the user's own signature over exactly this request,
// fresh and never seen before.
func (s *Server) userRequest(r *http.Request, body []byte) (string, *Mapping, error) {
	raw, ok := bearer(r)
	if !ok {
		return "", nil, refused(http.StatusUnauthorized, "no centre token (Authorization: Bearer)")
	}
	c, err := s.centreToken(r.Context(), raw, purposeRequest)
	if err != nil {
		return "", nil, err
	}
	m, ok := s.state.mapping(c.Subject)
	if !ok {
		return c.Subject, nil, refused(http.StatusForbidden, "%s is not connected to this site: trellis provider connect %s", c.Subject, s.cfg.Name)
	}
	sig := r.Header.Get(usersig.Header)
	if sig == "" && !s.cfg.RequireUserSignature {
		return c.Subject, m, nil
	}
	now := s.now()
	maxAge := time.Duration(s.cfg.SignatureMaxAge)
	sc, err := usersig.Verify(sig, m.UserKey, usersig.Request{UID: c.Subject, Site: s.cfg.Name, Method: r.Method, Target: r.URL.RequestURI(), Body: body}, now, maxAge)
	if err != nil {
		return c.Subject, m, refused(http.StatusForbidden, "%v", err)
	}
	if !s.nonces.add(c.Subject+"\x00"+sc.Nonce, now.Add(2*maxAge), now) {
		return c.Subject, m, refused(http.StatusForbidden, "user signature replayed (nonce seen before)")
	}
	return c.Subject, m, nil
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	const op = "exec"
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, r, op, auditEntry{}, refused(http.StatusBadRequest, "body: %v", err))
		return
	}
	uid, m, err := s.userRequest(r, body)
	e := auditEntry{UID: uid}
	if m != nil {
		e.LocalAccount = m.Account
	}
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	var req ExecRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.Argv) == 0 {
		s.fail(w, r, op, e, refused(http.StatusBadRequest, "argv: a command is required"))
		return
	}
	// The account is looked up again: it may have been removed or changed
	// since the user connected.
	acct, err := checkAccount(m.Account, s.cfg.MinUID)
	if err != nil {
		s.fail(w, r, op, e, refused(http.StatusForbidden, "%v", err))
		return
	}
	timeout := time.Duration(s.cfg.ExecTimeout)
	if t := time.Duration(req.TimeoutSeconds) * time.Second; t > 0 && t < timeout {
		timeout = t
	}
	e.Detail = fmt.Sprintf("argv %q", req.Argv)
	res, err := s.sup.run(r.Context(), uid, acct, req.Argv, timeout)
	if err != nil {
		s.fail(w, r, op, e, refused(http.StatusBadGateway, "%v", err))
		return
	}
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	e.Detail += fmt.Sprintf(", exit %d", res.ExitCode)
	s.audit.write(e)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	const op = "disconnect"
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, r, op, auditEntry{}, refused(http.StatusBadRequest, "body: %v", err))
		return
	}
	uid, m, err := s.userRequest(r, body)
	e := auditEntry{UID: uid}
	if m != nil {
		e.LocalAccount = m.Account
	}
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	if _, err := s.state.deleteMapping(uid); err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	s.audit.write(e)
	writeJSON(w, http.StatusOK, map[string]string{})
}

func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 8 || !(v[:7] == "Bearer " || v[:7] == "bearer ") {
		return "", false
	}
	return v[7:], true
}

func decodeKey(s string) (ed25519.PublicKey, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, errors.New("an Ed25519 public key, 32 bytes in base64")
}

// nonceCache remembers the user signatures' nonces until they could no
// longer be fresh. It is bounded: full of live nonces, it refuses new
// ones (a flood), never forgets a live one (which would allow a replay).
type nonceCache struct {
	mu  sync.Mutex
	max int
	m   map[string]time.Time
}

func newNonceCache(max int) *nonceCache { return &nonceCache{max: max, m: map[string]time.Time{}} }

func (c *nonceCache) add(k string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.m[k]; seen {
		return false
	}
	if len(c.m) >= c.max {
		for n, u := range c.m {
			if now.After(u) {
				delete(c.m, n)
			}
		}
		if len(c.m) >= c.max {
			return false
		}
	}
	c.m[k] = until
	return true
}
