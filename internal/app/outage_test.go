package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// readyz returns the status of GET /readyz and its Retry-After header.
func (h *harness) readyz() (int, string) {
	h.t.Helper()
	resp, err := h.http.Get(h.url + "/readyz")
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// register registers user n and returns the error.
func (h *harness) register(n int) error {
	uid := fmt.Sprintf("user%d", n)
	_, err := h.users.Register(context.Background(), req(&trellisv1.RegisterRequest{
		Uid: uid, Email: uid + "@uni.example.edu", Password: userPassword,
		Profile: map[string]string{"name": "U" + uid, "phone": "+1 310 555 0100"},
	}, ""))
	return err
}

// wantRetryLater fails t unless err is Connect unavailable with a
// Retry-After hint.
func wantRetryLater(t *testing.T, what string, err error) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
		t.Fatalf("%s: %v, want unavailable", what, err)
	}
	if got := ce.Meta().Get("Retry-After"); got != "5" {
		t.Errorf("%s: Retry-After %q, want 5", what, got)
	}
}

// TestStoreOutageIsUnavailable: a store that cannot commit (PostgreSQL
// stopped, SQLite's disk full) makes calls fail unavailable with a retry
// hint, not internal; /readyz says 503; the outage is logged once, and
// its end once; afterwards the server serves again.
func TestStoreOutageIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		// open returns a store and the functions that break and mend it.
		open func(t *testing.T) (st store.Store, breakIt, mend func())
	}{
		{"sqlite-disk-full", func(t *testing.T) (store.Store, func(), func()) {
			st := openStore(t, sqlite)
			db := st.(*sqlstore.DB)
			return st, func() {
					// SQLite never bounds a file below its size: this bounds
					// it to its size.
					if _, err := db.SetMaxPageCount(context.Background(), 1); err != nil {
						t.Fatal(err)
					}
				}, func() {
					if _, err := db.SetMaxPageCount(context.Background(), 1<<30); err != nil {
						t.Fatal(err)
					}
				}
		}},
		{"postgres-stopped", func(t *testing.T) (store.Store, func(), func()) {
			cl := pgtest.NewCluster(t)
			st, err := app.OpenStore(context.Background(), app.StoreConfig{Database: cl.URL()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, func() { cl.Stop(t) }, func() { cl.Start(t) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, breakIt, mend := tc.open(t)
			log := &serveLog{serving: make(chan struct{})}
			h := newServer(t, st, func(c *app.Config) { c.Log = slog.New(slog.NewTextHandler(log, nil)) })
			h.bootstrapAdmin()
			if code, _ := h.readyz(); code != http.StatusOK {
				t.Fatalf("/readyz of a healthy store: %d", code)
			}

			breakIt()
			// Writes fail once the store is out of room (the database
			// file's free pages first fill up) or at once (stopped).
			n, err := 0, error(nil)
			for ; n < 3000; n++ {
				if err = h.register(n); err != nil {
					break
				}
			}
			wantRetryLater(t, "Register with the store out", err)
			for i := range 3 {
				wantRetryLater(t, "a further Register", h.register(10000+i))
			}
			if code, retry := h.readyz(); code != http.StatusServiceUnavailable || retry == "" {
				t.Errorf("/readyz with the store out: %d, Retry-After %q; want 503 with a hint", code, retry)
			}
			out := log.String()
			if got := strings.Count(out, "store unavailable:"); got != 1 {
				t.Errorf("the outage was logged %d times, want once:\n%s", got, out)
			}
			if strings.Contains(out, "internal error") {
				t.Errorf("the outage was logged as an internal error:\n%s", out)
			}

			mend()
			// PostgreSQL's pool drops its dead connections as they fail:
			// a few probes at most.
			code := 0
			for range 25 {
				if code, _ = h.readyz(); code == http.StatusOK {
					break
				}
			}
			if code != http.StatusOK {
				t.Fatalf("/readyz after the store came back: %d", code)
			}
			if err := h.register(20000); err != nil {
				t.Fatalf("Register after the store came back: %v", err)
			}
			out = log.String()
			if got := strings.Count(out, "store available again"); got != 1 {
				t.Errorf("the recovery was logged %d times, want once:\n%s", got, out)
			}
			if got := strings.Count(out, "store unavailable:"); got != 1 {
				t.Errorf("the outage was logged %d times, want once:\n%s", got, out)
			}
		})
	}
}
