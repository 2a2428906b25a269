package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// EventsPath is the portal's Server-Sent Events stream: the signed-in
// user's new notifications, fed by the service's notification watch (the
// same as the API's Notifications/Watch). It lasts as long as the browser
// keeps it, so the server ends it on shutdown like the API's streams
// (app.endOnShutdown names this path).
const EventsPath = "/events"

const (
	// eventsWriteTimeout bounds each write to the stream: a browser that
	// stopped reading does not hold a handler forever. It replaces, for
	// this long-lived answer, any write timeout of the server.
	eventsWriteTimeout = 30 * time.Second
	// eventsKeepAlive is how often an idle stream says something (a
	// comment), so that proxies keep it and a dead peer is found.
	eventsKeepAlive = 25 * time.Second
	// eventsRetry is how long the browser waits before reconnecting.
	eventsRetry = 5 * time.Second
)

// noteEvent is a notification as the stream sends it (the page's script
// reads it; text is inserted as text, never as markup).
type noteEvent struct {
	ID      int64  `json:"id"`
	Text    string `json:"text"`
	Sender  string `json:"sender,omitempty"`
	Urgent  bool   `json:"urgent"`
	Read    bool   `json:"read"`
	Request bool   `json:"request"`
	Created string `json:"created"`
}

// events streams the caller's notifications. The stream starts after the
// id in Last-Event-ID (the browser sends the last id it saw when it
// reconnects) or in ?after= (the page's newest unread notification), so
// what arrived while it was away is sent once; without either, after the
// newest notification there is. It ends when the session's access token
// expires: the browser reconnects, and the reconnection is authenticated
// (and refreshed) like any request, so a session that ended elsewhere
// stops receiving within one access token's lifetime.
func (h *Portal) events(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if s.caller == nil {
		// An EventSource that is answered an error stops reconnecting;
		// the page, reloaded, sends its visitor to sign in.
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	var resume *int64
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("after")
	}
	if raw != "" {
		id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil || id < 0 {
			http.Error(w, "Last-Event-ID: not a notification id", http.StatusBadRequest)
			return
		}
		resume = &id
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if exp := s.caller.TokenExpires; !exp.IsZero() {
		stop := time.AfterFunc(max(exp.Sub(h.now()), time.Second), cancel)
		defer stop.Stop()
	}
	rc := http.NewResponseController(w)
	write := func(chunk string) error {
		// Unsupported by a test's recorder: then there is no deadline to
		// set, and no error worth ending the stream for.
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
		if _, err := w.Write([]byte(chunk)); err != nil {
			return err
		}
		return rc.Flush()
	}
	started := false
	ready := func(after int64) error {
		hd := w.Header()
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("X-Accel-Buffering", "no") // proxies: do not buffer
		w.WriteHeader(http.StatusOK)
		started = true
		return write(fmt.Sprintf("retry: %d\nid: %d\nevent: ready\ndata: {\"after\":%d}\n\n", eventsRetry.Milliseconds(), after, after))
	}
	notes := make(chan *domain.Notification)
	watched := make(chan error, 1)
	go func() {
		watched <- h.svc.Social.WatchNotifications(ctx, s.caller, resume, func(after int64) error {
			// ready runs on this goroutine before any send; the
			// handler waits for it below.
			err := ready(after)
			notes <- nil
			return err
		}, func(n *domain.Notification) error {
			select {
			case notes <- n:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	// The start: either ready ran (nil on notes) or the watch refused.
	select {
	case <-notes:
	case err := <-watched:
		if err != nil && !started {
			h.streamRefused(w, r, err)
		}
		return
	}
	tick := time.NewTicker(eventsKeepAlive)
	defer tick.Stop()
	for {
		select {
		case n := <-notes:
			b, _ := json.Marshal(noteEvent{ID: n.ID, Text: n.Text, Sender: n.Sender, Urgent: n.Urgent, Read: n.Read, Request: n.RequestID != "", Created: formatTime(n.CreatedAt)})
			if err := write(fmt.Sprintf("id: %d\nevent: notification\ndata: %s\n\n", n.ID, b)); err != nil {
				return
			}
		case <-tick.C:
			if err := write(": keep-alive\n\n"); err != nil {
				return
			}
		case err := <-watched:
			if err != nil && ctx.Err() == nil {
				h.log.WarnContext(r.Context(), "portal: notification stream ended", "err", err)
			}
			return
		}
	}
}

// streamRefused answers a stream the service refused before it started.
func (h *Portal) streamRefused(w http.ResponseWriter, r *http.Request, err error) {
	code := domain.CodeOf(err)
	if code == domain.CodeInternal {
		h.log.ErrorContext(r.Context(), "portal: notification stream", "err", err)
	}
	msg := "the stream could not start"
	var de *domain.Error
	if errors.As(err, &de) && code != domain.CodeInternal {
		msg = de.Message
	}
	http.Error(w, msg, statusOf(code))
}
