package app_test

import (
	"bufio"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// TestShutdownEndsPortalEvents: the portal's live notification stream
// (/events, Server-Sent Events) ends when the server shuts down, like the
// API's Watch, so that shutdown does not wait its grace period for it and
// the browser reconnects elsewhere.
func TestShutdownEndsPortalEvents(t *testing.T) {
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(srv.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&page)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.String())
	if m == nil {
		t.Fatalf("no form token on the sign-in page:\n%s", page.String())
	}
	resp, err = c.PostForm(srv.URL+"/signin", url.Values{"uid": {"alice"}, "password": {apptest.Password}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream did not start: %v", err)
		}
		if strings.HasPrefix(line, "event: ready") {
			break
		}
	}
	start := time.Now()
	srv.Stop() // fails the test if serving ends in error
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // ended
		}
		if strings.HasPrefix(line, "event: notification") {
			t.Fatalf("a notification after shutdown")
		}
	}
}
