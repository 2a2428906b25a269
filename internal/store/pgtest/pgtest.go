// Package pgtest gives tests a real PostgreSQL: NewDatabase returns the URL
// of a fresh, empty database, one CREATE DATABASE per call, so tests are
// isolated from each other; a Template's NewDatabase returns one already
// prepared (migrated), copied from a database prepared once per test
// process.
//
// The server is the one TRELLIS_TEST_DATABASE_URL points to (databases are
// created through it and dropped after the test), or else a throwaway
// cluster that this package starts once per test binary with initdb and
// postgres in a temporary directory. Call Stop at the end of the test binary
// (or use Main as TestMain) to shut it down and remove its directory.
//
// When there is neither a URL nor a PostgreSQL installation, tests that ask
// for a database are skipped, except when CI=true: CI must never skip them.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points tests at an existing server, e.g.
// postgres://postgres@localhost:5432/postgres?sslmode=disable. The role
// must be allowed to create databases.
const EnvURL = "TRELLIS_TEST_DATABASE_URL"

var (
	mu        sync.Mutex
	started   bool
	adminURL  string   // where CREATE DATABASE goes
	cl        *cluster // the throwaway cluster, if we started one
	templates []string // templates made by this process, for Stop
	// unavailable says why there is no PostgreSQL to test against;
	// startErr says why starting one failed.
	unavailable string
	startErr    error
)

// Require skips (or, with CI=true, fails) t when no PostgreSQL is available,
// and fails it when the throwaway cluster would not start.
func Require(t testing.TB) {
	t.Helper()
	mu.Lock()
	if !started {
		started = true
		setup()
	}
	why, err := unavailable, startErr
	mu.Unlock()
	switch {
	case why != "" && os.Getenv("CI") == "true":
		t.Fatalf("pgtest: %s; CI=true, and CI must not skip the PostgreSQL tests", why)
	case why != "":
		t.Skipf("pgtest: %s", why)
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}
}

// NewDatabase creates an empty database and returns its URL. The database
// is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "")
}

// newDatabase creates a database, a copy of template when it is not empty,
// dropped when the test ends, and returns its URL.
func newDatabase(t testing.TB, template string) string {
	t.Helper()
	Require(t)
	mu.Lock()
	admin := adminURL
	mu.Unlock()

	name := randomName("trellis_test_")
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := adminExec(admin, stmt); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(admin, name); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := databaseURL(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Template is a database prepared once per test process, lazily, whose
// copies tests get: CREATE DATABASE … TEMPLATE copies its files, which costs
// far less than preparing each database again (running every migration is
// most of what a fresh store costs).
//
// Each test process makes its own, under a random name, so that test
// binaries running at once (go test runs packages in parallel) need no lock
// between them, and no template outlives the schema it was made with; Stop
// drops it from a TRELLIS_TEST_DATABASE_URL server.
type Template struct {
	prepare func(ctx context.Context, url string) error

	mu   sync.Mutex
	name string // set once prepared
	err  error  // why preparing failed, for every test that asks
}

// NewTemplate returns a template that prepare makes from an empty database
// (at url) the first time a test asks for a copy. prepare must close every
// connection it opened: a database with sessions cannot be copied.
func NewTemplate(prepare func(ctx context.Context, url string) error) *Template {
	return &Template{prepare: prepare}
}

// NewDatabase returns the URL of a new copy of the template, dropped when
// the test ends. It skips or fails t as Require does.
func (tp *Template) NewDatabase(t testing.TB) string {
	t.Helper()
	Require(t)
	name, err := tp.ensure()
	if err != nil {
		t.Fatalf("pgtest: template: %v", err)
		return "" // for a testing.TB whose Fatalf returns
	}
	return newDatabase(t, name)
}

// ensure prepares the template once; a failure is kept and reported to
// every caller, as a failed cluster start is.
func (tp *Template) ensure() (string, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.name != "" || tp.err != nil {
		return tp.name, tp.err
	}
	mu.Lock()
	admin := adminURL
	mu.Unlock()
	name := randomName("trellis_template_")
	tp.err = func() error {
		if err := adminExec(admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		mu.Lock()
		templates = append(templates, name)
		mu.Unlock()
		u, err := databaseURL(admin, name)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := tp.prepare(ctx, u); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		return nil
	}()
	if tp.err == nil {
		tp.name = name
	}
	return tp.name, tp.err
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// databaseURL is admin's URL with the database name replaced.
func databaseURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("pgtest: %s is not a URL", EnvURL) // never echo it: it may hold a password
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(admin, name string) error {
	ident := pgx.Identifier{name}.Sanitize()
	// FORCE (PostgreSQL 13+) ends sessions a test left open.
	err := adminExec(admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	if err != nil {
		err = adminExec(admin, "DROP DATABASE IF EXISTS "+ident)
	}
	return err
}

func adminExec(admin, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// Main runs the tests and then Stop: use it as TestMain.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop shuts the throwaway cluster down, if one runs, and removes its
// directory; on a TRELLIS_TEST_DATABASE_URL server it drops the templates
// this process made. Databases created afterwards fail.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if cl == nil {
		for _, name := range templates {
			if err := dropDatabase(adminURL, name); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: drop template %s: %v\n", name, err)
			}
		}
	}
	templates = nil
	if cl != nil {
		cl.stop()
		cl = nil
		startErr = errors.New("the throwaway cluster was stopped")
	}
}

// setup decides which server to use; mu is held.
func setup() {
	if u := os.Getenv(EnvURL); u != "" {
		adminURL = u
		return
	}
	c, why, err := startCluster()
	switch {
	case why != "":
		unavailable = why + "; set " + EnvURL + " or install PostgreSQL"
	case err != nil:
		startErr = err
	default:
		cl = c
		adminURL = c.url
	}
}

// cluster is a PostgreSQL server in a temporary directory.
type cluster struct {
	dir  string
	url  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	log  string
}

// startCluster returns why PostgreSQL is unavailable (why != ""), or the
// error that kept it from starting, or the running cluster.
func startCluster() (c *cluster, why string, err error) {
	in, why, err := initCluster()
	if why != "" || err != nil {
		return nil, why, err
	}
	// The free port may be taken between our probe and postgres binding
	// it; try a few.
	for attempt := 0; ; attempt++ {
		c, err = in.start(0)
		if err == nil || attempt == 2 {
			if err != nil {
				os.RemoveAll(in.dir)
			}
			return c, "", err
		}
	}
}

// installation is an initialized data directory and how to run its server.
type installation struct {
	asUser    func(name string, args ...string) *exec.Cmd
	postgres  string
	dir, data string
}

func (in *installation) start(port int) (*cluster, error) {
	return startServer(in.asUser, in.postgres, in.dir, in.data, port)
}

// initCluster runs initdb in a new temporary directory.
func initCluster() (in *installation, why string, err error) {
	initdb, ok := findInitdb()
	if !ok {
		return nil, "no initdb on PATH or under /usr/lib/postgresql/*/bin", nil
	}
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	if _, err := os.Stat(postgres); err != nil {
		return nil, "no postgres binary next to " + initdb, nil
	}
	// PostgreSQL refuses to run as root: run it as an unprivileged user.
	var asUser func(name string, args ...string) *exec.Cmd
	var owner *user.User
	if os.Geteuid() == 0 {
		if owner, why = unprivilegedUser(); why != "" {
			return nil, why, nil
		}
		if asUser, why = switchUser(owner.Username); why != "" {
			return nil, why, nil
		}
	} else {
		asUser = exec.Command
	}

	dir, err := os.MkdirTemp("", "trellis-pgtest-")
	if err != nil {
		return nil, "", fmt.Errorf("temporary directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, "", fmt.Errorf("hand %s to %s: %w", dir, owner.Username, err)
		}
	}

	data := filepath.Join(dir, "data")
	// --no-sync: nothing here needs to survive a crash.
	cmd := asUser(initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir // the test's directory may be closed to that user
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return &installation{asUser: asUser, postgres: postgres, dir: dir, data: data}, "", nil
}

// startServer starts postgres on port, or on a free one when port is 0.
func startServer(asUser func(string, ...string) *exec.Cmd, postgres, dir, data string, port int) (*cluster, error) {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	c := &cluster{
		dir:  dir,
		url:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		done: make(chan struct{}),
		log:  filepath.Join(dir, "postgres.log"),
	}
	logFile, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	c.cmd = asUser(postgres, "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		// Durability is worth nothing in a throwaway cluster, speed is.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// If the test binary dies without calling Stop (a timeout panic, a
	// kill), the kernel sends postgres SIGQUIT: immediate shutdown. The
	// signal follows the thread that started the process, so a goroutine
	// locked to its thread starts it and waits for it, keeping the thread.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(c.done)
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.url)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("postgres exited at start:\n%s", tail(c.log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			return nil, fmt.Errorf("postgres did not accept connections within a minute: %v\n%s", err, tail(c.log))
		}
	}
}

// stop asks for a fast shutdown, waits, and removes the directory.
func (c *cluster) stop() {
	c.halt()
	os.RemoveAll(c.dir)
}

// halt asks for a fast shutdown and waits; the data stays.
func (c *cluster) halt() {
	c.signal(syscall.SIGINT) // fast shutdown: end sessions, checkpoint, exit
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.kill()
	}
}

// Cluster is a throwaway PostgreSQL server of one test's own, which the test
// may stop and start again (same data, same port) to see how code rides out
// an outage of its database. The shared server (NewDatabase) must never be
// stopped: other tests use it.
type Cluster struct {
	in   *installation
	port int
	url  string

	mu      sync.Mutex
	running *cluster
}

// NewCluster starts a cluster for t alone, removed when t ends. It skips t
// (fails it with CI=true) when PostgreSQL is not installed: a server named
// by TRELLIS_TEST_DATABASE_URL cannot be stopped by a test.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	in, why, err := initCluster()
	switch {
	case why != "" && os.Getenv("CI") == "true":
		t.Fatalf("pgtest: %s; CI=true, and CI must not skip the PostgreSQL tests", why)
	case why != "":
		t.Skipf("pgtest: %s", why)
	case err != nil:
		t.Fatalf("pgtest: %v", err)
	}
	var c *cluster
	for attempt := 0; ; attempt++ {
		if c, err = in.start(0); err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(in.dir)
		t.Fatalf("pgtest: %v", err)
	}
	u, _ := url.Parse(c.url)
	port, _ := strconv.Atoi(u.Port())
	cl := &Cluster{in: in, port: port, url: c.url, running: c}
	t.Cleanup(func() {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.running != nil {
			cl.running.halt()
		}
		os.RemoveAll(in.dir)
	})
	return cl
}

// URL is the cluster's postgres database, for the superuser postgres.
func (c *Cluster) URL() string { return c.url }

// Stop shuts the server down (a fast shutdown: sessions end at once) and
// waits until it has exited.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running == nil {
		t.Fatal("pgtest: the cluster is not running")
	}
	c.running.halt()
	c.running = nil
}

// Start starts the stopped server again, on its port, and waits until it
// accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running != nil {
		t.Fatal("pgtest: the cluster is running")
	}
	r, err := c.in.start(c.port)
	if err != nil {
		t.Fatalf("pgtest: start the cluster again: %v", err)
	}
	c.running = r
}

// kill ends the server at once and waits for it.
func (c *cluster) kill() {
	c.signal(syscall.SIGQUIT) // immediate shutdown
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// signal sends sig to the postmaster. We started it directly (setpriv execs
// it) or through runuser, which forwards signals; postmaster.pid names it
// either way.
func (c *cluster) signal(sig syscall.Signal) {
	pid := c.cmd.Process.Pid
	if b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid")); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		if p, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && p > 0 {
			pid = p
		}
	}
	syscall.Kill(pid, sig)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findInitdb looks on PATH, then in Debian's versioned directories, newest
// version first.
func findInitdb() (string, bool) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return p, true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if p := filepath.Join(d, "initdb"); isFile(p) {
			return p, true
		}
	}
	return "", false
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func unprivilegedUser() (*user.User, string) {
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return u, ""
		}
	}
	return nil, "running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as"
}

// switchUser returns a command maker that runs programs as name. setpriv
// comes first: it execs the program, which so stays our child and keeps
// the parent-death signal (we pass it on, as the uid change clears it);
// runuser stays in between as a parent of its own.
func switchUser(name string) (func(string, ...string) *exec.Cmd, string) {
	if p, err := exec.LookPath("setpriv"); err == nil {
		return func(prog string, args ...string) *exec.Cmd {
			return exec.Command(p, append([]string{"--reuid=" + name, "--regid=" + primaryGroup(name),
				"--init-groups", "--pdeathsig=SIGQUIT", "--", prog}, args...)...)
		}, ""
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		return func(prog string, args ...string) *exec.Cmd {
			return exec.Command(p, append([]string{"-u", name, "--", prog}, args...)...)
		}, ""
	}
	return nil, "running as root, and neither setpriv nor runuser is there to run PostgreSQL as " + name
}

func primaryGroup(name string) string {
	if u, err := user.Lookup(name); err == nil {
		return u.Gid
	}
	return name
}
