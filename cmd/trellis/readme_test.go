package main_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourBlock is one fenced shell block of the README's tour.
type tourBlock struct {
	info string // what follows ``` ("sh", or "sh site" for the block that makes local accounts)
	code string
	line int // where it starts in README.md
}

// readmeTour extracts the shell blocks of README.md's "A quick tour"
// section, in order. It refuses a section with an indented code block: a
// command there would be one the test does not run.
func readmeTour(t *testing.T) []tourBlock {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	start := -1
	for i, l := range lines {
		if l == "## A quick tour" {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal(`README.md has no "## A quick tour" section`)
	}
	var blocks []tourBlock
	var cur *tourBlock
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case cur == nil && strings.HasPrefix(l, "## "):
			return blocks
		case cur == nil && strings.HasPrefix(l, "```"):
			info := strings.TrimPrefix(l, "```")
			if info != "sh" && info != "sh site" {
				t.Fatalf("README.md:%d: the tour's code blocks are ```sh (or ```sh site), not %q", i+1, l)
			}
			cur = &tourBlock{info: info, line: i + 1}
		case cur != nil && l == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += l + "\n"
		case strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t"):
			t.Fatalf("README.md:%d: an indented code block in the tour, which the test would not run: fence it as ```sh", i+1)
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unterminated code block", cur.line)
	}
	return blocks
}

// TestReadmeTour runs the shell blocks of README.md's tour verbatim, in
// order, in one bash with -e and pipefail, as someone pasting them on a
// fresh machine would: a fresh directory holding the binary, a fresh home,
// no server running. Only the address differs (TRELLIS_LISTEN and
// TRELLIS_SERVER name a free port), which the tour reads from the
// environment. The block that makes local accounts runs only when
// TRELLIS_TEST_README_SITE=1 and the test runs as root.
func TestReadmeTour(t *testing.T) {
	blocks := readmeTour(t)
	if len(blocks) < 5 {
		t.Fatalf("found %d shell blocks in the tour; the extraction is broken", len(blocks))
	}
	// The site block adds accounts to the machine: only when asked, and
	// the test removes those it added.
	// In CI (as root) it always runs: the tour must not drift there either.
	site := (os.Getenv("TRELLIS_TEST_README_SITE") == "1" || os.Getenv("CI") == "true") && os.Geteuid() == 0
	if site {
		for _, name := range []string{"tour_alice", "trellis-site"} {
			if _, err := user.Lookup(name); err == nil {
				continue // the machine's own
			}
			t.Cleanup(func() {
				if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
					t.Logf("userdel %s: %v: %s", name, err, out)
				}
			})
		}
	}
	for _, tool := range []string{"bash", "curl", "ssh-keygen", "openssl", "awk", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the tour needs %s (scripts/test installs it): %v", tool, err)
			}
			t.Skipf("the tour needs %s: %v", tool, err)
		}
	}
	// The script's background jobs (the server, a watcher) end with it.
	script := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n"
	ran := 0
	for _, b := range blocks {
		if b.info == "sh site" && !site {
			t.Logf("README.md:%d: the site block runs only as root with TRELLIS_TEST_README_SITE=1", b.line)
			continue
		}
		script += "# README.md:" + strconv.Itoa(b.line) + "\n" + b.code
		ran++
	}

	dir := t.TempDir()
	if site {
		// The site's accounts reach the tour's directory through these.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	home := filepath.Join(dir, "home")
	work := filepath.Join(dir, "work")
	for _, d := range []string{home, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(binary, filepath.Join(work, "trellis")); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := []string{"HOME=" + home, "TMPDIR=" + dir, "TRELLIS_LISTEN=" + addr, "TRELLIS_SERVER=http://" + addr}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "HOME", name == "TMPDIR", name == "XDG_CONFIG_HOME", strings.HasPrefix(name, "TRELLIS_"):
			continue // the fresh machine has none of these
		}
		env = append(env, kv)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = work, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On timeout the whole group goes, the server with it.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		t.Fatalf("the tour failed (%v) after %d blocks' worth of commands; its output:\n%s", err, ran, out.String())
	}
	// A few answers show that the tour did what it says.
	wants := []string{
		"Created administrator ops",
		"Approved project netsec",
		"Nested project netlab in netsec",
		"allowed",
		"Released realization",
		"Registered service runner",
		`"uid":"bob"`,
		"Backed up the embedded (SQLite) store",
	}
	if site {
		wants = append(wants, "\ntour_alice\n")
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the tour's output lacks %q:\n%s", want, out.String())
		}
	}
}
