package httpserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bodyTimeout is short so that the tests are; every wait below is a
// multiple of it or a deadline that only a failure reaches.
const bodyTimeout = 150 * time.Millisecond

// limitsServer serves Handler with test routes: /echo and /stream answer
// the length of the body they read, /work reads the body and then works for
// three body timeouts, answering whether its context survived.
func limitsServer(t *testing.T) *httptest.Server {
	t.Helper()
	api := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprint(w, len(b))
	}
	api.HandleFunc("/echo", echo)
	api.HandleFunc("/stream", echo)
	api.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "context ended while working", http.StatusInternalServerError)
		case <-time.After(3 * bodyTimeout):
			fmt.Fprint(w, "done")
		}
	})
	srv := httptest.NewServer(Handler(Options{
		API: api, Log: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry(),
		JWKS:        func() ([]byte, error) { return []byte(`{"keys":[]}`), nil },
		BodyTimeout: bodyTimeout,
		Streaming:   func(path string) bool { return path == "/stream" },
	}))
	t.Cleanup(srv.Close)
	return srv
}

// trickle sends head, then the body one byte every interval (up to n
// bytes), and reads what the server answers until it closes the
// connection. It fails the test when the connection outlives limit.
func trickle(t *testing.T, addr, head string, n int, interval, limit time.Duration) (answer string, lasted time.Duration) {
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
		for range n {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %s; read %q", limit, b)
	}
	return string(b), time.Since(start)
}

func post(path string, length int) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: trellis.test\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, length)
}

func TestSlowBodyIsCut(t *testing.T) {
	srv := limitsServer(t)
	// A byte every 20 ms: 100,000 bytes would take half an hour.
	answer, lasted := trickle(t, srv.Listener.Addr().String(), post("/echo", 100_000), 100_000, 20*time.Millisecond, 5*time.Second)
	if strings.Contains(answer, "200 OK") {
		t.Errorf("a body slower than the timeout was read whole: %q", answer)
	}
	if lasted < bodyTimeout {
		t.Errorf("cut after %s, before the body timeout %s", lasted, bodyTimeout)
	}
}

func TestSlowStreamIsNotCut(t *testing.T) {
	srv := limitsServer(t)
	// Ten bytes over about four body timeouts.
	answer, lasted := trickle(t, srv.Listener.Addr().String(), post("/stream", 10), 10, 2*bodyTimeout/5, 10*time.Second)
	if !strings.HasPrefix(answer, "HTTP/1.1 200 OK") || !strings.HasSuffix(answer, "\r\n\r\n10") {
		t.Errorf("a stream's slow body was refused: %q", answer)
	}
	if lasted < bodyTimeout {
		t.Errorf("lasted %s: the body was not slower than the timeout", lasted)
	}
}

// TestHandlerOutlivesBodyTimeout: the deadline covers the body only; a
// handler still working after it keeps its context.
func TestHandlerOutlivesBodyTimeout(t *testing.T) {
	srv := limitsServer(t)
	resp, err := srv.Client().Post(srv.URL+"/work", "text/plain", strings.NewReader("quick"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "done" {
		t.Errorf("%s: %s", resp.Status, b)
	}
}

func TestConnLimiter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitConnsPerClient(ln, 2)
	var refused atomic.Int32
	lim.OnRefuse = func(client string) {
		if client != "127.0.0.1" {
			t.Errorf("refused client %q, want 127.0.0.1", client)
		}
		refused.Add(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	// get sends a request on a new connection, kept open, and reports
	// whether it was answered.
	get := func() (net.Conn, bool) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: trellis.test\r\n\r\n"); err != nil {
			return c, false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("no answer and no close within 5s")
			}
			return c, false
		}
		resp.Body.Close()
		return c, resp.StatusCode == http.StatusOK
	}
	first, ok1 := get()
	second, ok2 := get()
	if !ok1 || !ok2 {
		t.Fatalf("the first two connections: answered %v, %v", ok1, ok2)
	}
	defer second.Close()
	third, ok := get()
	third.Close()
	if ok || refused.Load() != 1 {
		t.Fatalf("a third connection: answered %v, refusals %d", ok, refused.Load())
	}
	// A slot comes back once the server sees a connection closed.
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, ok := get()
		c.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no slot came back after a connection closed")
		}
		time.Sleep(10 * time.Millisecond) // between tries, not for synchronization
	}
}
