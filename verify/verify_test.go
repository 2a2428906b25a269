package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/verify"
)

// newVerifier returns a Verifier for tr that counts its fetches; opts may
// adjust the options.
func newVerifier(t *testing.T, tr *trellis, adjust ...func(*verify.Options)) (*verify.Verifier, *countingTransport) {
	t.Helper()
	ct := newCountingTransport()
	opts := verify.Options{Issuer: tr.url, HTTPClient: ct.client()}
	for _, a := range adjust {
		a(&opts)
	}
	v, err := verify.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v, ct
}

func TestVerifyRealToken(t *testing.T) {
	tr := newTrellis(t)
	v, ct := newVerifier(t, tr)
	raw := tr.login(t)
	for range 2 { // the second answer comes from the cache
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != adminUID || c.Issuer != tr.url || !slices.Contains(c.Audience, "trellis") ||
			c.SessionID == "" || c.ID == "" || c.Actor != "" {
			t.Fatalf("claims: %+v", c)
		}
		now := time.Now()
		if !c.Expiry.After(now) || c.Expiry.After(now.Add(11*time.Minute)) || c.IssuedAt.After(now) || c.IssuedAt.IsZero() {
			t.Fatalf("times: iat %v exp %v", c.IssuedAt, c.Expiry)
		}
		c.Audience[0] = "changed" // the caller's copy: must not reach the cache
	}
	if n := ct.n.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (at start)", n)
	}
}

func TestVerifyTampered(t *testing.T) {
	tr := newTrellis(t)
	v, _ := newVerifier(t, tr)
	raw := tr.login(t)
	ctx := context.Background()

	// Claim to be someone else, keeping the signature.
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = "mallory"
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	_, err = v.Verify(ctx, strings.Join(parts, "."))
	wantErr(t, err, verify.ErrInvalid)

	// The genuine token, once cached, does not make its forgery pass.
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, strings.Join(parts, "."))
	wantErr(t, err, verify.ErrInvalid)

	_, err = v.Verify(ctx, "not.a.token")
	wantErr(t, err, verify.ErrMalformed)
	_, err = v.Verify(ctx, "")
	wantErr(t, err, verify.ErrMissing)
}

func TestVerifyTimes(t *testing.T) {
	tr := newTrellis(t)
	raw := tr.login(t)
	late, _ := newVerifier(t, tr, func(o *verify.Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	})
	_, err := late.Verify(context.Background(), raw)
	wantErr(t, err, verify.ErrExpired)

	early, _ := newVerifier(t, tr, func(o *verify.Options) {
		o.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	})
	_, err = early.Verify(context.Background(), raw)
	wantErr(t, err, verify.ErrNotYetValid)

	// A clock a few seconds behind Trellis's still accepts a fresh token.
	behind, _ := newVerifier(t, tr, func(o *verify.Options) {
		o.Now = func() time.Time { return time.Now().Add(-5 * time.Second) }
	})
	if _, err := behind.Verify(context.Background(), raw); err != nil {
		t.Fatalf("clock 5s behind: %v", err)
	}
}

func TestVerifyAudienceAndIssuer(t *testing.T) {
	tr := newTrellis(t)
	raw := tr.login(t)
	other, _ := newVerifier(t, tr, func(o *verify.Options) { o.Audience = "storage" })
	_, err := other.Verify(context.Background(), raw)
	wantErr(t, err, verify.ErrAudience)

	elsewhere, _ := newVerifier(t, tr, func(o *verify.Options) {
		o.Issuer = "https://trellis.elsewhere.example.org"
		o.JWKSURL = tr.url + verify.JWKSPath
	})
	_, err = elsewhere.Verify(context.Background(), raw)
	wantErr(t, err, verify.ErrIssuer)
}

func TestVerifyUnknownKey(t *testing.T) {
	tr := newTrellis(t)
	v, ct := newVerifier(t, tr)
	_, err := v.Verify(context.Background(), foreignToken(t, tr, "not-a-trellis-key"))
	wantErr(t, err, verify.ErrUnknownKey)
	if n := ct.n.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (at start, then once for the unknown kid)", n)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	tr := newTrellis(t)
	// Background refresh far away: only the unknown kid can cause a fetch.
	v, ct := newVerifier(t, tr, func(o *verify.Options) { o.Refresh = time.Hour })
	ctx := context.Background()
	before := tr.login(t)
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatal(err)
	}
	if err := tr.srv.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	after := tr.login(t)
	if kidOf(t, after) == kidOf(t, before) {
		t.Fatal("rotation did not change the signing key")
	}
	c, err := v.Verify(ctx, after)
	if err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if c.Subject != adminUID {
		t.Fatalf("subject %q", c.Subject)
	}
	if n := ct.n.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// The retired key stays published until its tokens expire.
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}
}

func TestVerifyMinRefetch(t *testing.T) {
	tr := newTrellis(t)
	ctx := context.Background()

	v, ct := newVerifier(t, tr, func(o *verify.Options) { o.MinRefetch = time.Hour; o.Refresh = time.Hour })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				_, err := v.Verify(ctx, foreignToken(t, tr, "made-up-"+string(rune('a'+i))+string(rune('a'+j))))
				if err != verify.ErrUnknownKey {
					t.Errorf("want ErrUnknownKey, got %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := ct.n.Load(); n != 2 {
		t.Fatalf("200 unknown-kid tokens caused %d fetches, want 2 (at start, one refetch)", n)
	}

	// After the window, the next unknown kid may fetch again.
	w, wct := newVerifier(t, tr, func(o *verify.Options) { o.MinRefetch = time.Minute; o.Refresh = time.Hour })
	var clock atomic.Int64 // seconds after now
	start := time.Now()
	verify.SetRefetchClock(w, func() time.Time { return start.Add(time.Duration(clock.Load()) * time.Second) })
	for _, tc := range []struct {
		at   int64 // seconds
		want int64 // fetches so far
	}{
		{0, 2}, // at start, and the first unknown kid
		{1, 2},
		{59, 2},
		{60, 3}, // the window has passed
		{61, 3}, // a new window began
	} {
		clock.Store(tc.at)
		_, _ = w.Verify(ctx, foreignToken(t, tr, "made-up"))
		if n := wct.n.Load(); n != tc.want {
			t.Fatalf("%d s after the first miss: %d fetches, want %d", tc.at, n, tc.want)
		}
	}
}

func TestVerifyBackgroundRefresh(t *testing.T) {
	tr := newTrellis(t)
	ctx := context.Background()
	const refresh = 20 * time.Millisecond
	v, ct := newVerifier(t, tr, func(o *verify.Options) {
		o.Refresh = refresh
		o.MinRefetch = time.Hour
	})
	// Spend the unknown-kid refetch, so that only the background refresh
	// can learn the next key.
	_, err := v.Verify(ctx, foreignToken(t, tr, "made-up"))
	wantErr(t, err, verify.ErrUnknownKey)
	if err := tr.srv.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	after := tr.login(t)
	// Each background fetch may have brought the new key; one after the
	// rotation did.
	deadline := time.After(5 * time.Second)
	for {
		_, err := v.Verify(ctx, after)
		if err == nil {
			break
		}
		wantErr(t, err, verify.ErrUnknownKey)
		select {
		case <-ct.fetched:
		case <-deadline:
			t.Fatalf("the rotated-in key was not fetched in the background (%d fetches)", ct.n.Load())
		}
	}

	// Close stops fetching: no fetch in five refresh periods. The last key
	// set still verifies.
	v.Close()
	n := ct.n.Load()
	select {
	case <-ct.fetched: // one that ended before Close returned
	default:
	}
	select {
	case <-ct.fetched:
		t.Fatalf("%d fetches after Close", ct.n.Load()-n)
	case <-time.After(5 * refresh):
	}
	if _, err := v.Verify(ctx, after); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	_, err = v.Verify(ctx, foreignToken(t, tr, "another"))
	wantErr(t, err, verify.ErrUnknownKey)
	v.Close() // idempotent
}

func TestVerifyRequest(t *testing.T) {
	tr := newTrellis(t)
	v, _ := newVerifier(t, tr)
	raw := tr.login(t)
	for _, tc := range []struct {
		header string
		want   error
	}{
		{"", verify.ErrMissing},
		{"Basic b3BzOnNlY3JldA==", verify.ErrMissing},
		{"Bearer", verify.ErrMissing},
		{"Bearer ", verify.ErrMissing},
		{"Bearer garbage", verify.ErrMalformed},
		{"Bearer " + raw + "x", verify.ErrInvalid},
		{"Bearer " + raw, nil},
		{"bearer " + raw, nil},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		c, err := v.VerifyRequest(r)
		if tc.want == nil {
			if err != nil || c.Subject != adminUID {
				t.Errorf("%.20q: %v, %+v", tc.header, err, c)
			}
			continue
		}
		if err != tc.want {
			t.Errorf("%.20q: want %v, got %v", tc.header, tc.want, err)
		}
	}
}

func TestNewFails(t *testing.T) {
	ctx := context.Background()
	if _, err := verify.New(ctx, verify.Options{}); err == nil {
		t.Error("no issuer: want an error")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := verify.New(ctx, verify.Options{Issuer: down}); err == nil {
		t.Error("server down: want an error")
	}

	for name, h := range map[string]http.HandlerFunc{
		"500":      func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "oops", 500) },
		"not json": func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) },
		"no keys":  func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"keys":[]}`)) },
		"rsa only": func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
		},
		"not a set": func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{}`)) },
	} {
		srv := httptest.NewServer(h)
		_, err := verify.New(ctx, verify.Options{Issuer: srv.URL})
		srv.Close()
		if err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// BenchmarkVerifyCached measures the common case: a token seen before on
// this replica (a hash and a map lookup).
func BenchmarkVerifyCached(b *testing.B) {
	benchmarkVerify(b, 0)
}

// BenchmarkVerifyCold measures a full verification (parse, Ed25519, claims)
// with the cache off.
func BenchmarkVerifyCold(b *testing.B) {
	benchmarkVerify(b, -1)
}

func benchmarkVerify(b *testing.B, cacheSize int) {
	tr := newTrellis(b)
	raw := tr.login(b)
	v, err := verify.New(context.Background(), verify.Options{Issuer: tr.url, CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
