package provider

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mapUser is what the site does on a connection: the mapper names an
// account, checkAccount decides whether it may be used.
func mapUser(t *testing.T, m mapper, uid string, minUID int) (string, error) {
	t.Helper()
	name, err := m(context.Background(), uid)
	if err != nil {
		return "", err
	}
	if _, err := checkAccount(name, minUID); err != nil {
		return name, err
	}
	return name, nil
}

func wantErr(t *testing.T, what string, err error, words string) {
	t.Helper()
	switch {
	case words == "" && err != nil:
		t.Errorf("%s: %v", what, err)
	case words != "" && err == nil:
		t.Errorf("%s: accepted, want refused saying %q", what, words)
	case words != "" && !strings.Contains(err.Error(), words):
		t.Errorf("%s: %v; want it to say %q", what, err, words)
	}
}

func TestPatternMapper(t *testing.T) {
	for _, tc := range []struct {
		spec, uid, want string
		refused         string // at load, when the spec is bad
	}{
		{spec: "pattern:tb_{uid}", uid: "alice", want: "tb_alice"},
		{spec: "pattern:{uid}", uid: "bob", want: "bob"},
		{spec: "pattern:{uid}-lab", uid: "bob", want: "bob-lab"},
		{spec: "pattern:tb_", refused: "names {uid}"},
		{spec: "pattern:", refused: "names {uid}"},
		{spec: "pattern:TB_{uid}", refused: "login name"},
		{spec: "pattern:tb {uid}", refused: "login name"},
		{spec: "pattern:../{uid}", refused: "login name"},
		{spec: "pattern:" + strings.Repeat("a", 32) + "{uid}", refused: "login name"},
		{spec: "tb_{uid}", refused: "want pattern"},
		{spec: "regex:tb_{uid}", refused: "want pattern"},
		{spec: "static:relative/file", refused: "absolute path"},
		{spec: "command:map-user", refused: "absolute path"},
		{spec: "", refused: "want pattern"},
	} {
		m, err := newMapper(tc.spec, time.Second)
		wantErr(t, fmt.Sprintf("newMapper(%q)", tc.spec), err, tc.refused)
		if err != nil || tc.refused != "" {
			continue
		}
		got, err := m(context.Background(), tc.uid)
		if err != nil || got != tc.want {
			t.Errorf("%s maps %s to %q, %v; want %q", tc.spec, tc.uid, got, err, tc.want)
		}
	}
}

// TestLoadConfigRefusesBadMapper: a mapper that could never map anyone
// stops the server at start, not at the first connection.
func TestLoadConfigRefusesBadMapper(t *testing.T) {
	for spec, refused := range map[string]string{
		"pattern:tb_{uid}":   "",
		"pattern:tb_":        "names {uid}",
		"pattern:Tb_{uid}":   "login name",
		"command:./map":      "absolute path",
		"static:/etc/tb-map": "",
		"nonsense":           "want pattern",
	} {
		dir := t.TempDir()
		cfg := Config{Name: "site1", Central: "https://c.example.org", Issuer: "https://c.example.org", Audience: "provider:site1", CentreAudience: "trellis", Mapper: spec}
		if err := cfg.Save(dir); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(dir)
		wantErr(t, "LoadConfig with mapper "+spec, err, refused)
	}
}

func TestStaticMapper(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", `# Trellis uid -> local account
alice tb_alice   # the first

	bob	tb_bob
# carol left
   # an indented comment
dave dave2
`)
	dup := write("dup", "alice tb_alice\nbob tb_bob\nalice tb_other\n")
	bad := write("bad", "alice tb_alice\nbob tb_bob extra\n")
	for _, tc := range []struct {
		file, uid, want, refused string
	}{
		{file: good, uid: "alice", want: "tb_alice"},
		{file: good, uid: "bob", want: "tb_bob"}, // tabs and blank lines
		{file: good, uid: "dave", want: "dave2"},
		{file: good, uid: "carol", refused: `no account for "carol"`}, // commented out
		{file: good, uid: "#", refused: "no account"},
		{file: good, uid: "tb_alice", refused: "no account"}, // an account is not a uid
		{file: dup, uid: "alice", refused: "listed again (first at line 1)"},
		// A duplicate is ambiguous for that user, not for the others.
		{file: dup, uid: "bob", want: "tb_bob"},
		{file: bad, uid: "alice", refused: ":2: want \"uid account\""},
		{file: filepath.Join(dir, "missing"), uid: "alice", refused: "no such file"},
	} {
		m, err := newMapper("static:"+tc.file, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m(context.Background(), tc.uid)
		wantErr(t, fmt.Sprintf("%s in %s", tc.uid, filepath.Base(tc.file)), err, tc.refused)
		if err == nil && got != tc.want {
			t.Errorf("%s in %s: %q, want %q", tc.uid, filepath.Base(tc.file), got, tc.want)
		}
	}
	// An edit takes effect without a restart.
	m, _ := newMapper("static:"+good, time.Second)
	write("good", "alice tb_alice2\n")
	if got, err := m(context.Background(), "alice"); err != nil || got != "tb_alice2" {
		t.Errorf("after an edit: %q, %v", got, err)
	}
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommandMapper(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env.out")
	t.Setenv("TRELLIS_SECRET_OF_THE_SERVER", "leaked")
	for _, tc := range []struct {
		name, body, want, refused string
	}{
		{name: "prints", body: `echo "tb_$1"`, want: "tb_alice"},
		{name: "surrounding-space", body: `printf '  tb_%s  \n\n' "$1"`, want: "tb_alice"},
		{name: "env", body: `env > ` + envFile + `; echo "tb_$TRELLIS_UID"`, want: "tb_alice"},
		{name: "two-lines", body: "echo tb_alice; echo tb_bob", refused: "more than one name"},
		{name: "two-words", body: "echo tb_alice tb_bob", refused: "more than one name"},
		{name: "empty", body: "exit 0", refused: "no account name"},
		{name: "blank", body: "echo; echo", refused: "no account name"},
		{name: "garbage", body: `printf 'R00t!\n'`, refused: "not a login name"},
		{name: "flood", body: `head -c 4096 /dev/zero | tr '\0' a`, refused: "more than 256 bytes"},
		{name: "fails", body: "echo tb_alice; exit 3", refused: "exit status 3"},
		{name: "root", body: "echo root", refused: "is root"},
	} {
		m, err := newMapper("command:"+script(t, dir, tc.name, tc.body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m(context.Background(), "alice")
		if err == nil && tc.refused != "" {
			// The command's answer is the site's policy; the account
			// check refuses what no policy may name.
			_, err = checkAccount(got, 1000)
		}
		wantErr(t, tc.name, err, tc.refused)
		if tc.refused == "" && got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// The command saw a clean environment: a PATH and the uid, nothing of
	// the server's.
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, _, _ := strings.Cut(l, "=")
		switch k {
		case "PWD", "SHLVL", "_": // the shell's own
			continue
		}
		vars = append(vars, l)
	}
	if strings.Join(vars, " ") != "PATH=/usr/sbin:/usr/bin:/sbin:/bin TRELLIS_UID=alice" && strings.Join(vars, " ") != "TRELLIS_UID=alice PATH=/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("the mapper command's environment: %q", vars)
	}
}

// TestCommandMapperHangs: a command that outlives mapper_timeout is
// refused at the timeout and killed with what it started.
func TestCommandMapperHangs(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The child holds the output pipe open, as a careless script's would.
	cmd := script(t, dir, "hang", `sleep 60 & echo $! > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; wait`)
	m, err := newMapper("command:"+cmd, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = m(context.Background(), "alice")
	wantErr(t, "a hanging mapper", err, "timed out after 300ms")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Killed: gone, or a zombie waiting for a reaper (an unreaped orphan
	// in a container whose init does not reap).
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the mapper's child %d still runs after the refusal", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling another process's end; nothing to wait on
	}
}

// alive reports whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...; comm may hold spaces, so read after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestCheckAccount(t *testing.T) {
	type row struct{ name, refused string }
	rows := []row{
		{"root", "is root"},
		{"daemon", "system account"},
		{"tb_no_such_account", "does not exist"},
		{"Bob", "not a login name"},
		{"bob smith", "not a login name"},
		{"../etc/passwd", "not a login name"},
		{"-rf", "not a login name"},
		{"", "not a login name"},
		{strings.Repeat("a", 33), "not a login name"},
	}
	if u, err := user.Lookup("nobody"); err == nil && u.Uid != "0" {
		rows = append(rows, row{"nobody", ""}) // uid 65534: an ordinary account as far as min_uid goes
	}
	for _, r := range rows {
		if r.name == "daemon" {
			if _, err := user.Lookup("daemon"); err != nil {
				continue
			}
		}
		a, err := checkAccount(r.name, 1000)
		wantErr(t, "account "+r.name, err, r.refused)
		if err == nil && (a.Name != r.name || a.UID < 1000) {
			t.Errorf("account %s: %+v", r.name, a)
		}
	}
	// min_uid decides what a system account is.
	if _, err := checkAccount("daemon", 1); err != nil && strings.Contains(err.Error(), "does not exist") {
		t.Skip("no daemon account")
	} else if err != nil {
		t.Errorf("daemon with min_uid 1: %v", err)
	}
}
