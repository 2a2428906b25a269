package provider

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The worker protocol: JSON lines over the server's Unix socket. A worker
// says hello (the Trellis uid it was launched for and the launch's nonce);
// the server checks the peer's uid (SO_PEERCRED) against the account
// mapped to that user, then sends exec requests and reads results, any
// number in flight, matched by id.
type message struct {
	Type string `json:"type"` // hello, welcome, refused, exec, result, status

	UID   string `json:"uid,omitempty"`
	Nonce string `json:"nonce,omitempty"`

	ID        uint64   `json:"id,omitempty"`
	Argv      []string `json:"argv,omitempty"`
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
	MaxOutput int      `json:"max_output,omitempty"`

	ExitCode  int    `json:"exit_code"`
	Stdout    []byte `json:"stdout,omitempty"`
	Stderr    []byte `json:"stderr,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`

	Workers []WorkerStatus `json:"workers,omitempty"`

	// File transfers and terminals (streams.go): the path relative to the
	// account's home, which direction, the nonce the worker's stream
	// connection presents, a size bound or a file's size, a terminal's
	// window and type.
	Path      string `json:"path,omitempty"`
	Home      string `json:"home,omitempty"`
	Direction string `json:"direction,omitempty"`
	Stream    string `json:"stream,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Rows      uint16 `json:"rows,omitempty"`
	Cols      uint16 `json:"cols,omitempty"`
	Term      string `json:"term,omitempty"`

	// whoami's answer: the worker's account and process.
	Account  string `json:"account,omitempty"`
	LocalUID int    `json:"local_uid,omitempty"`
	PID      int    `json:"pid,omitempty"`
}

// WorkerStatus is one worker as `trellis provider status` shows it.
type WorkerStatus struct {
	User     string        `json:"user"`
	Account  string        `json:"account"`
	UID      uint32        `json:"uid"`
	PID      int           `json:"pid"`
	Uptime   time.Duration `json:"uptime"`
	Restarts int           `json:"restarts"`
	InFlight int           `json:"in_flight"`
}

// Result is what a command run by a worker returned.
type Result struct {
	ExitCode  int    `json:"exit_code"`
	Stdout    []byte `json:"stdout"`
	Stderr    []byte `json:"stderr"`
	Truncated bool   `json:"truncated,omitempty"`
}

// worker is one user's worker process as the supervisor knows it.
type worker struct {
	user string
	acct *Account

	mu       sync.Mutex
	conn     *net.UnixConn
	pending  map[uint64]chan *message
	nextID   uint64
	pid      int
	started  time.Time
	lastUsed time.Time
	restarts int
	idle     bool // closed for idleness: its exit is no crash

	ready chan struct{} // closed once the worker said hello
	dead  chan struct{} // closed once it ended
	why   error         // why it ended; set before dead closes
}

// supervisor starts, watches and restarts the per-user workers.
type supervisor struct {
	cfg  *Config
	bin  string
	sock string
	ln   *net.UnixListener
	log  *slog.Logger
	aud  *auditLog

	mu       sync.Mutex
	workers  map[string]*worker // by Trellis uid
	launches map[string]*worker // by launch nonce, until hello
	crashes  map[string]crashRecord
	streams  map[string]*streamWait // by stream nonce, until the worker connects (streams.go)
}

type crashRecord struct {
	n    int
	last time.Time
}

func newSupervisor(cfg *Config, bin string, log *slog.Logger, aud *auditLog) (*supervisor, error) {
	if err := os.MkdirAll(cfg.SocketDir, 0o711); err != nil {
		return nil, err
	}
	// Mapped accounts must reach the socket; SO_PEERCRED decides who may
	// use it, not the file's mode.
	if err := os.Chmod(cfg.SocketDir, 0o711); err != nil {
		return nil, err
	}
	sock := filepath.Join(cfg.SocketDir, SocketName)
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return &supervisor{cfg: cfg, bin: bin, sock: sock, ln: ln, log: log, aud: aud,
		workers: map[string]*worker{}, launches: map[string]*worker{}, crashes: map[string]crashRecord{}, streams: map[string]*streamWait{}}, nil
}

func (s *supervisor) serve(ctx context.Context) {
	go s.reapIdle(ctx)
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *supervisor) close() {
	s.ln.Close()
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		w.idle = true
		if w.conn != nil {
			w.conn.Close()
		}
		w.mu.Unlock()
	}
}

// handle reads a connection's first message: a worker's hello, or a status
// question from the service account itself.
func (s *supervisor) handle(c *net.UnixConn) {
	cred, err := peerCred(c)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var hello message
	line, err := r.ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &hello) != nil {
		c.Close()
		return
	}
	enc := json.NewEncoder(c)
	if hello.Type == "status" {
		if int(cred.Uid) != os.Getuid() && cred.Uid != 0 {
			_ = enc.Encode(message{Type: "refused", Error: "only the site's service account may ask"})
		} else {
			_ = enc.Encode(message{Type: "status", Workers: s.status()})
		}
		c.Close()
		return
	}
	refuse := func(reason string) {
		s.aud.write(auditEntry{Op: "worker.hello", UID: hello.UID, Outcome: "refused", Reason: reason, Detail: fmt.Sprintf("peer uid %d pid %d", cred.Uid, cred.Pid)})
		_ = enc.Encode(message{Type: "refused", Error: reason})
		c.Close()
	}
	if hello.Type == "stream" {
		s.acceptStream(c, r, cred, hello, refuse)
		return
	}
	if hello.Type != "hello" {
		refuse("expected hello")
		return
	}
	s.mu.Lock()
	w := s.launches[hello.Nonce]
	if w != nil && w.user == hello.UID && w.acct.UID == cred.Uid {
		delete(s.launches, hello.Nonce)
	}
	s.mu.Unlock()
	switch {
	case w == nil || w.user != hello.UID:
		refuse("no worker was launched for this user with this nonce")
		return
	case w.acct.UID != cred.Uid:
		// The heart of it: a process of another account never serves this
		// user, whatever it claims.
		refuse(fmt.Sprintf("socket peer uid %d is not %s's mapped account %s (uid %d)", cred.Uid, w.user, w.acct.Name, w.acct.UID))
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if err := enc.Encode(message{Type: "welcome"}); err != nil {
		c.Close()
		return
	}
	w.mu.Lock()
	w.conn, w.pid, w.started, w.lastUsed = c, int(cred.Pid), time.Now(), time.Now()
	w.mu.Unlock()
	close(w.ready)
	s.log.Info("worker ready", "user", w.user, "account", w.acct.Name, "pid", cred.Pid)
	// Results, until the connection ends.
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			s.ended(w, fmt.Errorf("the worker of %s (pid %d) ended while running the request", w.user, cred.Pid))
			return
		}
		var m message
		if json.Unmarshal(line, &m) != nil || m.Type != "result" {
			continue
		}
		w.mu.Lock()
		ch := w.pending[m.ID]
		delete(w.pending, m.ID)
		w.lastUsed = time.Now()
		w.mu.Unlock()
		if ch != nil {
			ch <- &m
		}
	}
}

// ended marks w dead: requests it held fail at once with why.
func (s *supervisor) ended(w *worker, why error) {
	w.mu.Lock()
	select {
	case <-w.dead:
		w.mu.Unlock()
		return
	default:
	}
	w.why = why
	if w.conn != nil {
		w.conn.Close()
	}
	idle, started := w.idle, w.started
	close(w.dead)
	w.mu.Unlock()
	s.mu.Lock()
	if s.workers[w.user] == w {
		delete(s.workers, w.user)
	}
	if !idle {
		now := time.Now()
		var up time.Duration
		if !started.IsZero() {
			up = now.Sub(started)
		}
		s.crashes[w.user] = s.crashes[w.user].crashed(up, now)
	}
	s.mu.Unlock()
	if !idle {
		s.log.Warn("worker ended", "user", w.user, "err", why)
	}
}

// backoffReset is how long a worker must have run for its crash to count
// as a first one again: a worker that crashes once a day is not made to
// wait 10 s for the crashes of last month.
const backoffReset = time.Minute

// crashed is the record after a worker that had run for up ended unasked.
func (cr crashRecord) crashed(up time.Duration, now time.Time) crashRecord {
	if up >= backoffReset {
		return crashRecord{n: 1, last: now}
	}
	return crashRecord{n: cr.n + 1, last: now}
}

// backoff is the wait before restarting a worker that crashed n times in a
// row: 100ms doubling to 10s.
func backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := 100 * time.Millisecond << min(n-1, 7)
	return min(d, 10*time.Second)
}

// get returns user's live worker, launching one (after the back-off its
// crashes earned) when there is none.
func (s *supervisor) get(ctx context.Context, user string, acct *Account) (*worker, error) {
	s.mu.Lock()
	if w := s.workers[user]; w != nil && w.acct.UID == acct.UID {
		s.mu.Unlock()
		return s.waitReady(ctx, w)
	}
	cr := s.crashes[user]
	w := &worker{user: user, acct: acct, pending: map[uint64]chan *message{}, ready: make(chan struct{}), dead: make(chan struct{}), restarts: cr.n}
	nonce := randomNonce()
	s.workers[user] = w
	s.launches[nonce] = w
	s.mu.Unlock()

	if wait := backoff(cr.n) - time.Since(cr.last); cr.n > 0 && wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	cmd, err := s.command(acct, user, nonce)
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		s.mu.Lock()
		delete(s.launches, nonce)
		s.mu.Unlock()
		s.ended(w, fmt.Errorf("starting the worker of %s as %s: %w", user, acct.Name, err))
		return nil, w.why
	}
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		delete(s.launches, nonce)
		s.mu.Unlock()
		why := fmt.Errorf("the worker of %s (%s) exited: %v", user, acct.Name, err)
		if err == nil {
			why = fmt.Errorf("the worker of %s (%s) exited", user, acct.Name)
		}
		s.ended(w, why)
	}()
	return s.waitReady(ctx, w)
}

func (s *supervisor) waitReady(ctx context.Context, w *worker) (*worker, error) {
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-w.ready:
		return w, nil
	case <-w.dead:
		return nil, w.why
	case <-t.C:
		return nil, fmt.Errorf("the worker of %s did not connect within 15s", w.user)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// command is the launcher's command line for a worker.
func (s *supervisor) command(acct *Account, user, nonce string) (*exec.Cmd, error) {
	args := []string{"provider", "worker", "--socket", s.sock, "--user", user, "--nonce", nonce}
	home := acct.Home
	if st, err := os.Stat(home); err != nil || !st.IsDir() {
		home = "/"
	}
	switch s.cfg.Launcher {
	case "sudo":
		cmd := exec.Command("sudo", append([]string{"-n", "-H", "-u", acct.Name, "--", s.bin}, args...)...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return cmd, nil
	case "setuid":
		cmd := exec.Command(s.bin, args...)
		cmd.Dir = home
		cmd.Env = []string{"HOME=" + acct.Home, "USER=" + acct.Name, "LOGNAME=" + acct.Name, "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Setsid:     true,
			Credential: &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups},
		}
		return cmd, nil
	}
	return nil, fmt.Errorf("unknown launcher %q", s.cfg.Launcher)
}

// run has user's worker run argv and returns its result. A worker that
// dies meanwhile fails the request at once.
func (s *supervisor) run(ctx context.Context, user string, acct *Account, argv []string, timeout time.Duration) (*Result, error) {
	w, err := s.get(ctx, user, acct)
	if err != nil {
		return nil, err
	}
	ch := make(chan *message, 1)
	w.mu.Lock()
	w.nextID++
	id := w.nextID
	w.pending[id] = ch
	w.lastUsed = time.Now()
	err = json.NewEncoder(w.conn).Encode(message{Type: "exec", ID: id, Argv: argv, TimeoutMS: timeout.Milliseconds(), MaxOutput: s.cfg.MaxOutputBytes})
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
	}()
	if err != nil {
		return nil, fmt.Errorf("sending to the worker of %s: %w", user, err)
	}
	select {
	case m := <-ch:
		if m.Error != "" {
			return nil, errors.New(m.Error)
		}
		return &Result{ExitCode: m.ExitCode, Stdout: m.Stdout, Stderr: m.Stderr, Truncated: m.Truncated}, nil
	case <-w.dead:
		return nil, w.why
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// reapIdle closes workers that ran nothing for WorkerIdle; they exit when
// their connection ends.
func (s *supervisor) reapIdle(ctx context.Context) {
	idle := time.Duration(s.cfg.WorkerIdle)
	tick := time.NewTicker(max(idle/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		ws := make([]*worker, 0, len(s.workers))
		for _, w := range s.workers {
			ws = append(ws, w)
		}
		s.mu.Unlock()
		for _, w := range ws {
			w.mu.Lock()
			if w.conn != nil && len(w.pending) == 0 && time.Since(w.lastUsed) > idle {
				w.idle = true
				w.conn.Close()
				s.mu.Lock()
				delete(s.crashes, w.user)
				s.mu.Unlock()
			}
			w.mu.Unlock()
		}
	}
}

func (s *supervisor) status() []WorkerStatus {
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	var out []WorkerStatus
	for _, w := range ws {
		w.mu.Lock()
		if w.conn != nil {
			out = append(out, WorkerStatus{User: w.user, Account: w.acct.Name, UID: w.acct.UID, PID: w.pid,
				Uptime: time.Since(w.started).Round(time.Second), Restarts: w.restarts, InFlight: len(w.pending)})
		}
		w.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	return cred, cerr
}

func randomNonce() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
