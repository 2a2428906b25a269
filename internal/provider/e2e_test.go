package provider_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/provider"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
)

// requireRoot skips without root, except in CI, where these tests must
// run: they create OS accounts and start processes as them.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (it creates OS accounts with useradd and runs processes as them), and CI=true")
	}
	t.Skip("needs root: it creates OS accounts with useradd and runs the site's server and workers as them (runs in CI)")
}

// world is a centre, a site and the OS accounts of one test.
type world struct {
	t       testing.TB
	dir     string // 0755, reachable by every account
	bin     string
	centre  string
	admin   string // the admin's access token
	siteURL string
	siteDir string
	svc     *account
	tokens  map[string]string // Trellis uid -> access token
	// stopSite stops the site's server (it is not started again).
	stopSite func()
}

type account struct {
	name     string
	uid, gid uint32
}

func lookup(t testing.TB, name string) *account {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &account{name: name, uid: uint32(uid), gid: uint32(gid)}
}

// addAccount creates an OS account for the test and removes it after.
func addAccount(t testing.TB, name string, system bool) *account {
	t.Helper()
	_ = exec.Command("userdel", "-r", name).Run() // a leftover of a crashed run
	args := []string{"-m", "-s", "/bin/sh", name}
	if system {
		args = []string{"-r", "-M", "-s", "/usr/sbin/nologin", name}
	}
	if out, err := exec.Command("useradd", args...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("pkill", "-KILL", "-u", name).Run()
		_ = exec.Command("userdel", "-r", name).Run()
	})
	return lookup(t, name)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs a long-lived process for the test, stopped at cleanup or
// when the returned function is called.
func start(t testing.TB, cmd *exec.Cmd) (stop func()) {
	t.Helper()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s:\n%s", cmd.Args[1:3], logs.String())
		}
	})
	return stop
}

// waitHTTP waits until url answers 200.
func waitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a process's readiness; nothing to wait on
	}
}

// run runs the trellis binary, as acct when set, and returns its output.
func (w *world) run(acct *account, env []string, stdin string, args ...string) (string, error) {
	cmd := exec.Command(w.bin, args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + w.dir}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	if acct != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: acct.uid, Gid: acct.gid}}
		cmd.Dir = w.dir
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (w *world) must(acct *account, env []string, args ...string) string {
	w.t.Helper()
	out, err := w.run(acct, env, "", args...)
	if err != nil {
		w.t.Fatalf("trellis %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// api calls the centre's API with JSON, as any client may.
func (w *world) api(op, tok string, in, out any) error {
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, w.centre+"/trellis.v1."+op, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", op, resp.Status, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (w *world) mustAPI(op, tok string, in, out any) {
	w.t.Helper()
	if err := w.api(op, tok, in, out); err != nil {
		w.t.Fatal(err)
	}
}

const testPassword = "correct horse battery staple"

var confirmToken = regexp.MustCompile(`user confirm (\S+)`)

// addUser registers a Trellis user, confirms it and logs it in. It is
// powerless until a project vouches for it (vet).
func (w *world) addUser(uid string) {
	w.t.Helper()
	email := uid + "@uni.example.edu"
	w.mustAPI("Users/Register", "", map[string]any{"uid": uid, "email": email, "password": testPassword, "profile": map[string]string{"name": uid, "phone": "+44 1865 270000"}}, nil)
	var outbox struct{ Messages []struct{ Body string } }
	w.mustAPI("Admin/ListOutbox", w.admin, map[string]any{"to": email}, &outbox)
	if len(outbox.Messages) == 0 {
		w.t.Fatalf("no confirmation mail for %s", uid)
	}
	m := confirmToken.FindStringSubmatch(outbox.Messages[0].Body)
	if m == nil {
		w.t.Fatalf("no token in %q", outbox.Messages[0].Body)
	}
	w.mustAPI("Users/ConfirmEmail", "", map[string]any{"token": m[1]}, nil)
	w.tokens[uid] = w.login(uid)
}

// vet makes the users powerful as researchers become: owner asks for a
// vetting project, an admin approves it, the others ask to join and the
// owner accepts each request its notification carries.
func (w *world) vet(project, owner string, members ...string) {
	w.t.Helper()
	var req struct{ RequestId string }
	w.mustAPI("Projects/RequestProject", w.tokens[owner], map[string]any{"name": project, "description": "research at the site"}, &req)
	if req.RequestId == "" {
		w.t.Fatalf("project %s did not wait for an admin's approval", project)
	}
	w.mustAPI("Projects/ApproveProject", w.admin, map[string]any{"name": project}, nil)
	for _, uid := range members {
		var join struct{ RequestId string }
		w.mustAPI("Projects/JoinProject", w.tokens[uid], map[string]any{"name": project}, &join)
		if join.RequestId == "" {
			w.t.Fatalf("%s joined %s without the owner's consent", uid, project)
		}
		w.mustAPI("Notifications/AcceptRequest", w.tokens[owner], map[string]any{"id": join.RequestId}, nil)
	}
}

func (w *world) login(uid string) string {
	w.t.Helper()
	var resp struct{ Tokens struct{ AccessToken string } }
	w.mustAPI("Auth/Login", "", map[string]any{"uid": uid, "password": testPassword}, &resp)
	return resp.Tokens.AccessToken
}

// as is the environment of uid's client.
func (w *world) as(uid string) []string {
	return []string{"TRELLIS_SERVER=" + w.centre, "TRELLIS_TOKEN=" + w.tokens[uid], "TRELLIS_CONFIG_DIR=" + filepath.Join(w.dir, "client-"+uid)}
}

// newWorld builds trellis, starts a centre and a site served by an
// unprivileged service account with the given launcher and mapper.
func newWorld(t testing.TB, launcher, mapper string, configure ...func(*provider.Config)) *world {
	requireRoot(t)
	dir, err := os.MkdirTemp("", "trellis-provider-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: dir, bin: filepath.Join(dir, "trellis"), tokens: map[string]string{}}
	build := exec.Command("go", "build", "-o", w.bin, "github.com/trellis-testbed/trellis/cmd/trellis")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	_ = os.Chmod(w.bin, 0o755)

	// The centre.
	centreDir := filepath.Join(dir, "centre")
	if out, err := w.run(nil, nil, testPassword+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", centreDir); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	w.centre = "http://" + addr
	start(t, exec.Command(w.bin, "serve", "--data-dir", centreDir, "--listen", addr))
	waitHTTP(t, w.centre+"/readyz")
	w.admin = w.login("ops")

	// The site, run by a service account.
	w.svc = addAccount(t, "tbsite", true)
	siteAddr := freeAddr(t)
	w.siteURL = "http://" + siteAddr
	w.siteDir = filepath.Join(dir, "site")
	if err := os.Mkdir(w.siteDir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(w.siteDir, int(w.svc.uid), int(w.svc.gid)); err != nil {
		t.Fatal(err)
	}
	regToken := strings.TrimSpace(w.must(nil, []string{"TRELLIS_TOKEN=" + w.admin, "TRELLIS_SERVER=" + w.centre, "TRELLIS_CONFIG_DIR=" + filepath.Join(dir, "client-ops")},
		"admin", "provider", "add", "site1", "--url", w.siteURL))
	regToken = strings.Fields(regToken)[0]
	w.must(w.svc, nil, "provider", "init", "--central", w.centre, "--token", regToken, "--data-dir", w.siteDir,
		"--listen", siteAddr, "--mapper", mapper, "--launcher", launcher)
	// The token worked once.
	if out, err := w.run(w.svc, nil, "", "provider", "init", "--central", w.centre, "--token", regToken, "--data-dir", filepath.Join(dir, "again")); err == nil {
		t.Fatalf("a registration token worked twice: %s", out)
	}
	if len(configure) > 0 {
		cfg, err := provider.LoadConfig(w.siteDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range configure {
			f(cfg)
		}
		if err := cfg.Save(w.siteDir); err != nil {
			t.Fatal(err)
		}
	}
	serve := exec.Command(w.bin, "provider", "serve", "--data-dir", w.siteDir)
	serve.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	serve.Dir = w.siteDir
	serve.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: w.svc.uid, Gid: w.svc.gid}}
	if launcher == "setuid" {
		// What the systemd unit gives it: CAP_SETUID and CAP_SETGID only.
		serve.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SETUID, unix.CAP_SETGID}
	}
	w.stopSite = start(t, serve)
	waitHTTP(t, w.siteURL+"/healthz")
	return w
}

// with is w for a subtest: failures end the subtest.
func (w *world) with(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

// siteToken asks the centre for uid's token for site1's requests.
func (w *world) siteToken(uid string) string {
	w.t.Helper()
	var resp struct{ Token string }
	w.mustAPI("Providers/CreateSiteToken", w.tokens[uid], map[string]any{"provider": "site1"}, &resp)
	return resp.Token
}

// post sends a request to the site and returns its status and body.
func (w *world) post(path, tok, sig string, body []byte) (int, string) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.siteURL+path, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if sig != "" {
		req.Header.Set(usersig.Header, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// forward sends a request signed with uid's key to site1 through the
// centre and returns the site's status and body.
func (w *world) forward(uid, target string, body []byte) (int, string) {
	w.t.Helper()
	sig, err := usersig.Sign(w.userKey(uid), uid, "site1", "POST", target, body, time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	var resp struct {
		Status int
		Body   []byte
	}
	w.mustAPI("Providers/Forward", w.tokens[uid], map[string]any{
		"provider": "site1", "method": "POST", "target": target, "body": b64(body), "userSignature": sig,
	}, &resp)
	return resp.Status, string(resp.Body)
}

func (w *world) userKey(uid string) ed25519.PrivateKey {
	w.t.Helper()
	k, err := provider.LoadKey(filepath.Join(w.dir, "client-"+uid, "providers", "site1.key"))
	if err != nil {
		w.t.Fatal(err)
	}
	return k
}

func (w *world) status() []provider.WorkerStatus {
	w.t.Helper()
	out := w.must(w.svc, nil, "provider", "status", "--data-dir", w.siteDir, "--format", "json")
	var ws []provider.WorkerStatus
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		w.t.Fatalf("status: %v: %s", err, out)
	}
	return ws
}

func wantStatus(t *testing.T, what string, got int, body string, want int, words ...string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: status %d (%s), want %d", what, got, body, want)
		return
	}
	for _, wd := range words {
		if !strings.Contains(body, wd) {
			t.Errorf("%s: %q does not say %q", what, body, wd)
		}
	}
}

func TestSiteSetuidLauncher(t *testing.T) {
	testSite(t, "setuid")
}

func TestSiteSudoLauncher(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("sudo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sudo is not installed (scripts/test installs it)")
		}
		t.Skip("sudo is not installed (scripts/test installs the Debian package)")
	}
	testSite(t, "sudo")
}

func testSite(t *testing.T, launcher string) {
	mapFile := filepath.Join(os.TempDir(), fmt.Sprintf("trellis-e2e-map-%d", os.Getpid()))
	w := newWorld(t, launcher, "static:"+mapFile)
	t.Cleanup(func() { os.Remove(mapFile) })
	addAccount(t, "tb_alice", false)
	addAccount(t, "tb_bob", false)
	addAccount(t, "tbsys", true)
	if err := os.WriteFile(mapFile, []byte("alice tb_alice\nbob tb_bob\ncarol root\ndave tbsys\nerin tb_nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if launcher == "sudo" {
		rule := w.must(nil, nil, "provider", "sudoers", "--data-dir", w.siteDir, "--service-account", "tbsite")
		path := "/etc/sudoers.d/trellis-e2e"
		if err := os.WriteFile(path, []byte(rule), 0o440); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
		if out, err := exec.Command("visudo", "-cf", path).CombinedOutput(); err != nil {
			t.Fatalf("the printed sudoers rule does not parse: %v: %s\n%s", err, out, rule)
		}
	}
	for _, uid := range []string{"alice", "bob", "carol", "dave", "erin"} {
		w.addUser(uid)
	}
	// A user no project vouches for may not connect to a site.
	if err := w.api("Providers/CreateConnectionTicket", w.tokens["alice"], map[string]any{"provider": "site1"}, nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a powerless user got a connection ticket: %v", err)
	}
	w.vet("sitelab", "alice", "bob", "carol", "dave", "erin")

	t.Run("TwoUsersConnectAndExecAsThemselves", func(t *testing.T) {
		w := w.with(t)
		for _, uid := range []string{"alice", "bob"} {
			out := w.must(nil, w.as(uid), "provider", "connect", "site1")
			if !strings.Contains(out, "tb_"+uid) {
				t.Errorf("connect %s: %s", uid, out)
			}
		}
		for _, uid := range []string{"alice", "bob"} {
			if out := w.must(nil, w.as(uid), "provider", "exec", "site1", "--", "id", "-un"); strings.TrimSpace(out) != "tb_"+uid {
				t.Errorf("exec as %s printed %q, want tb_%s", uid, out, uid)
			}
		}
		if out := w.must(nil, w.as("bob"), "provider", "whoami", "site1"); !strings.Contains(out, "local account tb_bob") {
			t.Errorf("whoami as bob: %s", out)
		}
		out := w.must(nil, w.as("alice"), "provider", "list")
		if !strings.Contains(out, "site1") || !strings.Contains(out, "tb_alice") {
			t.Errorf("provider list: %s", out)
		}
		// A failing command's status comes back.
		if _, err := w.run(nil, w.as("alice"), "", "provider", "exec", "site1", "--", "sh", "-c", "exit 7"); err == nil || err.(*exec.ExitError).ExitCode() != 7 {
			t.Errorf("exit status: %v", err)
		}
	})

	t.Run("CentreTokensRefused", func(t *testing.T) {
		w := w.with(t)
		body := []byte(`{"argv":["id"]}`)
		sig, _ := usersig.Sign(w.userKey("alice"), "alice", "site1", "POST", "/exec", body, time.Now())
		_, foreign, _ := ed25519.GenerateKey(nil)
		now := time.Now()
		forge := func(exp time.Time, aud string) string {
			raw, err := token.Sign(staticSigner{kid: "forged", key: foreign}, token.Claims{Issuer: w.centre, Subject: "alice", Audience: []string{aud}, IssuedAt: now.Add(-time.Hour), Expiry: exp, Purpose: "request"})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		var ticket struct{ Ticket string }
		w.mustAPI("Providers/CreateConnectionTicket", w.tokens["alice"], map[string]any{"provider": "site1"}, &ticket)
		for name, tok := range map[string]string{
			"unsigned (foreign key)": forge(now.Add(time.Minute), "provider:site1"),
			"expired":                forge(now.Add(-time.Minute), "provider:site1"),
			"wrong audience":         w.tokens["alice"], // the user's own access token, for the centre
			"a connection ticket":    ticket.Ticket,     // genuine, but for connecting only
			"none":                   "",
		} {
			code, b := w.post("/exec", tok, sig, body)
			wantStatus(t, name, code, b, http.StatusUnauthorized)
		}
	})

	t.Run("CompromisedCentreCannotForgeTheUser", func(t *testing.T) {
		w := w.with(t)
		body := []byte(`{"argv":["id","-un"]}`)
		_, otherKey, _ := ed25519.GenerateKey(nil)
		wrongSig, _ := usersig.Sign(otherKey, "alice", "site1", "POST", "/exec", body, time.Now())
		otherBody, _ := usersig.Sign(w.userKey("alice"), "alice", "site1", "POST", "/exec", []byte(`{"argv":["true"]}`), time.Now())
		bobsSig, _ := usersig.Sign(w.userKey("bob"), "bob", "site1", "POST", "/exec", body, time.Now())
		stale, _ := usersig.Sign(w.userKey("alice"), "alice", "site1", "POST", "/exec", body, time.Now().Add(-2*time.Minute))
		for name, sig := range map[string]string{
			"no signature":            "",
			"another key's signature": wrongSig,
			"signed another body":     otherBody,
			"bob's signature":         bobsSig,
			"stale signature":         stale,
		} {
			code, b := w.post("/exec", w.siteToken("alice"), sig, body)
			wantStatus(t, name, code, b, http.StatusForbidden, "signature")
		}
	})

	t.Run("ReplayedSignatureRefused", func(t *testing.T) {
		w := w.with(t)
		body := []byte(`{"argv":["id","-un"]}`)
		tok := w.siteToken("alice")
		sig, _ := usersig.Sign(w.userKey("alice"), "alice", "site1", "POST", "/exec", body, time.Now())
		code, b := w.post("/exec", tok, sig, body)
		wantStatus(t, "first use", code, b, http.StatusOK, `"exit_code":0`, base64.StdEncoding.EncodeToString([]byte("tb_alice\n")))
		code, b = w.post("/exec", tok, sig, body)
		wantStatus(t, "replay", code, b, http.StatusForbidden, "replayed")
	})

	t.Run("ForwardedThroughTheCentre", func(t *testing.T) {
		w := w.with(t)
		// The CLI goes through the centre by default, straight with --direct.
		for _, args := range [][]string{{"exec", "site1"}, {"exec", "--direct", "site1"}} {
			out := w.must(nil, w.as("alice"), append(append([]string{"provider"}, args...), "--", "id", "-un")...)
			if strings.TrimSpace(out) != "tb_alice" {
				t.Errorf("%v printed %q", args, out)
			}
		}
		body := []byte(`{"argv":["id","-un"]}`)
		forward := func(target string, sent []byte, sig string) (int, string) {
			var resp struct {
				Status int
				Body   []byte
			}
			w.mustAPI("Providers/Forward", w.tokens["alice"], map[string]any{
				"provider": "site1", "method": "POST", "target": target, "body": b64(sent), "userSignature": sig,
			}, &resp)
			return resp.Status, string(resp.Body)
		}
		sign := func(target string, b []byte) string {
			sig, err := usersig.Sign(w.userKey("alice"), "alice", "site1", "POST", target, b, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}
		code, b := forward("/exec", body, sign("/exec", body))
		wantStatus(t, "forwarded as signed", code, b, http.StatusOK, `"exit_code":0`, b64([]byte("tb_alice\n")))
		// A compromised centre changing what the user signed: the site
		// refuses, whatever token the centre attached.
		code, b = forward("/exec", []byte(`{"argv":["touch","pwned"]}`), sign("/exec", body))
		wantStatus(t, "body altered", code, b, http.StatusForbidden, "signed another body")
		code, b = forward("/disconnect", []byte(`{}`), sign("/exec", []byte(`{}`)))
		wantStatus(t, "target altered", code, b, http.StatusForbidden, "another method or target")
		code, b = forward("/exec", body, "")
		wantStatus(t, "signature dropped", code, b, http.StatusForbidden, "no user signature")
		// A disabled site gets nothing forwarded, at once; enabled again,
		// it does.
		w.mustAPI("Providers/SetProviderState", w.admin, map[string]any{"name": "site1", "state": "PROVIDER_STATE_DISABLED"}, nil)
		err := w.api("Providers/Forward", w.tokens["alice"], map[string]any{"provider": "site1", "method": "POST", "target": "/exec", "body": b64(body), "userSignature": sign("/exec", body)}, nil)
		if err == nil || !strings.Contains(err.Error(), "disabled") {
			t.Errorf("forwarding to a disabled site: %v", err)
		}
		w.mustAPI("Providers/SetProviderState", w.admin, map[string]any{"name": "site1", "state": "PROVIDER_STATE_ACTIVE"}, nil)
		code, b = forward("/exec", body, sign("/exec", body))
		wantStatus(t, "enabled again", code, b, http.StatusOK)
		// Carol is not connected: the centre refuses to forward at all.
		err = w.api("Providers/Forward", w.tokens["carol"], map[string]any{"provider": "site1", "method": "POST", "target": "/exec", "body": b64(body)}, nil)
		if err == nil || !strings.Contains(err.Error(), "not connected") {
			t.Errorf("forwarding for a user not connected: %v", err)
		}
	})

	t.Run("TicketUsedTwiceRefused", func(t *testing.T) {
		w := w.with(t)
		var ticket struct{ Ticket string }
		w.mustAPI("Providers/CreateConnectionTicket", w.tokens["bob"], map[string]any{"provider": "site1"}, &ticket)
		pub, _, _ := ed25519.GenerateKey(nil)
		body, _ := json.Marshal(provider.ConnectRequest{Ticket: ticket.Ticket, UserPublicKey: encode(pub)})
		code, b := w.post("/connect", "", "", body)
		wantStatus(t, "first use", code, b, http.StatusOK, "tb_bob")
		code, b = w.post("/connect", "", "", body)
		wantStatus(t, "second use", code, b, http.StatusConflict, "used already")
		// Bob connected again with a key of this test's: give him back his
		// client's, for the tests after.
		w.must(nil, w.as("bob"), "provider", "connect", "site1")
	})

	t.Run("MapperRefusesRootSystemAndMissingAccounts", func(t *testing.T) {
		w := w.with(t)
		for uid, why := range map[string]string{"carol": "root", "dave": "system account", "erin": "does not exist"} {
			out, err := w.run(nil, w.as(uid), "", "provider", "connect", "site1")
			if err == nil || !strings.Contains(out, why) {
				t.Errorf("connect %s: %v, %s; want refused saying %q", uid, err, out, why)
			}
		}
		// Nothing half-done: the centre recorded no connection.
		var conns struct{ Connections []any }
		w.mustAPI("Providers/ListConnections", w.tokens["carol"], map[string]any{}, &conns)
		if len(conns.Connections) != 0 {
			t.Errorf("carol's connections after a refusal: %v", conns.Connections)
		}
	})

	t.Run("SocketPeerNotTheMappedUserRefused", func(t *testing.T) {
		w := w.with(t)
		bob := lookup(t, "tb_bob")
		sock := filepath.Join(w.siteDir, "run", provider.SocketName)
		out, err := w.run(bob, nil, "", "provider", "worker", "--socket", sock, "--user", "alice", "--nonce", "guess")
		if err == nil || !strings.Contains(out, "refused") {
			t.Errorf("a worker of tb_bob claiming alice: %v, %s", err, out)
		}
	})

	t.Run("WorkerKilledMidRequest", func(t *testing.T) {
		w := w.with(t)
		done := make(chan string, 1)
		go func() {
			out, _ := w.run(nil, w.as("alice"), "", "provider", "exec", "site1", "--", "sleep", "60")
			done <- out
		}()
		var pid int
		deadline := time.Now().Add(30 * time.Second)
		for pid == 0 {
			for _, ws := range w.status() {
				if ws.User == "alice" && ws.InFlight > 0 {
					pid = ws.PID
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("alice's request never reached her worker")
			}
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-done:
			if !strings.Contains(out, "worker of alice") {
				t.Errorf("the request held by the killed worker: %s", out)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the request held by a killed worker hung")
		}
		if out := w.must(nil, w.as("alice"), "provider", "exec", "site1", "--", "id", "-un"); strings.TrimSpace(out) != "tb_alice" {
			t.Errorf("after the restart: %q", out)
		}
		for _, ws := range w.status() {
			if ws.User == "alice" && (ws.Restarts != 1 || ws.PID == pid) {
				t.Errorf("alice's worker after a crash: %+v (killed pid %d)", ws, pid)
			}
		}
	})

	t.Run("FileTransfers", func(t *testing.T) {
		w := w.with(t)
		// Each user's file lands in their own home, owned by their own
		// account, 0600; one through the centre, one straight.
		for _, tc := range []struct{ uid, via string }{{"alice", ""}, {"bob", "--direct"}} {
			local := filepath.Join(w.dir, tc.uid+"-up.txt")
			content := "notes of " + tc.uid + "\n" + strings.Repeat("x", 200_000)
			if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"provider", "upload"}
			if tc.via != "" {
				args = append(args, tc.via)
			}
			w.must(nil, w.as(tc.uid), append(args, "site1", local, "notes.txt")...)
			acct := lookup(t, "tb_"+tc.uid)
			remote := filepath.Join("/home", acct.name, "notes.txt")
			fi, err := os.Stat(remote)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != acct.uid || st.Gid != acct.gid || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: owner %d:%d mode %v, want %d:%d 0600", remote, st.Uid, st.Gid, fi.Mode().Perm(), acct.uid, acct.gid)
			}
			if b, _ := os.ReadFile(remote); string(b) != content {
				t.Errorf("%s holds %d bytes, not what %s uploaded", remote, len(b), tc.uid)
			}
			back := filepath.Join(w.dir, tc.uid+"-down.txt")
			w.must(nil, w.as(tc.uid), "provider", "download", "site1", "notes.txt", back)
			if b, _ := os.ReadFile(back); string(b) != content {
				t.Errorf("%s's download holds %d bytes, not the file", tc.uid, len(b))
			}
		}

		token := func(uid, direction, path string) (int, provider.TokenResponse, string) {
			code, b := w.forward(uid, "/transfers", []byte(fmt.Sprintf(`{"direction":%q,"path":%q}`, direction, path)))
			var tok provider.TokenResponse
			_ = json.Unmarshal([]byte(b), &tok)
			return code, tok, b
		}
		get := func(tok provider.TokenResponse) (int, string) {
			resp, err := http.Get(w.siteURL + tok.URLPath)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		put := func(tok provider.TokenResponse, body string) (int, string) {
			req, _ := http.NewRequest(http.MethodPut, w.siteURL+tok.URLPath, strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}

		// A token works once.
		code, tok, b := token("alice", "download", "notes.txt")
		wantStatus(t, "download token", code, b, http.StatusOK)
		code, b = get(tok)
		wantStatus(t, "first download", code, b, http.StatusOK, "notes of alice")
		code, b = get(tok)
		wantStatus(t, "token reused", code, b, http.StatusUnauthorized, "used already")
		// A download token does not upload.
		_, tok, _ = token("alice", "download", "notes.txt")
		code, b = put(tok, "overwritten")
		wantStatus(t, "download token used to upload", code, b, http.StatusUnauthorized)

		// Paths out of the home are refused, by name or through a
		// symbolic link the account made.
		w.must(nil, w.as("alice"), "provider", "exec", "site1", "--", "sh", "-c", "ln -sfn /home/tb_bob bobhome && ln -sf /etc/passwd pw && ln -sfn /tmp tmpdir")
		for path, why := range map[string]string{
			"../tb_bob/notes.txt":    "escapes your home",
			"/home/tb_bob/notes.txt": "outside your home",
			"/etc/passwd":            "outside your home",
			"bobhome/notes.txt":      "escapes your home",
			"pw":                     "escapes your home",
		} {
			code, _, b := token("alice", "download", path)
			wantStatus(t, "download "+path, code, b, http.StatusForbidden, why)
		}
		code, _, b = token("alice", "upload", "tmpdir/planted")
		wantStatus(t, "upload through a link out of home", code, b, http.StatusForbidden, "escapes your home")

		// An upload that breaks off leaves the file as it was, and no
		// partial file beside it.
		before, _ := os.ReadFile("/home/tb_alice/notes.txt")
		_, tok, _ = token("alice", "upload", "notes.txt")
		req, _ := http.NewRequest(http.MethodPut, w.siteURL+tok.URLPath, io.MultiReader(strings.NewReader(strings.Repeat("y", 300_000)), failingReader{}))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("a broken-off upload answered %s", resp.Status)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			left, _ := filepath.Glob("/home/tb_alice/.trellis-upload-*")
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partial uploads left: %v", left)
			}
			time.Sleep(20 * time.Millisecond) // the worker removes it once its stream ends; nothing to wait on
		}
		if after, _ := os.ReadFile("/home/tb_alice/notes.txt"); !bytes.Equal(before, after) {
			t.Errorf("a broken-off upload changed the file: %.40q", after)
		}

		// Bob's token acts in bob's home only, as tb_bob.
		code, tok, b = token("bob", "upload", "notes.txt")
		wantStatus(t, "bob's upload token", code, b, http.StatusOK)
		code, b = put(tok, "bob's new notes")
		wantStatus(t, "bob's upload", code, b, http.StatusOK)
		if got, _ := os.ReadFile("/home/tb_bob/notes.txt"); string(got) != "bob's new notes" {
			t.Errorf("bob's file: %q", got)
		}
		if got, _ := os.ReadFile("/home/tb_alice/notes.txt"); !strings.HasPrefix(string(got), "notes of alice") {
			t.Errorf("alice's file changed: %.40q", got)
		}
		if _, err := os.Stat("/tmp/planted"); err == nil {
			t.Error("an upload landed out of the home")
		}
	})

	t.Run("Terminal", func(t *testing.T) {
		w := w.with(t)
		code, b := w.forward("alice", "/terminals", []byte(`{}`))
		var tok provider.TokenResponse
		_ = json.Unmarshal([]byte(b), &tok)
		wantStatus(t, "terminal token", code, b, http.StatusOK)
		wsURL := w.siteURL + tok.URLPath + "?rows=30&cols=100"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		// Markers tell the commands' output from the terminal's echo of
		// them and from the prompt.
		send := func(typ websocket.MessageType, b string) {
			if err := ws.Write(ctx, typ, []byte(b)); err != nil {
				t.Fatal(err)
			}
		}
		var out strings.Builder
		var end provider.TerminalControl
		// readUntil reads the terminal until it printed want, or, with
		// want empty, until it ended.
		readUntil := func(want string) {
			for end.Type != "exit" && (want == "" || !strings.Contains(out.String(), want)) {
				typ, data, err := ws.Read(ctx)
				if err != nil {
					t.Fatalf("reading the terminal: %v (so far %q)", err, out.String())
				}
				if typ == websocket.MessageBinary {
					out.Write(data)
				} else if err := json.Unmarshal(data, &end); err != nil {
					t.Fatal(err)
				}
			}
			if want != "" && !strings.Contains(out.String(), want) {
				t.Errorf("the terminal printed %q; want %q", out.String(), want)
			}
		}
		send(websocket.MessageBinary, "echo id=$(id -un)\n")
		send(websocket.MessageBinary, "echo size=$(stty size)\n")
		readUntil("id=tb_alice\r\n")
		readUntil("size=30 100\r\n")
		// A resize travels apart from the keys: the shell waits for it
		// (up to 10 s) before it prints the new size.
		send(websocket.MessageText, `{"type":"resize","rows":40,"cols":120}`)
		send(websocket.MessageBinary, `for i in $(seq 200); do [ "$(stty size)" = "40 120" ] && break; sleep 0.05; done; echo resized=$(stty size)`+"\n")
		readUntil("resized=40 120\r\n")
		send(websocket.MessageBinary, "exit 3\n")
		readUntil("")
		if end.Type != "exit" || end.Code != 3 || end.Error != "" {
			t.Errorf("end: %+v, want exit code 3", end)
		}
		// The token worked once.
		_, resp, err := websocket.Dial(ctx, wsURL, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a reused terminal token: %v, %v", err, resp)
		}
		// The CLI, as bob, its input not a terminal.
		out2, err := w.run(nil, w.as("bob"), "echo id=$(id -un)\nexit\n", "provider", "terminal", "site1")
		if err != nil || !strings.Contains(out2, "id=tb_bob\r\n") {
			t.Errorf("trellis provider terminal as bob: %v: %q", err, out2)
		}
	})

	t.Run("Disconnect", func(t *testing.T) {
		w := w.with(t)
		w.must(nil, w.as("bob"), "provider", "disconnect", "site1")
		// The centre forwards nothing more for bob, at once.
		if err := w.api("Providers/Forward", w.tokens["bob"], map[string]any{"provider": "site1", "method": "POST", "target": "/whoami", "body": b64([]byte("{}"))}, nil); err == nil || !strings.Contains(err.Error(), "not connected") {
			t.Errorf("forwarding for bob after he disconnected: %v", err)
		}
		code, b := w.post("/exec", "", "", []byte(`{"argv":["id"]}`))
		wantStatus(t, "anonymous", code, b, http.StatusUnauthorized)
		var conns struct{ Connections []any }
		w.mustAPI("Providers/ListConnections", w.tokens["bob"], map[string]any{}, &conns)
		if len(conns.Connections) != 0 {
			t.Errorf("bob's connections after disconnect: %v", conns.Connections)
		}
	})

	// Last: the site goes down.
	t.Run("SiteDownIsUnavailable", func(t *testing.T) {
		w := w.with(t)
		w.stopSite()
		out, err := w.run(nil, w.as("alice"), "", "provider", "exec", "site1", "--", "id", "-un")
		if err == nil || !strings.Contains(out, `site "site1" cannot be reached`) {
			t.Errorf("exec with the site down: %v: %s", err, out)
		}
		err = w.api("Providers/Forward", w.tokens["alice"], map[string]any{"provider": "site1", "method": "POST", "target": "/exec", "body": b64([]byte(`{"argv":["id"]}`))}, nil)
		if err == nil || !strings.Contains(err.Error(), `"code":"unavailable"`) {
			t.Errorf("Forward with the site down: %v, want unavailable", err)
		}
	})

	// Every decision is in the site's audit log, with uid and account.
	b, err := os.ReadFile(filepath.Join(w.siteDir, provider.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"op":"exec","uid":"alice","local_account":"tb_alice","outcome":"ok"`, `"outcome":"refused"`, `"op":"worker.hello"`,
		`"op":"upload","uid":"alice","local_account":"tb_alice","outcome":"ok"`, `"op":"download","uid":"bob","local_account":"tb_bob","outcome":"ok"`,
		`"op":"terminal","uid":"alice","local_account":"tb_alice","outcome":"ok"`, `"op":"upload","uid":"alice","local_account":"tb_alice","outcome":"refused","reason":"the upload broke off`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// failingReader breaks an upload off.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection lost") }

type staticSigner struct {
	kid string
	key ed25519.PrivateKey
}

func (s staticSigner) Signer() (string, ed25519.PrivateKey) { return s.kid, s.key }

func encode(pub ed25519.PublicKey) string {
	return b64(pub)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
