package provider

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Account is a local account a user maps to.
type Account struct {
	Name     string
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// mapper turns a Trellis uid into a local account name. What it says is
// the site's policy; checkAccount then refuses root, system accounts and
// missing ones, whatever it said.
type mapper func(ctx context.Context, uid string) (string, error)

func newMapper(spec string, timeout time.Duration) (mapper, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "pattern":
		if !strings.Contains(arg, "{uid}") {
			return nil, fmt.Errorf("mapper %q: a pattern names {uid}", spec)
		}
		// What surrounds {uid} must make a login name with any uid: an
		// upper-case letter or a space here would refuse every user later.
		if !domain.LocalAccountPattern.MatchString(strings.ReplaceAll(arg, "{uid}", "x")) {
			return nil, fmt.Errorf("mapper %q: the pattern does not make a login name (lower-case letters, digits, '_' or '-', at most 32)", spec)
		}
		return func(_ context.Context, uid string) (string, error) {
			return strings.ReplaceAll(arg, "{uid}", uid), nil
		}, nil
	case "static":
		if arg == "" || !strings.HasPrefix(arg, "/") {
			return nil, fmt.Errorf("mapper %q: the file is an absolute path", spec)
		}
		return func(_ context.Context, uid string) (string, error) { return staticLookup(arg, uid) }, nil
	case "command":
		if arg == "" || !strings.HasPrefix(arg, "/") {
			return nil, fmt.Errorf("mapper %q: the command is an absolute path", spec)
		}
		return func(ctx context.Context, uid string) (string, error) { return commandLookup(ctx, arg, uid, timeout) }, nil
	}
	return nil, fmt.Errorf("mapper %q: want pattern:…{uid}…, static:FILE or command:PATH", spec)
}

// staticLookup reads FILE, lines "uid account" ('#' starts a comment), on
// every connection, so an edit takes effect without a restart. A file
// that says two things of the user asked about, or a line that is not
// "uid account", is the operator's mistake: refused, never guessed at.
func staticLookup(path, uid string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("static mapper: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	account, at := "", 0
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case len(fields) != 2:
			return "", fmt.Errorf("static mapper: %s:%d: want \"uid account\", got %d fields", path, n, len(fields))
		case fields[0] != uid:
			continue
		case at != 0:
			return "", fmt.Errorf("static mapper: %s:%d: %q is listed again (first at line %d)", path, n, uid, at)
		}
		account, at = fields[1], n
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("static mapper: %w", err)
	}
	if at == 0 {
		return "", fmt.Errorf("static mapper: no account for %q", uid)
	}
	return account, nil
}

// commandLookup runs PATH uid with a time limit and a clean environment; it
// must print one account name and exit 0.
func commandLookup(ctx context.Context, path, uid string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, uid)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TRELLIS_UID=" + uid}
	// In a process group of its own, so a command that hangs is killed
	// with everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	lw := &limitWriter{w: &out, n: 256}
	cmd.Stdout = lw
	err := cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("mapper command timed out after %s", timeout)
	}
	if err != nil {
		return "", fmt.Errorf("mapper command failed: %w", err)
	}
	name := strings.TrimSpace(out.String())
	switch {
	case lw.truncated:
		return "", errors.New("mapper command printed more than 256 bytes")
	case name == "":
		return "", errors.New("mapper command printed no account name")
	case strings.ContainsAny(name, " \t\r\n"):
		return "", errors.New("mapper command printed more than one name")
	}
	return name, nil
}

// checkAccount looks the account up and refuses what no mapping may name:
// a malformed name, a missing account, root, or a uid below minUID.
func checkAccount(name string, minUID int) (*Account, error) {
	if !domain.LocalAccountPattern.MatchString(name) {
		return nil, fmt.Errorf("the mapper named %q, which is not a login name", name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("local account %q does not exist", name)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("local account %q has a non-numeric uid or gid", name)
	}
	if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("local account %q is root: never", name)
	}
	if uid < uint64(minUID) {
		return nil, fmt.Errorf("local account %q (uid %d) is a system account: below the minimum uid %d", name, uid, minUID)
	}
	a := &Account{Name: name, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %q: %w", name, err)
	}
	for _, g := range gids {
		v, err := strconv.ParseUint(g, 10, 32)
		if err != nil || v == 0 {
			continue // never hand out the root group
		}
		a.Groups = append(a.Groups, uint32(v))
	}
	return a, nil
}

// limitWriter keeps the first n bytes and notes whether more came.
type limitWriter struct {
	w         *bytes.Buffer
	n         int
	truncated bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room < len(p) {
		l.truncated = true
		if room > 0 {
			l.w.Write(p[:room])
		}
		return len(p), nil
	}
	return l.w.Write(p)
}
