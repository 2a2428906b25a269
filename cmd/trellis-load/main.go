// Command trellis-load measures Trellis under load on loopback. By default it
// starts, in this process, a bare net/http handler and a Trellis server on a
// fresh embedded store, and drives both in the same run with the same
// client, so the figures compare like with like:
//
//	go run ./cmd/trellis-load -duration 10s -connections 32
//
// With -target it drives a running server instead (give -uid and a password
// on standard input). Every run is bounded in time and requests, and only
// ever targets the URL given or its own loopback listeners.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/loadgen"
	"github.com/trellis-testbed/trellis/internal/store"
)

// strictRevocation is the -strict-revocation flag.
var strictRevocation bool

func main() {
	var (
		duration    = flag.Duration("duration", 10*time.Second, "how long each scenario runs")
		warmup      = flag.Duration("warmup", 2*time.Second, "unmeasured warm-up before each scenario")
		conns       = flag.Int("connections", 32, "concurrent connections (workers)")
		maxReq      = flag.Int64("max-requests", 5_000_000, "upper bound on requests per scenario")
		target      = flag.String("target", "", "URL of a running Trellis server (default: start one in-process)")
		uid         = flag.String("uid", "", "with -target: the uid to log in as (password on stdin)")
		storeSpec   = flag.String("database", "", "in-process server: postgres:// URL (default: embedded SQLite in a temp dir)")
		skipBare    = flag.Bool("skip-bare", false, "do not measure the bare net/http baseline")
		includeLogn = flag.Int("logins", 20, "also time this many sequential logins (argon2id-bound); 0 to skip")
		cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run (client and in-process server) here")
		churn       = flag.Duration("churn-every", 10*time.Millisecond, "policy scenario: how often the writer changes a membership underneath")
		codec       = flag.String("codec", "json", "policy scenario: json (as curl sends) or proto (the generated Go client)")
		scenario    = flag.String("scenario", "whoami", "whoami (WhoAmI against a bare handler, and logins) or policy (Policy.Check on a testbed-sized population while memberships change)")
	)
	flag.BoolVar(&strictRevocation, "strict-revocation", false, "in-process server: check every request against the change feed first (app.Config.StrictRevocation)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "trellis-load:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "trellis-load:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	switch *scenario {
	case "whoami":
		err = run(*duration, *warmup, *conns, *maxReq, *target, *uid, *storeSpec, *skipBare, *includeLogn)
	case "policy":
		err = runPolicy(*duration, *warmup, *conns, *maxReq, *storeSpec, *codec, *churn)
	default:
		err = fmt.Errorf("unknown -scenario %q: whoami or policy", *scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trellis-load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(duration, warmup time.Duration, conns int, maxReq int64, target, uid, storeSpec string, skipBare bool, logins int) error {
	ctx := context.Background()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, MaxConnsPerHost: conns,
			IdleConnTimeout: time.Minute,
		},
	}
	opts := loadgen.Options{Workers: conns, Duration: duration, Warmup: warmup, MaxRequests: maxReq}
	fmt.Printf("# trellis-load: %d connections, %v per scenario, GOMAXPROCS=%d, %s/%s, %s\n",
		conns, duration, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	var pw string
	if target == "" {
		var stop func()
		var err error
		target, uid, pw, _, stop, err = startTrellis(ctx, storeSpec, nil)
		if err != nil {
			return err
		}
		defer stop()
	} else {
		if uid == "" {
			return errors.New("-target needs -uid and the password on standard input")
		}
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		pw = strings.TrimRight(line, "\r\n")
	}

	if !skipBare {
		bare, stop, err := startBare()
		if err != nil {
			return err
		}
		r := loadgen.Run(ctx, "bare net/http", opts, post(client, bare+"/bare", "", `{}`))
		stop()
		report(r)
	}

	tok, err := login(ctx, client, target, uid, pw)
	if err != nil {
		return err
	}
	report(loadgen.Run(ctx, "Auth/WhoAmI (JSON)", opts, post(client, target+"/trellis.v1.Auth/WhoAmI", tok, `{}`)))

	if logins > 0 {
		one := loadgen.Options{Workers: 1, Duration: time.Minute, MaxRequests: int64(logins)}
		report(loadgen.Run(ctx, "Auth/Login (sequential)", one, func(ctx context.Context) error {
			_, err := login(ctx, client, target, uid, pw)
			return err
		}))
	}
	return nil
}

func report(r loadgen.Result) {
	fmt.Println(r)
	if r.FirstErr != nil {
		fmt.Printf("  first error: %v\n", r.FirstErr)
	}
}

// post returns a request function: a JSON POST with an optional bearer.
func post(c *http.Client, url, tok, body string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func login(ctx context.Context, c *http.Client, target, uid, pw string) (string, error) {
	body := fmt.Sprintf(`{"uid":%q,"password":%q}`, uid, pw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/trellis.v1.Auth/Login", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: status %d: %s", resp.StatusCode, b)
	}
	const key = `"accessToken":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return "", errors.New("login: no access token in response")
	}
	rest := b[i+len(key):]
	return string(rest[:bytes.IndexByte(rest, '"')]), nil
}

// startBare serves the smallest useful JSON handler: the baseline.
func startBare() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"uid":"bench"}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// startTrellis runs a Trellis server in this process on a fresh store, with
// its real configuration (default argon2id parameters included), and an
// admin to log in as. populate, when set, fills the store before the server
// starts.
func startTrellis(ctx context.Context, spec string, populate func(store.Store) error) (url, uid, pw string, st store.Store, stop func(), err error) {
	dir, err := os.MkdirTemp("", "trellis-load-")
	if err != nil {
		return "", "", "", nil, nil, err
	}
	sc := app.StoreConfig{DataDir: dir, Database: spec}
	st, err = app.OpenStore(ctx, sc)
	if err != nil {
		return "", "", "", nil, nil, err
	}
	if populate != nil {
		if err := populate(st); err != nil {
			return "", "", "", nil, nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", "", nil, nil, err
	}
	params := password.DefaultParams()
	cfg := app.Config{Listen: ln.Addr().String(), PasswordParams: &params, StrictRevocation: strictRevocation, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv, err := app.Build(ctx, cfg, st)
	if err != nil {
		return "", "", "", nil, nil, err
	}
	uid, pw = "bench", "load test passphrase 2026"
	if _, err := srv.Service.Bootstrap(ctx, uid, "bench@example.org", pw); err != nil {
		return "", "", "", nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = srv.Serve(sctx, ln); close(done) }()
	return "http://" + ln.Addr().String(), uid, pw, st, func() {
		cancel()
		<-done
		st.Close()
		os.RemoveAll(dir)
	}, nil
}
