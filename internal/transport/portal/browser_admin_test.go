package portal_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/trellis-testbed/trellis/internal/service"
)

// eval runs a script in the page (DevTools' evaluation, which the page's
// CSP does not govern).
func (c *chrome) eval(expr string) string {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until waits for a condition the page's script makes true.
func (c *chrome) until(expr string) {
	c.t.Helper()
	if _, err := chromedp.Run(c.ctx, chromedp.Poll[bool](expr)); err != nil {
		c.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// confirmAll answers yes to the page's confirmation questions (data-confirm).
func (c *chrome) confirmAll() { c.eval(`window.confirm = function () { return true }; "ok"`) }

var regexpResetPath = regexp.MustCompile(`/reset\?token=\S+`)

// TestBrowserAdminJourney: a researcher who forgot her password resets it
// through the mail an administrator reads in the outbox (no mail server);
// she adds an SSH key and an API token; notifications arrive live (the
// badge, the list); an administrator force-releases her realization,
// changes a resource's state, adds an OIDC client, reads the audit log and
// rotates the certificate authority.
func TestBrowserAdminJourney(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	id := tb.realization("alice", "lab", "n1")
	c := newChrome(t, tb.url)

	// Forgot the password: asked by address.
	c.run(
		chromedp.Navigate(tb.url+"/signin"),
		chromedp.Click(chromedp.CSS("#forgot")),
		chromedp.WaitVisible(chromedp.CSS("#reset-request")),
		chromedp.SendKeys(chromedp.CSS("#f-account"), "alice@uni.example.edu"),
	)
	c.shot("01 reset request")
	c.run(chromedp.Submit(chromedp.CSS("#reset-request")), chromedp.WaitVisible(chromedp.CSS("#message")))
	c.shot("02 reset requested")

	// The administrator reads the outbox.
	c.signIn(adminUID, adminPassword)
	c.run(
		chromedp.Navigate(tb.url+"/admin/outbox?to=alice@uni.example.edu"),
		chromedp.WaitVisible(chromedp.CSS("#outbox")),
		chromedp.Click(chromedp.CSS("#outbox li:first-child summary")),
	)
	c.shot("03 admin outbox")
	body, err := chromedp.Run(c.ctx, chromedp.TextContent(chromedp.CSS("#outbox li:first-child pre")))
	if err != nil {
		t.Fatal(err)
	}
	link := regexpResetPath.FindString(body)
	if link == "" {
		t.Fatalf("no reset link in the mail:\n%s", body)
	}
	c.signOut()

	// She follows the link and chooses a new password.
	const newPassword = "through the looking glass"
	c.run(
		chromedp.Navigate(tb.url+link),
		chromedp.WaitVisible(chromedp.CSS("#reset")),
		chromedp.SendKeys(chromedp.CSS("#f-new_password"), newPassword),
		chromedp.SendKeys(chromedp.CSS("#f-repeat"), newPassword),
	)
	c.shot("04 reset password")
	c.run(chromedp.Submit(chromedp.CSS("#reset")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if got := c.text("#notice"); !strings.Contains(got, "password is changed") {
		t.Fatalf("after the reset: %q", got)
	}
	c.signIn("alice", newPassword)

	// Keys and tokens.
	key, _ := newSSHKey(t, "alice@laptop")
	c.run(
		chromedp.Navigate(tb.url+"/credentials"),
		chromedp.WaitVisible(chromedp.CSS("#add-key")),
		chromedp.SendKeys(chromedp.CSS("#f-public_key"), key),
		chromedp.Submit(chromedp.CSS("#add-key")),
		chromedp.WaitVisible(chromedp.CSS("#ssh-keys")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "ci-nightly"),
		chromedp.Click(chromedp.CSS(`input[name="scopes"][value="read"]`)),
		chromedp.Submit(chromedp.CSS("#new-api-token")),
		chromedp.WaitVisible(chromedp.CSS("#new-token")),
	)
	c.shot("05 keys and tokens")

	// Notifications arrive while she looks: the badge counts them, the
	// notifications page lists them at the top.
	ctx := context.Background()
	send := func(text string, urgent bool) {
		t.Helper()
		if _, err := tb.srv.Service.Social.SendNotification(ctx, ops, service.Target{User: "alice"}, text, urgent); err != nil {
			t.Fatal(err)
		}
	}
	c.run(chromedp.Navigate(tb.url+"/"), chromedp.WaitVisible(chromedp.CSS("#nav-notes")))
	c.until(`document.querySelector("#nav-notes[data-stream]") !== null`)
	before := c.eval(`(document.getElementById("unread") || {textContent: "0"}).textContent`)
	send("Maintenance of site1 tonight at 22:00 UTC", true)
	c.until(`(document.getElementById("unread") || {}).textContent === "` + bumped(t, before) + `"`)
	c.shot("06 badge live")
	c.run(chromedp.Navigate(tb.url+"/notifications"), chromedp.WaitVisible(chromedp.CSS("#all")))
	c.until(`document.querySelector("#nav-notes[data-stream]") !== null`)
	send("Your realization's lease ends in one hour", false)
	c.until(`document.querySelector("#live-notes li") !== null`)
	if got := c.text("#live-notes li"); !strings.Contains(got, "lease ends in one hour") {
		t.Fatalf("live notification %q", got)
	}
	c.shot("07 notifications live")
	c.signOut()

	// The administrator's pages.
	c.signIn(adminUID, adminPassword)
	c.run(chromedp.Navigate(tb.url+"/admin/users"), chromedp.WaitVisible(chromedp.CSS("#users")))
	c.shot("08 admin users")
	c.run(chromedp.Navigate(tb.url+"/admin/realizations"), chromedp.WaitVisible(chromedp.CSS("#release-"+id)))
	c.shot("09 admin realizations")
	c.confirmAll()
	c.run(
		chromedp.SendKeys(chromedp.CSS("#reason-"+id), "emergency maintenance"),
		chromedp.Click(chromedp.CSS("#release-"+id)),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	c.shot("10 realization force released")
	c.run(chromedp.Navigate(tb.url+"/admin/resources"), chromedp.WaitVisible(chromedp.CSS("#resources")))
	c.shot("11 admin resources")
	c.run(
		chromedp.Navigate(tb.url+"/admin/clients"),
		chromedp.WaitVisible(chromedp.CSS("#add-client")),
		chromedp.SendKeys(chromedp.CSS("#f-cname"), "wiki"),
		chromedp.SendKeys(chromedp.CSS("#f-uris"), "https://wiki.example.org/callback"),
		chromedp.Submit(chromedp.CSS("#add-client")),
		chromedp.WaitVisible(chromedp.CSS("#new-secret")),
	)
	c.shot("12 admin clients")
	c.run(chromedp.Navigate(tb.url+"/admin/audit?actor=alice"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	c.shot("13 admin audit")
	c.run(chromedp.Navigate(tb.url+"/admin/ca"), chromedp.WaitVisible(chromedp.CSS("#rotate-ca")))
	c.confirmAll()
	c.run(
		chromedp.Click(chromedp.CSS("#f-confirm")),
		chromedp.Click(chromedp.CSS("#rotate")),
		chromedp.WaitVisible(chromedp.CSS("#rotated")),
	)
	c.shot("14 admin ca rotated")
	c.run(chromedp.EmulateViewport(390, 844), chromedp.Navigate(tb.url+"/admin/realizations?ended=1"), chromedp.WaitVisible(chromedp.CSS("#realizations")))
	c.shot("15 admin realizations phone")
	c.noProblems()
}

// bumped is the badge's text after one more unread notification.
func bumped(t *testing.T, s string) string {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("badge %q", s)
	}
	return strconv.Itoa(n + 1)
}
