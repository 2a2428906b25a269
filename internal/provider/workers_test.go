package provider

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary be a worker: the supervisor tests launch
// it as `BIN provider worker …`, as the server launches trellis.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "provider" && os.Args[2] == "worker" {
		fs := flag.NewFlagSet("worker", flag.ExitOnError)
		sock := fs.String("socket", "", "")
		uid := fs.String("user", "", "")
		nonce := fs.String("nonce", "", "")
		_ = fs.Parse(os.Args[3:])
		if err := RunWorker(context.Background(), *sock, *uid, *nonce); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// needRoot skips without root, except in CI, where these tests must run:
// they create an OS account and start workers as it.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (it creates an OS account with useradd and runs workers as it), and CI=true")
	}
	t.Skip("needs root: it creates an OS account with useradd and launches workers as it (runs in CI)")
}

// testAccount creates an OS account for the test, removed after.
func testAccount(t testing.TB, name string) *Account {
	t.Helper()
	_ = exec.Command("userdel", "-r", name).Run() // a leftover of a crashed run
	if out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("pkill", "-KILL", "-u", name).Run()
		_ = exec.Command("userdel", "-r", name).Run()
	})
	a, err := checkAccount(name, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testSupervisor serves workers launched (setuid) from a copy of the test
// binary that the mapped accounts can run, in a directory they reach.
func testSupervisor(t testing.TB, idle time.Duration) *supervisor {
	t.Helper()
	dir, err := os.MkdirTemp("", "trellis-workers-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "trellis")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Launcher: "setuid", WorkerIdle: Duration(idle)}
	cfg.Defaults(dir)
	aud, err := openAudit(filepath.Join(dir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSupervisor(cfg, bin, slog.New(slog.NewTextHandler(io.Discard, nil)), aud)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go s.serve(ctx)
	t.Cleanup(func() {
		cancel()
		s.close()
		aud.Close()
	})
	return s
}

func (s *supervisor) statusOf(t *testing.T, user string) (WorkerStatus, bool) {
	t.Helper()
	ws, err := Status(s.sock)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.User == user {
			return w, true
		}
	}
	return WorkerStatus{}, false
}

func (s *supervisor) worker(user string) *worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workers[user]
}

// waitGone waits until pid has ended (or is a zombie nobody reaped).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling another process's end; nothing to wait on
	}
}

// TestWorkerIdleExit: a worker idle past worker_idle exits, status no
// longer lists it, and the next request starts a new one (no crash counted).
func TestWorkerIdleExit(t *testing.T) {
	needRoot(t)
	acct := testAccount(t, "tbwk_idle")
	s := testSupervisor(t, 200*time.Millisecond)
	ctx := context.Background()
	res, err := s.run(ctx, "alice", acct, []string{"id", "-un"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != acct.Name {
		t.Fatalf("first request: %+v, %v", res, err)
	}
	first, ok := s.statusOf(t, "alice")
	if !ok || first.PID == 0 || first.Account != acct.Name {
		t.Fatalf("status after a request: %+v, %v", first, ok)
	}
	w := s.worker("alice")
	select {
	case <-w.dead:
	case <-time.After(30 * time.Second):
		t.Fatal("an idle worker did not exit")
	}
	waitGone(t, first.PID)
	if ws, ok := s.statusOf(t, "alice"); ok {
		t.Errorf("status lists a worker that exited for idleness: %+v", ws)
	}
	res, err = s.run(ctx, "alice", acct, []string{"id", "-un"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != acct.Name {
		t.Fatalf("the request after an idle exit: %+v, %v", res, err)
	}
	second, ok := s.statusOf(t, "alice")
	if !ok || second.PID == first.PID || second.Restarts != 0 {
		t.Errorf("after an idle exit: %+v (first pid %d); want a new worker with no restarts", second, first.PID)
	}
}

// TestWorkerKilledMidRequest: the request a SIGKILLed worker held fails at
// once with a clear error, and the next request gets a new worker, its
// restart counted.
func TestWorkerKilledMidRequest(t *testing.T) {
	needRoot(t)
	acct := testAccount(t, "tbwk_kill")
	s := testSupervisor(t, time.Hour)
	ctx := context.Background()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.run(ctx, "alice", acct, []string{"sleep", "60"}, time.Minute)
		done <- outcome{res, err}
	}()
	var ws WorkerStatus
	deadline := time.Now().Add(30 * time.Second)
	for ws.InFlight == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the worker")
		}
		ws, _ = s.statusOf(t, "alice")
	}
	if err := syscall.Kill(ws.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if o.err == nil || !strings.Contains(o.err.Error(), "worker of alice") {
			t.Errorf("the request held by a killed worker: %+v, %v", o.res, o.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request held by a killed worker hung")
	}
	res, err := s.run(ctx, "alice", acct, []string{"id", "-un"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != acct.Name {
		t.Fatalf("after the crash: %+v, %v", res, err)
	}
	if again, _ := s.statusOf(t, "alice"); again.Restarts != 1 || again.PID == ws.PID {
		t.Errorf("the worker after a crash: %+v (killed pid %d)", again, ws.PID)
	}
}

// TestBackoff: the wait before restarting a worker that crashed n times
// in a row doubles from 100 ms and stops at 10 s.
func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	for n, want := range []time.Duration{0, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
	for _, n := range []int{-1, 100, 1 << 30} {
		if got := backoff(n); got < 0 || got > 10*time.Second {
			t.Errorf("backoff(%d) = %s", n, got)
		}
	}
}

// TestCrashCount: crashes in a row raise the back-off; a worker that had
// run stably before it crashed starts the count again; a launch that
// never said hello (no uptime) counts as a crash in the row.
func TestCrashCount(t *testing.T) {
	now := time.Now()
	var cr crashRecord
	for i, up := range []time.Duration{time.Second, 0, 59 * time.Second} {
		cr = cr.crashed(up, now)
		if cr.n != i+1 || !cr.last.Equal(now) {
			t.Fatalf("crash %d after %s: %+v", i+1, up, cr)
		}
	}
	if backoff(cr.n) != 400*time.Millisecond {
		t.Errorf("back-off after three crashes in a row: %s", backoff(cr.n))
	}
	cr = crashRecord{n: 9, last: now.Add(-time.Hour)}.crashed(backoffReset, now)
	if cr.n != 1 || backoff(cr.n) != 100*time.Millisecond {
		t.Errorf("a crash after a stable minute: %+v", cr)
	}
}
