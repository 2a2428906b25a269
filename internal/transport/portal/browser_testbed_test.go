package portal_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// campusLayout is a 200-node topology: 8 core routers in a ring, each with
// 3 switches of 7 hosts.
func campusLayout() string {
	var b strings.Builder
	var links []string
	b.WriteString("nodes:\n")
	for c := 1; c <= 8; c++ {
		fmt.Fprintf(&b, "  - name: core%d\n", c)
		links = append(links, fmt.Sprintf("[core%d, core%d]", c, c%8+1))
		for s := 1; s <= 3; s++ {
			fmt.Fprintf(&b, "  - name: sw%d-%d\n", c, s)
			links = append(links, fmt.Sprintf("[core%d, sw%d-%d]", c, c, s))
			for h := 1; h <= 7; h++ {
				fmt.Fprintf(&b, "  - name: host%d-%d-%d\n", c, s, h)
				links = append(links, fmt.Sprintf("[sw%d-%d, host%d-%d-%d]", c, s, c, s, h))
			}
		}
	}
	b.WriteString("links:\n")
	for _, l := range links {
		b.WriteString("  - " + l + "\n")
	}
	return b.String()
}

// TestBrowserTestbedJourney: a researcher with a project creates an
// experiment from a layout file, sees its picture, realizes it, watches its
// page follow a renewal made elsewhere, and releases it; she makes a
// circle and a library, and filters the inventory. A 200-node topology is
// drawn too. Every page is saved as a screenshot.
func TestBrowserTestbedJourney(t *testing.T) {
	rs := newResearchers(t)
	tb := rs.tb
	// The 200-node experiment, through the form, for its picture.
	rs.alice.get("/experiments/new")
	seeOther(t, "campus", rs.alice.postMultipart("/experiments/new", url.Values{"id": {"alice:campus"}, "description": {"a campus network: 8 core routers, 24 switches, 168 hosts"}, "layout": {campusLayout()}}, "", "", ""), "/experiments/alice:campus")

	c := newChrome(t, tb.url)
	layout := filepath.Join(t.TempDir(), "ping.yaml")
	if err := os.WriteFile(layout, []byte(pingLayout), 0o644); err != nil {
		t.Fatal(err)
	}
	c.signIn("alice", userPassword)
	c.run(chromedp.Navigate(tb.url+"/experiments"), chromedp.WaitVisible(chromedp.CSS("#experiments")))
	c.shot("20 experiments")

	// A new experiment from the layout file.
	c.run(
		chromedp.Navigate(tb.url+"/experiments/new"),
		chromedp.WaitVisible(chromedp.CSS("#new-experiment")),
		chromedp.SetValue(chromedp.CSS("#f-id"), "alice:ping"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "round-trip times between two hosts"),
		chromedp.SetUploadFiles(chromedp.CSS("#f-layout-file"), []string{layout}),
	)
	c.shot("21 new experiment")
	c.run(
		chromedp.Submit(chromedp.CSS("#new-experiment")),
		chromedp.WaitVisible(chromedp.CSS("#topology svg")),
	)
	c.shot("22 experiment")
	nodes, err := chromedp.Run(c.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#topology g.node").length`))
	if err != nil || nodes != 2 {
		t.Fatalf("the picture has %d nodes (%v), want 2", nodes, err)
	}

	// Realize it under her project.
	c.run(
		chromedp.SendKeys(chromedp.CSS("#f-lease"), "2h"),
		chromedp.Submit(chromedp.CSS("#realize")),
		chromedp.WaitVisible(chromedp.CSS("#bindings")),
	)
	if got := c.text("#realization-state"); got != "allocated" {
		t.Fatalf("state %q", got)
	}
	c.shot("23 realization")
	loc, err := chromedp.Run(c.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	lease := c.text("#lease")

	// Renewed from elsewhere (her other session): the open page follows.
	rs.alice.get(u.Path)
	seeOther(t, "renew elsewhere", rs.alice.post(u.Path+"/renew", url.Values{"lease": {"100h"}}), u.Path+"?done=renewed")
	if _, err := chromedp.Run(c.ctx, chromedp.Poll[bool](fmt.Sprintf(`document.getElementById("lease").textContent.trim() !== %q`, lease))); err != nil {
		t.Fatalf("the page did not follow the renewal: %v", err)
	}

	// Release it (the page asks first; the test says yes).
	c.run(
		chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`),
		chromedp.Click(chromedp.CSS("#release-button")),
		chromedp.WaitVisible(chromedp.CSS("#ended")),
	)
	if got := c.text("#realization-state"); got != "released" {
		t.Fatalf("state after release %q", got)
	}
	c.shot("24 realization released")
	c.run(chromedp.Navigate(tb.url+"/realizations?ended=1"), chromedp.WaitVisible(chromedp.CSS("#realizations")))
	c.shot("25 realizations")

	// The 200-node picture.
	c.run(chromedp.Navigate(tb.url+"/experiments/alice:campus"), chromedp.WaitVisible(chromedp.CSS("#topology svg")))
	if nodes, err := chromedp.Run(c.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#topology g.node").length`)); err != nil || nodes != 200 {
		t.Fatalf("the campus picture has %d nodes (%v), want 200", nodes, err)
	}
	c.shot("26 experiment 200 nodes")

	// A circle, a library with the experiment, the inventory filtered.
	c.run(
		chromedp.Navigate(tb.url+"/circles"),
		chromedp.WaitVisible(chromedp.CSS("#new-circle")),
		chromedp.SetValue(chromedp.CSS("#f-id"), "alice:reading-group"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "papers on measurement"),
		chromedp.Submit(chromedp.CSS("#new-circle")),
		chromedp.WaitVisible(chromedp.CSS("#add-members")),
		chromedp.SendKeys(chromedp.CSS("#f-uids"), "bob"),
		chromedp.Submit(chromedp.CSS("#add-members")),
		chromedp.WaitVisible(chromedp.CSS("#outcomes")),
	)
	c.shot("27 circle")
	c.run(
		chromedp.Navigate(tb.url+"/libraries"),
		chromedp.WaitVisible(chromedp.CSS("#new-library")),
		chromedp.SetValue(chromedp.CSS("#f-id"), "alice:measurement"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "latency and throughput experiments"),
		chromedp.Submit(chromedp.CSS("#new-library")),
		chromedp.WaitVisible(chromedp.CSS("#add-experiment")),
		chromedp.SendKeys(chromedp.CSS("#f-experiment"), "alice:ping"),
		chromedp.Submit(chromedp.CSS("#add-experiment")),
		chromedp.WaitVisible(chromedp.CSS("#library-experiments")),
	)
	c.shot("28 library")
	// The filter form is a GET: its result is an address.
	c.run(chromedp.Navigate(tb.url+"/resources?filter="+url.QueryEscape("cores>=8")+"&kind=node"), chromedp.WaitVisible(chromedp.CSS("#filter")))
	if got, err := chromedp.Run(c.ctx, chromedp.Value(chromedp.CSS("#f-filter"))); err != nil || got != "cores>=8" {
		t.Fatalf("filter field %q (%v)", got, err)
	}
	c.shot("29 resources")
	c.run(chromedp.Navigate(tb.url+"/resources/node00000"), chromedp.WaitVisible(chromedp.CSS("#attributes")))
	c.shot("30 resource")
	// At phone width.
	c.run(chromedp.EmulateViewport(390, 844), chromedp.Navigate(tb.url+"/experiments/alice:ping"), chromedp.WaitVisible(chromedp.CSS("#topology svg")))
	c.shot("31 experiment phone")
	c.noProblems()
}
