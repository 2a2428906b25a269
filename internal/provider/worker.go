package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RunWorker is `trellis provider worker`: it runs as the mapped account,
// connects to the server's socket, says whom it was launched for and runs
// what the server sends until the connection ends.
func RunWorker(ctx context.Context, socket, user, nonce string) error {
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return errors.New("a worker never runs as root")
	}
	// Whatever capabilities the launch left, the user's commands get none.
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	c, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("connecting to the site's server: %w", err)
	}
	defer c.Close()
	var wmu sync.Mutex
	enc := json.NewEncoder(c)
	if err := enc.Encode(message{Type: "hello", UID: user, Nonce: nonce}); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	var m message
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("the server closed the connection: %w", err)
	}
	if err := json.Unmarshal(line, &m); err != nil || m.Type != "welcome" {
		return fmt.Errorf("the server refused this worker: %s", m.Error)
	}
	var running sync.WaitGroup
	defer running.Wait()
	terms := newTerminals()
	// Requests run concurrently; each answers with one result.
	answer := func(f func() message) {
		running.Add(1)
		go func() {
			defer running.Done()
			res := f()
			wmu.Lock()
			_ = enc.Encode(res)
			wmu.Unlock()
		}()
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			terms.hangUpAll()
			return nil // the server closed it: idle, or shutting down
		}
		var req message
		if json.Unmarshal(line, &req) != nil {
			continue
		}
		switch req.Type {
		case "exec":
			answer(func() message { return runCommand(ctx, req) })
		case "whoami":
			answer(func() message { return workerWhoami(req) })
		case "check":
			answer(func() message { return workerCheck(req) })
		case "upload":
			answer(func() message { return workerUpload(socket, user, req) })
		case "download":
			answer(func() message { return workerDownload(socket, user, req) })
		case "terminal":
			answer(func() message { return terms.run(socket, user, req) })
		case "resize":
			terms.resize(req)
		}
	}
}

// runCommand runs one request with its time limit and bounded output, in a
// process group of its own so a timeout ends everything it started.
func runCommand(ctx context.Context, req message) message {
	out := message{Type: "result", ID: req.ID}
	if len(req.Argv) == 0 {
		out.Error = "no command"
		return out
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	if home := os.Getenv("HOME"); home != "" {
		cmd.Dir = home
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	limit := max(req.MaxOutput, 1)
	var stdout, stderr bytes.Buffer
	ow, ew := &limitWriter{w: &stdout, n: limit}, &limitWriter{w: &stderr, n: limit}
	cmd.Stdout, cmd.Stderr = ow, ew
	err := cmd.Run()
	out.Stdout, out.Stderr, out.Truncated = stdout.Bytes(), stderr.Bytes(), ow.truncated || ew.truncated
	var ee *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		out.ExitCode = -1
		out.Error = fmt.Sprintf("the command ran out of its time limit (%s) and was killed", timeout)
	case errors.As(err, &ee):
		out.ExitCode = ee.ExitCode()
	case err != nil:
		out.ExitCode = -1
		out.Error = err.Error()
	}
	return out
}

// Status asks the server on socket for its workers (the service account
// only).
func Status(socket string) ([]WorkerStatus, error) {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("is trellis provider serve running? %w", err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(message{Type: "status"}); err != nil {
		return nil, err
	}
	var m message
	if err := json.NewDecoder(c).Decode(&m); err != nil {
		return nil, err
	}
	if m.Type != "status" {
		return nil, errors.New(m.Error)
	}
	return m.Workers, nil
}
