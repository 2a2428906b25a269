package portal_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/service"
)

// stream is an open /events answer read event by event.
type stream struct {
	t      *testing.T
	resp   *http.Response
	r      *bufio.Reader
	ctx    context.Context
	cancel context.CancelFunc
}

// ctxErr says whether the test's bound ended the stream.
func (s *stream) ctxErr() error { return s.ctx.Err() }

type event struct{ name, id, data string }

// events opens the stream with the browser's cookie; lastID, when set, is
// sent as Last-Event-ID, as a reconnecting browser does.
func (b *browser) events(t *testing.T, lastID string) *stream {
	t.Helper()
	// A bound on a wedged stream, so the test fails instead of hanging;
	// not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body), ctx: ctx, cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() { s.cancel(); s.resp.Body.Close() }

// next reads the next event, skipping comments and the retry field.
func (s *stream) next() event {
	s.t.Helper()
	var e event
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading the stream: %v (so far %+v)", err, e)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if e.name != "" || e.data != "" {
				return e
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			e.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			e.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			e.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// A notification created through the service arrives on the stream; a
// reconnection with Last-Event-ID gets what came after that id, once, and
// nothing older.
func TestEvents(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	ctx := context.Background()
	ops := &auth.Principal{UID: adminUID, Admin: true}
	send := func(text string) {
		t.Helper()
		if _, err := tb.srv.Service.Social.SendNotification(ctx, ops, service.Target{User: "alice"}, text, false); err != nil {
			t.Fatal(err)
		}
	}
	send("before the stream")

	// Anonymous: refused, not a stream.
	anon := tb.browser()
	if a := anon.get("/events"); a.status != http.StatusUnauthorized {
		t.Fatalf("anonymous /events: %d", a.status)
	}

	b := tb.browser()
	b.signIn("alice", userPassword)
	s := b.events(t, "")
	if ct := s.resp.Header.Get("Content-Type"); s.resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: %d %q", s.resp.StatusCode, ct)
	}
	ready := s.next()
	if ready.name != "ready" || ready.id == "" {
		t.Fatalf("first event %+v, want ready", ready)
	}
	send("hello <b>alice</b>")
	first := s.next()
	if first.name != "notification" || !strings.Contains(first.data, `hello \u003cb\u003ealice\u003c/b\u003e`) || !strings.Contains(first.data, fmt.Sprintf(`"id":%s`, first.id)) {
		t.Fatalf("notification event %+v", first)
	}
	s.close()

	// While away: two more. Reconnecting after the first gets exactly
	// those, oldest first, then what comes next.
	send("while away 1")
	send("while away 2")
	s = b.events(t, first.id)
	if e := s.next(); e.name != "ready" || e.id != first.id {
		t.Fatalf("resumed stream starts with %+v, want ready after %s", e, first.id)
	}
	for _, want := range []string{"while away 1", "while away 2"} {
		if e := s.next(); e.name != "notification" || !strings.Contains(e.data, want) {
			t.Fatalf("resumed: %+v, want %q", e, want)
		}
	}
	send("live again")
	if e := s.next(); !strings.Contains(e.data, "live again") {
		t.Fatalf("after the backlog: %+v", e)
	}

	// The page tells its stream where to start: after the newest unread.
	want(t, "badge", b.get("/"), http.StatusOK, `id="nav-notes" data-events="/events" data-after="`, `id="unread"`)
	if a := b.get("/events?after=x"); a.status != http.StatusBadRequest {
		t.Errorf("bad after: %d", a.status)
	}
}

// The stream ends when the session's access token expires, so a session
// ended elsewhere (here, signed out) stops receiving within one access
// token's lifetime: the browser's reconnection is refused.
func TestEventsEndWithTheAccessToken(t *testing.T) {
	tb := listeningTestbed(t, func(c *app.Config) { c.Service.AccessTokenTTL = 2 * time.Second })
	tb.newUser("alice")
	b := tb.browser()
	b.signIn("alice", userPassword)
	u, _ := url.Parse(tb.url)
	saved := b.c.Jar.Cookies(u)
	s := b.events(t, "")
	if e := s.next(); e.name != "ready" {
		t.Fatalf("first event %+v", e)
	}
	if a := b.post("/signout", nil); a.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", a.status)
	}
	// The stream ends by itself (the read fails at its end, not at the
	// test's one-minute bound).
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if s.ctxErr() != nil {
				t.Fatal("the stream outlived its access token")
			}
			break
		}
		if strings.HasPrefix(line, "event: notification") {
			t.Fatal("a notification after signing out")
		}
	}
	b.c.Jar.SetCookies(u, saved)
	if a := b.get("/events"); a.status != http.StatusUnauthorized {
		t.Fatalf("reconnecting with the ended session: %d", a.status)
	}
}
