package ratelimit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	lim := Limit{Every: 100 * time.Millisecond, Burst: 3}
	l := New(map[string]Limit{"cert": lim})
	l.now = func() time.Time { return now }
	for i := range lim.Burst {
		if !l.Allow("cert", "192.0.2.1:5000") {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"192.0.2.1:5001", false},       // another port, same address
		{"192.0.2.2:5000", true},        // another address
		{"[2001:db8::1]:443", true},     // IPv6: counted by /64
		{"[2001:db8::2]:443", true},     // same /64: shares the budget
		{"[2001:db8::3]:443", true},     //
		{"[2001:db8::4]:443", false},    // ... which is spent now
		{"[2001:db8:0:1::1]:443", true}, // another /64
	} {
		if got := l.Allow("cert", c.addr); got != c.want {
			t.Errorf("Allow(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if !l.Allow("other", "192.0.2.1:5000") {
		t.Fatal("a name without a limit is limited")
	}
	now = now.Add(lim.Every)
	if !l.Allow("cert", "192.0.2.1:5000") || l.Allow("cert", "192.0.2.1:5000") {
		t.Fatal("after one interval, exactly one more call")
	}
}

func TestLimiterStaysBounded(t *testing.T) {
	l := New(map[string]Limit{"x": {Every: time.Second, Burst: 1}})
	now := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return now }
	// A flood of distinct addresses, none idle: the table is cleared
	// rather than grown.
	for i := range MaxAddresses + 100 {
		l.Allow("x", fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))
		if n := len(l.byName["x"]); n > MaxAddresses {
			t.Fatalf("%d limiters kept, bound %d", n, MaxAddresses)
		}
	}
}

func TestMiddleware(t *testing.T) {
	l := New(map[string]Limit{"pages": {Every: time.Hour, Burst: 1}})
	h := l.Middleware("pages", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/oidc/authorize", nil)
		r.RemoteAddr = "198.51.100.7:1234"
		h.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Fatalf("request %d: status %d, want %d", i+1, rec.Code, want)
		}
	}
}
