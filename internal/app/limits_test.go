package app_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
)

// limit is every limit of these tests: short, so that the tests are. Each
// wait below is a multiple of it or a deadline only a failure reaches.
const limit = 200 * time.Millisecond

// slowClient sends head over a new connection, then a byte every 20 ms,
// and returns how long the server kept the connection and what it said.
// It fails the test when the connection outlives 5 s.
func slowClient(t *testing.T, addr, head string) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(start.Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client sending a byte every 20 ms kept its connection for 5 s; read %q", b)
	}
	return time.Since(start), string(b)
}

func TestSlowClientsAreCut(t *testing.T) {
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) {
		c.HTTP = app.HTTPLimits{ReadHeaderTimeout: limit, BodyTimeout: limit, IdleTimeout: limit, MaxConnsPerClient: -1}
	})
	addr := strings.TrimPrefix(h.url, "http://")
	tests := []struct{ name, head string }{
		{"headers", "POST /trellis.v1.ApiInfo/GetVersion HTTP/1.1\r\nHost: trellis.test\r\nX-Slow: "},
		{"body", "POST /trellis.v1.ApiInfo/GetVersion HTTP/1.1\r\nHost: trellis.test\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lasted, answer := slowClient(t, addr, tt.head)
			// The server's clock starts a moment before ours.
			if lasted < limit*3/4 || strings.Contains(answer, "200 OK") {
				t.Errorf("lasted %s, answered %q", lasted, answer)
			}
		})
	}

	t.Run("idle", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: trellis.test\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		answered := time.Now()
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("an idle connection: %v, want the server to close it", err)
		}
		if idle := time.Since(answered); idle < limit*3/4 {
			t.Errorf("closed after %s idle, before the idle timeout", idle)
		}
	})

	// A stream's request lasts as long as the stream: the body timeout,
	// which the server finds in the contract, leaves it alone.
	t.Run("watch", func(t *testing.T) {
		tok := h.bootstrapAdmin()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := h.notifications.Watch(ctx, req(&trellisv1.NotificationsWatchRequest{}, tok))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		if !stream.Receive() || !stream.Msg().Created {
			t.Fatalf("watch not established: %v", stream.Err())
		}
		<-time.After(3 * limit)
		if _, err := h.notifications.Send(ctx, req(&trellisv1.NotificationsSendRequest{ToUser: "ops", Text: "still there?"}, tok)); err != nil {
			t.Fatal(err)
		}
		if !stream.Receive() || stream.Msg().GetNotification().GetText() != "still there?" {
			t.Fatalf("after three body timeouts the watch got %v, %v", stream.Msg(), stream.Err())
		}
	})
}

func TestConnectionsPerClient(t *testing.T) {
	h := newServer(t, openStore(t, sqlite), func(c *app.Config) { c.HTTP.MaxConnsPerClient = 2 })
	addr := strings.TrimPrefix(h.url, "http://")
	// healthz asks on a new connection, left open, whether the server
	// answers there.
	healthz := func() (net.Conn, bool) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: trellis.test\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("neither answered nor closed within 5 s")
		}
		return conn, err == nil && resp.StatusCode == http.StatusOK
	}
	for i := range 2 {
		conn, ok := healthz()
		defer conn.Close()
		if !ok {
			t.Fatalf("connection %d was refused", i+1)
		}
	}
	conn, ok := healthz()
	conn.Close()
	if ok {
		t.Fatal("a third connection from one address was served")
	}
}
