package provider_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/provider"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
)

// BenchmarkSiteChain measures a user's request through the centre to the
// site and the user's worker and back, on loopback, with the real
// processes of the e2e test (a centre, a site run by a service account
// with the setuid launcher, a worker as the mapped account). Like the e2e
// test it needs root (it creates OS accounts). Figures: docs/benchmarks.md.
//
//	sudo go test -run '^$' -bench 'SiteChain/(Forward|Direct)' -benchtime 3s ./internal/provider/
//	sudo go test -run '^$' -bench 'SiteChain/ColdStart' -benchtime 20x ./internal/provider/
func BenchmarkSiteChain(b *testing.B) {
	w := newWorld(b, "setuid", "pattern:tb_{uid}", func(c *provider.Config) {
		// Short, so ColdStart need not wait long for the worker to go.
		c.WorkerIdle = provider.Duration(time.Second)
	})
	addAccount(b, "tb_bench", false)
	w.addUser("bench")
	w.must(nil, w.as("bench"), "provider", "connect", "site1")
	c := &chainClient{w: w, uid: "bench", key: w.userKey("bench"),
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}}
	// whoami is the lightest request that reaches the worker: it answers
	// with its account; nothing is started.
	whoBody := []byte(`{}`)
	execBody := []byte(`{"argv":["true"]}`)
	c.forward(b, "/whoami", whoBody) // the worker is warm from here

	sequential := func(name string, call func() error) {
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if err := call(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportLatency(b, lat)
		})
	}
	parallel := func(name string, call func() error) {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(16) // 32 clients on 2 cores
			t0 := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "req/s")
		})
	}
	fwdWho := func() error { return c.forwardErr("/whoami", whoBody) }
	fwdExec := func() error { return c.forwardErr("/exec", execBody) }
	dirWho := func() error { return c.directErr("/whoami", whoBody) }
	sequential("Forward/Whoami", fwdWho)
	parallel("Forward/Whoami/Parallel", fwdWho)
	sequential("Forward/ExecTrue", fwdExec)
	parallel("Forward/ExecTrue/Parallel", fwdExec)
	c.siteToken = w.siteToken("bench") // five minutes
	sequential("Direct/Whoami", dirWho)
	c.siteToken = w.siteToken("bench")
	parallel("Direct/Whoami/Parallel", dirWho)

	// A cold start: the first request after the user's worker exited
	// (idle), so the site launches one and waits for its hello.
	b.Run("ColdStart", func(b *testing.B) {
		sock := filepath.Join(w.siteDir, "run", provider.SocketName)
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			deadline := time.Now().Add(30 * time.Second)
			for {
				ws, err := provider.Status(sock)
				if err != nil {
					b.Fatal(err)
				}
				if !slices.ContainsFunc(ws, func(s provider.WorkerStatus) bool { return s.User == "bench" }) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("the idle worker did not exit")
				}
				time.Sleep(100 * time.Millisecond) // waiting on the site's idle reaper; nothing to wait on
			}
			b.StartTimer()
			t0 := time.Now()
			if err := fwdWho(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportLatency(b, lat)
	})
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-us")
}

// chainClient is a user's client, without the CLI's process start.
type chainClient struct {
	w   *world
	uid string
	key ed25519.PrivateKey
	hc  *http.Client

	siteToken string // for direct requests
}

func (c *chainClient) sign(target string, body []byte) (string, error) {
	return usersig.Sign(c.key, c.uid, "site1", "POST", target, body, time.Now())
}

func (c *chainClient) forward(tb testing.TB, target string, body []byte) {
	if err := c.forwardErr(target, body); err != nil {
		tb.Fatal(err)
	}
}

// forwardErr sends a signed request through the centre's Forward.
func (c *chainClient) forwardErr(target string, body []byte) error {
	sig, err := c.sign(target, body)
	if err != nil {
		return err
	}
	in, _ := json.Marshal(map[string]any{"provider": "site1", "method": "POST", "target": target, "body": body, "userSignature": sig})
	req, _ := http.NewRequest(http.MethodPost, c.w.centre+"/trellis.v1.Providers/Forward", bytes.NewReader(in))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.w.tokens[c.uid])
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("Forward: %s: %s", resp.Status, out)
	}
	var fr struct{ Status int }
	if err := json.Unmarshal(out, &fr); err != nil || fr.Status != http.StatusOK {
		return fmt.Errorf("the site answered %d: %s", fr.Status, out)
	}
	return nil
}

// directErr sends a signed request straight to the site with the
// centre's token for it.
func (c *chainClient) directErr(target string, body []byte) error {
	sig, err := c.sign(target, body)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, c.w.siteURL+target, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.siteToken)
	req.Header.Set(usersig.Header, sig)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("site: %s: %s", resp.Status, out)
	}
	return nil
}
