package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// fakeChecker is a PasswordCheck over fixed passwords that counts calls.
type fakeChecker struct {
	mu        sync.Mutex
	passwords map[string]string
	calls     int
	during    func() // runs inside a check, as a concurrent change would
}

func (f *fakeChecker) check(_ context.Context, uid, pw string) (*domain.User, error) {
	f.mu.Lock()
	f.calls++
	want, ok := f.passwords[uid]
	during := f.during
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if !ok || want != pw {
		return nil, domain.Unauthenticated("invalid uid or password")
	}
	return &domain.User{UID: uid, State: domain.UserActive}, nil
}

func (f *fakeChecker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func basic(uid, pw string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(uid+":"+pw)))
	return h
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestParseBasic(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, header string
		uid, pw      string
		ok, err      bool
	}{
		{"none", "", "", "", false, false},
		{"bearer", "Bearer abc", "", "", false, false},
		{"good", "Basic " + b64("alice:s3cret"), "alice", "s3cret", true, false},
		{"scheme case", "basic " + b64("alice:s3cret"), "alice", "s3cret", true, false},
		{"colon in password", "Basic " + b64("alice:a:b"), "alice", "a:b", true, false},
		{"empty password", "Basic " + b64("alice:"), "alice", "", true, false},
		{"no colon", "Basic " + b64("alice"), "", "", true, true},
		{"empty uid", "Basic " + b64(":pw"), "", "", true, true},
		{"not base64", "Basic !!!notbase64", "", "", true, true},
		{"nothing after scheme", "Basic", "", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			uid, pw, ok, err := ParseBasic(h)
			if uid != tt.uid || pw != tt.pw || ok != tt.ok || (err != nil) != tt.err {
				t.Fatalf("ParseBasic(%q) = %q, %q, %v, %v", tt.header, uid, pw, ok, err)
			}
			if err != nil {
				if !domain.HasCode(err, domain.CodeUnauthenticated) || !strings.Contains(err.Error(), "Basic base64(uid:password)") {
					t.Errorf("error %v: want unauthenticated naming the form", err)
				}
				if cred := strings.TrimPrefix(tt.header, "Basic "); len(cred) > 5 && strings.Contains(err.Error(), cred) {
					t.Errorf("error %v repeats the header", err)
				}
			}
		})
	}
}

func TestLocalCache(t *testing.T) {
	ctx := context.Background()
	newLocal := func(max int) (*Local, *fakeChecker, *clock) {
		f := &fakeChecker{passwords: map[string]string{"alice": "alice-pw", "bob": "bob-pw"}}
		for i := range 10 {
			f.passwords[fmt.Sprintf("u%d", i)] = "pw"
		}
		c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		return NewLocal(f.check, LocalOptions{MaxEntries: max, Now: c.now}), f, c
	}
	auth := func(t *testing.T, l *Local, uid, pw string) error {
		t.Helper()
		p, err := l.Authenticate(ctx, basic(uid, pw))
		if err == nil && (p == nil || p.UID != uid || p.SessionID != "") {
			t.Fatalf("principal %+v for %s", p, uid)
		}
		return err
	}

	t.Run("hit", func(t *testing.T) {
		l, f, _ := newLocal(0)
		for range 3 {
			if err := auth(t, l, "alice", "alice-pw"); err != nil {
				t.Fatal(err)
			}
		}
		if f.count() != 1 {
			t.Fatalf("%d checks for three requests, want 1", f.count())
		}
	})
	t.Run("refusals are not remembered", func(t *testing.T) {
		l, f, _ := newLocal(0)
		for range 3 {
			if err := auth(t, l, "alice", "wrong"); !domain.HasCode(err, domain.CodeUnauthenticated) {
				t.Fatalf("wrong password: %v", err)
			}
		}
		if f.count() != 3 || l.Len() != 0 {
			t.Fatalf("%d checks, %d entries; want 3, 0", f.count(), l.Len())
		}
		// A remembered password does not vouch for another.
		_ = auth(t, l, "alice", "alice-pw")
		if err := auth(t, l, "alice", "alice-pw2"); err == nil {
			t.Fatal("another password accepted")
		}
	})
	t.Run("expiry", func(t *testing.T) {
		l, f, c := newLocal(0)
		_ = auth(t, l, "alice", "alice-pw")
		c.add(LocalCacheTTL - time.Second)
		_ = auth(t, l, "alice", "alice-pw")
		if f.count() != 1 {
			t.Fatalf("%d checks within the TTL, want 1", f.count())
		}
		c.add(time.Second)
		_ = auth(t, l, "alice", "alice-pw")
		if f.count() != 2 {
			t.Fatalf("%d checks after the TTL, want 2", f.count())
		}
	})
	t.Run("ttl capped", func(t *testing.T) {
		l := NewLocal(nil, LocalOptions{TTL: time.Hour})
		if l.ttl != LocalCacheTTL {
			t.Fatalf("ttl %s, want at most %s", l.ttl, LocalCacheTTL)
		}
	})
	t.Run("bound", func(t *testing.T) {
		l, _, c := newLocal(3)
		for i := range 10 {
			if err := auth(t, l, fmt.Sprintf("u%d", i), "pw"); err != nil {
				t.Fatal(err)
			}
			if l.Len() > 3 {
				t.Fatalf("%d entries, bound 3", l.Len())
			}
		}
		// Expired entries make room first.
		c.add(LocalCacheTTL)
		_ = auth(t, l, "alice", "alice-pw")
		if l.Len() != 1 || len(l.byUID) != 1 {
			t.Fatalf("%d entries (%d uids) after expiry, want 1", l.Len(), len(l.byUID))
		}
	})
	t.Run("invalidation", func(t *testing.T) {
		l, f, _ := newLocal(0)
		_ = auth(t, l, "alice", "alice-pw")
		_ = auth(t, l, "bob", "bob-pw")
		l.InvalidateUser("alice")
		_ = auth(t, l, "alice", "alice-pw")
		_ = auth(t, l, "bob", "bob-pw")
		if f.count() != 3 {
			t.Fatalf("%d checks, want 3 (alice again, bob still remembered)", f.count())
		}
		l.Reset()
		if l.Len() != 0 || len(l.byUID) != 0 {
			t.Fatalf("%d entries after Reset", l.Len())
		}
	})
	t.Run("invalidated while checking", func(t *testing.T) {
		l, f, _ := newLocal(0)
		f.during = func() { l.InvalidateUser("alice") }
		if err := auth(t, l, "alice", "alice-pw"); err != nil {
			t.Fatal(err)
		}
		if l.Len() != 0 {
			t.Fatal("a check that raced an invalidation was remembered")
		}
	})
	t.Run("no password kept", func(t *testing.T) {
		l, _, _ := newLocal(0)
		_ = auth(t, l, "alice", "alice-pw")
		if dump := fmt.Sprintf("%+v %+v", l.entries, l.byUID); strings.Contains(dump, "alice-pw") {
			t.Fatalf("cache holds the password: %s", dump)
		}
		if l.cacheKey("ab", "c") == l.cacheKey("a", "bc") {
			t.Fatal("uid and password are not separated in the key")
		}
		if other := NewLocal(nil, LocalOptions{}); other.cacheKey("alice", "alice-pw") == l.cacheKey("alice", "alice-pw") {
			t.Fatal("two processes share the cache key")
		}
	})
}

func TestNullBackend(t *testing.T) {
	for _, tt := range []struct {
		header string
		uid    string
		err    bool
	}{
		{"", "", false},
		{"alice", "alice", false},
		{" alice ", "alice", false},
		{"not a uid!", "", true},
	} {
		h := http.Header{}
		if tt.header != "" {
			h.Set(NullUserHeader, tt.header)
		}
		p, err := Null{}.Authenticate(context.Background(), h)
		if (err != nil) != tt.err || (tt.uid == "") != (p == nil) || (p != nil && p.UID != tt.uid) {
			t.Errorf("Null(%q) = %+v, %v", tt.header, p, err)
		}
	}
}

// TestLocalSharesConcurrentChecks: requests with the same credentials that
// miss the cache together cost one password check, not one each.
func TestLocalSharesConcurrentChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		f := &fakeChecker{passwords: map[string]string{"alice": "pw"}, during: func() { <-release }}
		l := NewLocal(f.check, LocalOptions{})
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := l.Authenticate(context.Background(), basic("alice", "pw"))
				errs <- err
			})
		}
		// Every request is blocked now: one in the check, waiting for
		// release, the others waiting for its answer.
		synctest.Wait()
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if c := f.count(); c != 1 {
			t.Fatalf("%d password checks for %d concurrent requests, want 1", c, n)
		}
	})
}

// TestNullMiddlewareRefusesForeignHosts: a page of another site the
// developer visits cannot reach the null backend through DNS rebinding.
func TestNullMiddlewareRefusesForeignHosts(t *testing.T) {
	h := NullWarningMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:7700", http.StatusOK},
		{"localhost:7700", http.StatusOK},
		{"[::1]:7700", http.StatusOK},
		{"localhost", http.StatusOK},
		{"rebind.attacker.example:7700", http.StatusMisdirectedRequest},
		{"10.0.0.5:7700", http.StatusMisdirectedRequest},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/trellis.v1.Auth/WhoAmI", nil)
		r.Host = c.host
		h.ServeHTTP(rec, r)
		if rec.Code != c.want || rec.Header().Get(NullWarningHeader) == "" {
			t.Errorf("Host %s: status %d (warning %q), want %d", c.host, rec.Code, rec.Header().Get(NullWarningHeader), c.want)
		}
	}
}
