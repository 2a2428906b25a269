package portal_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium (scripts/test installs it)
// headless through the portal's journeys, and save a screenshot of each
// page in $TRELLIS_SCREENSHOTS, or testdata/screenshots (ignored by git).

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH; with CI=true the browser tests must run (scripts/test installs Debian's chromium)")
	}
	t.Skip("skipping the browser tests: no chromium on PATH (install Debian's chromium, or run scripts/test)")
	return ""
}

// screenshots is where the pages' pictures go.
func screenshots(t *testing.T) string {
	dir := os.Getenv("TRELLIS_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chrome is one headless browser on the portal.
type chrome struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
	n    int
	// problems are the console errors and CSP violations the pages caused.
	mu       sync.Mutex
	problems []string
}

func newChrome(t *testing.T, base string) *chrome {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	// A bound on the whole journey, so a wedged browser fails the test
	// instead of hanging it; not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	cctx, ccancel := chromedp.NewContext(actx)
	t.Cleanup(ccancel)
	c := &chrome{t: t, ctx: cctx, base: base, dir: screenshots(t)}
	// Console errors include the browser's reports of CSP violations.
	messages := chromedp.Console(cctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			// A page answered 4xx on purpose (a form with a bad value)
			// is logged by the network; not a problem of the page.
			if (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException) && m.Source != "network" {
				c.mu.Lock()
				c.problems = append(c.problems, m.String())
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { ccancel(); <-done })
	return c
}

func (c *chrome) run(actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		c.t.Fatalf("browser at %s: %v", loc, err)
	}
}

// shot saves the page as it looks now.
func (c *chrome) shot(name string) {
	c.t.Helper()
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	c.n++
	if err := os.WriteFile(filepath.Join(c.dir, strings.ReplaceAll(strings.ToLower(name), " ", "-")+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (c *chrome) signIn(uid, pw string) {
	c.t.Helper()
	c.run(
		chromedp.Navigate(c.base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.SendKeys(chromedp.CSS("#f-uid"), uid),
		chromedp.SendKeys(chromedp.CSS("#f-password"), pw),
		chromedp.Submit(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS(".signout")),
	)
}

func (c *chrome) signOut() {
	c.t.Helper()
	c.run(
		chromedp.Click(chromedp.CSS(".signout button")),
		// The sign-in form, which no signed-in page has: the page before
		// may have had a notice of its own.
		chromedp.WaitVisible(chromedp.CSS("#signin")),
	)
}

func (c *chrome) noProblems() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) > 0 {
		c.t.Errorf("the pages logged errors (CSP violations, script errors): %q", c.problems)
	}
}

// TestBrowserJourney: a researcher registers, confirms from the mailed
// token, signs in and asks for a project; an admin approves it; she sees it
// approved and adds a member, who accepts from his notification.
func TestBrowserJourney(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("bob")
	c := newChrome(t, tb.url)

	// Register, with a bad value first: the form comes back with it.
	c.run(
		chromedp.Navigate(tb.url+"/register"),
		chromedp.WaitVisible(chromedp.CSS("#register")),
		chromedp.SendKeys(chromedp.CSS("#f-uid"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "alice@uni.example.edu"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), userPassword),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Alice Liddell"),
		chromedp.SendKeys(chromedp.CSS("#f-affiliation"), "University of Oxford"),
		chromedp.SendKeys(chromedp.CSS("#f-phone"), "call me"),
	)
	c.shot("01 register")
	c.run(
		chromedp.Submit(chromedp.CSS("#register")),
		chromedp.WaitVisible(chromedp.CSS("#e-phone")),
	)
	c.shot("02 register error")
	if got := c.text("#e-phone"); !strings.Contains(got, "telephone number") {
		t.Fatalf("phone error %q", got)
	}
	c.run(
		chromedp.SetValue(chromedp.CSS("#f-phone"), "+44 1865 270000"),
		chromedp.SendKeys(chromedp.CSS("#f-password"), userPassword),
		chromedp.Submit(chromedp.CSS("#register")),
		chromedp.WaitVisible(chromedp.CSS("#message")),
	)
	c.shot("03 check your mail")

	// Confirm from the link in the outbox.
	tok := tb.mailedToken("alice@uni.example.edu")
	c.run(
		chromedp.Navigate(tb.url+"/confirm?token="+tok),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
	)
	c.shot("04 confirm")
	c.run(
		chromedp.Submit(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	c.shot("05 sign in")

	c.signIn("alice", userPassword)
	c.run(chromedp.WaitVisible(chromedp.CSS("#no-projects")))
	c.shot("06 dashboard new user")

	c.run(
		chromedp.Navigate(tb.url+"/projects/new"),
		chromedp.WaitVisible(chromedp.CSS("#new-project")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "netsec"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "network security research"),
	)
	c.shot("07 request project")
	c.run(
		chromedp.Submit(chromedp.CSS("#new-project")),
		chromedp.WaitVisible(chromedp.CSS("#pending-note")),
	)
	c.shot("08 project pending")
	c.signOut()

	// An admin approves it.
	c.signIn(adminUID, adminPassword)
	c.run(chromedp.Navigate(tb.url+"/notifications"), chromedp.WaitVisible(chromedp.CSS("#urgent")))
	c.shot("09 admin notifications")
	c.run(chromedp.Navigate(tb.url+"/admin/approvals"), chromedp.WaitVisible(chromedp.CSS("#approvals")))
	c.shot("10 approvals")
	c.run(
		chromedp.Click(chromedp.CSS("#approve-netsec")),
		chromedp.WaitVisible(chromedp.CSS("#none")),
	)
	c.signOut()

	// She sees it approved, and adds bob.
	c.signIn("alice", userPassword)
	c.run(chromedp.WaitVisible(chromedp.CSS("#my-projects")))
	c.shot("11 dashboard")
	c.run(chromedp.Navigate(tb.url+"/projects/netsec"), chromedp.WaitVisible(chromedp.CSS("#members")))
	if got := c.text("#project-state"); got != "approved" {
		t.Fatalf("project state %q", got)
	}
	c.run(
		chromedp.SendKeys(chromedp.CSS("#f-uids"), "bob"),
		chromedp.Click(chromedp.CSS(`input[name="rights"][value="realize_experiment"]`)),
		chromedp.Submit(chromedp.CSS("#add-members")),
		chromedp.WaitVisible(chromedp.CSS("#outcomes")),
	)
	c.shot("12 project member asked")
	c.run(chromedp.Navigate(tb.url+"/profile"), chromedp.WaitVisible(chromedp.CSS("#profile")))
	c.shot("13 profile")
	c.signOut()

	// Bob accepts from his notification.
	c.signIn("bob", userPassword)
	c.run(chromedp.Navigate(tb.url+"/notifications"), chromedp.WaitVisible(chromedp.CSS(`button[id^="accept-"]`)))
	c.shot("14 notifications")
	c.run(
		chromedp.Click(chromedp.CSS(`button[id^="accept-"]`)),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
		chromedp.Navigate(tb.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#my-projects")),
	)
	if got := c.text("#my-projects"); !strings.Contains(got, "netsec") || !strings.Contains(got, "realize_experiment") {
		t.Fatalf("bob's projects: %q", got)
	}
	c.run(chromedp.Navigate(tb.url+"/projects/netsec"), chromedp.WaitVisible(chromedp.CSS("#members")))
	if got := c.text("#members"); !strings.Contains(got, "bob") {
		t.Fatalf("members: %q", got)
	}
	c.shot("15 project with member")
	// At phone width.
	c.run(chromedp.EmulateViewport(390, 844), chromedp.Navigate(tb.url+"/"), chromedp.WaitVisible(chromedp.CSS("#my-projects")))
	c.shot("16 dashboard phone")
	c.noProblems()
}
