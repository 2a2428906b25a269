package provider

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/creack/pty"
)

// The worker's side of terminals: a login shell of the account in a PTY,
// its bytes on a stream to the server, resizes and the exit status on the
// control connection.

type terminals struct {
	mu sync.Mutex
	m  map[uint64]*ptyTerm
}

type ptyTerm struct {
	f   *os.File
	pid int
}

func newTerminals() *terminals { return &terminals{m: map[uint64]*ptyTerm{}} }

var termName = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)

// loginShell is the account's shell from the password database.
func loginShell(uid int) (string, error) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/bin/sh", nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[2] != strconv.Itoa(uid) {
			continue
		}
		sh := fields[6]
		switch {
		case sh == "":
			return "/bin/sh", nil
		case strings.HasSuffix(sh, "/nologin") || strings.HasSuffix(sh, "/false"):
			return "", errors.New("your account at the site has no login shell")
		}
		return sh, nil
	}
	return "/bin/sh", nil
}

// run starts the shell and serves its terminal until it exits.
func (t *terminals) run(socket, uid string, req message) message {
	out := message{Type: "result", ID: req.ID}
	fail := func(err error) message { out.ExitCode, out.Error = -1, err.Error(); return out }
	shell, err := loginShell(os.Getuid())
	if err != nil {
		return fail(err)
	}
	me, err := user.Current()
	if err != nil {
		return fail(err)
	}
	term := req.Term
	if !termName.MatchString(term) {
		term = "xterm-256color"
	}
	rows, cols := req.Rows, req.Cols
	if rows == 0 || cols == 0 {
		rows, cols = 24, 80
	}
	cmd := exec.Command(shell)
	cmd.Args = []string{"-" + filepath.Base(shell)} // a login shell
	cmd.Dir = req.Home
	if st, err := os.Stat(req.Home); err != nil || !st.IsDir() {
		cmd.Dir = "/"
	}
	cmd.Env = []string{"HOME=" + req.Home, "USER=" + me.Username, "LOGNAME=" + me.Username, "SHELL=" + shell,
		"TERM=" + term, "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		return fail(fmt.Errorf("starting %s: %w", shell, err))
	}
	pid := cmd.Process.Pid
	// The shell leads its own session and process group (pty.Start); it
	// is hung up only until it was reaped, after which its pid may be
	// another's.
	var reapMu sync.Mutex
	reaped := false
	hangUp := func() {
		reapMu.Lock()
		defer reapMu.Unlock()
		if !reaped {
			_ = syscall.Kill(-pid, syscall.SIGHUP)
		}
	}
	c, err := dialStream(socket, uid, req.Stream)
	if err != nil {
		hangUp()
		_ = cmd.Wait()
		f.Close()
		return fail(err)
	}
	defer c.Close()
	t.mu.Lock()
	t.m[req.ID] = &ptyTerm{f: f, pid: pid}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.m, req.ID)
		t.mu.Unlock()
	}()
	go func() {
		// The client's keys; when it goes, the shell is hung up.
		_, _ = io.Copy(f, c)
		hangUp()
	}()
	// The shell's output, until it and everything it left on the
	// terminal are gone (the PTY reads EIO).
	_, _ = io.Copy(c, f)
	// The output ended: the shell is gone, or the client is (the stream
	// failed); either way what is left on the terminal is hung up.
	hangUp()
	err = cmd.Wait()
	reapMu.Lock()
	reaped = true
	reapMu.Unlock()
	f.Close()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		out.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.ExitCode = 128 + int(ws.Signal())
		}
	default:
		return fail(err)
	}
	return out
}

func (t *terminals) resize(req message) {
	t.mu.Lock()
	pt := t.m[req.ID]
	t.mu.Unlock()
	if pt != nil && req.Rows > 0 && req.Cols > 0 {
		_ = pty.Setsize(pt.f, &pty.Winsize{Rows: req.Rows, Cols: req.Cols})
	}
}

// hangUpAll ends every terminal: the server went away.
func (t *terminals) hangUpAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pt := range t.m {
		_ = syscall.Kill(-pt.pid, syscall.SIGHUP)
	}
}
