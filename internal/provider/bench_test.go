package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/provider/usersig"
)

// BenchmarkUserSignature is the site's check of a user's signature on a
// request: parse the compact JWS, verify Ed25519, compare the signed
// method, target, body hash, site and user with the request's, check
// freshness, and record the nonce (the per-nonce cache that refuses a
// replay). Every request carries a new signature, so nothing of the
// verification itself can be cached; only the nonce is remembered.
func BenchmarkUserSignature(b *testing.B) {
	pub, key, _ := ed25519.GenerateKey(nil)
	body := []byte(`{"argv":["id","-un"]}`)
	now := time.Now()
	sigs := make([]string, b.N)
	for i := range sigs {
		s, err := usersig.Sign(key, "alice", "site1", http.MethodPost, "/exec", body, now)
		if err != nil {
			b.Fatal(err)
		}
		sigs[i] = s
	}
	nonces := newNonceCache(max(b.N, 100_000))
	req := usersig.Request{UID: "alice", Site: "site1", Method: http.MethodPost, Target: "/exec", Body: body}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c, err := usersig.Verify(sigs[i], pub, req, now, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if !nonces.add("alice\x00"+c.Nonce, now.Add(2*time.Minute), now) {
			b.Fatal("a fresh nonce refused")
		}
	}
	b.StopTimer()
	// A replay is refused by the cache, not verified again.
	c, _ := usersig.Verify(sigs[0], pub, req, now, time.Minute)
	if nonces.add("alice\x00"+c.Nonce, now.Add(2*time.Minute), now) {
		b.Fatal("a replayed nonce accepted")
	}
}

// BenchmarkSiteDirectRequest is a user's request straight to the site
// (no centre on the path) run by the user's warm worker, over loopback
// HTTP: the site checks the centre's token (cached after its first
// verification), the user's signature and nonce, looks the account up,
// hands the command to the worker over the Unix socket, the worker runs
// `true` and the result comes back as JSON. The client signs each request
// beforehand, so its signing is not counted. Reports p50 (serial) and
// req/s (parallel clients).
func BenchmarkSiteDirectRequest(b *testing.B) {
	needRoot(b)
	acct := testAccount(b, "tbwk_bench")
	ts := newHandlerSite(b)
	ts.sup = testSupervisor(b, time.Hour)
	ts.nonces = newNonceCache(10_000_000)
	ts.clock.set(time.Now())
	key := ts.connectAs(b, "alice", acct.Name)
	tok := ts.token(b, "alice", purposeRequest, "bench", time.Hour)
	srv := httptest.NewServer(ts.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body, _ := json.Marshal(ExecRequest{Argv: []string{"true"}})
	sign := func(n int) []string {
		sigs := make([]string, n)
		for i := range sigs {
			s, err := usersig.Sign(key, "alice", "site1", http.MethodPost, "/exec", body, ts.clock.Now())
			if err != nil {
				b.Fatal(err)
			}
			sigs[i] = s
		}
		return sigs
	}
	do := func(sig string) error {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/exec", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set(usersig.Header, sig)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"exit_code":0`)) {
			return fmt.Errorf("%d %s", resp.StatusCode, out)
		}
		return nil
	}
	// Warm: the worker is started and the centre's token verified once.
	for _, s := range sign(3) {
		if err := do(s); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("serial", func(b *testing.B) {
		sigs := sign(b.N)
		lat := make([]time.Duration, b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			t0 := time.Now()
			if err := do(sigs[i]); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	})
	b.Run("parallel", func(b *testing.B) {
		sigs := sign(b.N)
		var mu sync.Mutex
		next := 0
		var lat []time.Duration
		b.SetParallelism(4) // 4 x GOMAXPROCS clients
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				mu.Lock()
				sig := sigs[next]
				next++
				mu.Unlock()
				t0 := time.Now()
				if err := do(sig); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		elapsed := time.Since(start)
		b.StopTimer()
		if len(lat) == 0 {
			return
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	})
}

// BenchmarkRunTrue is the floor under BenchmarkSiteDirectRequest: what a
// worker spends starting `true` and waiting for it (fork, exec, wait), in
// process, with the worker's settings (own process group, bounded output).
func BenchmarkRunTrue(b *testing.B) {
	for range b.N {
		if m := runCommand(context.Background(), message{Type: "exec", Argv: []string{"true"}, TimeoutMS: 10_000, MaxOutput: 1 << 20}); m.Error != "" || m.ExitCode != 0 {
			b.Fatal(m.Error)
		}
	}
}
