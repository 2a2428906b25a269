// Package loadgen drives a request function from many workers for a fixed
// time and reports throughput and latency percentiles. It is the engine of
// cmd/trellis-load; benchmarks measure, tests never time.
package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Options bound a run: it stops after Duration or MaxRequests, whichever
// comes first, so a run always ends by itself.
type Options struct {
	Workers     int
	Duration    time.Duration
	MaxRequests int64 // 0: no bound but the duration
	Warmup      time.Duration
}

// Result summarizes a run.
type Result struct {
	Name     string
	Requests int64
	Errors   int64
	FirstErr error
	Elapsed  time.Duration
	P50, P90 time.Duration
	P99, Max time.Duration
	// CPU is the process's CPU time (user and system) during the run:
	// with client and server in one process, CPU per request compared
	// across scenarios of one run shows what the server adds.
	CPU time.Duration
}

// CPUPerRequest is the process CPU time each request cost.
func (r Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// RPS is the achieved throughput.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%-24s %9d req %10.0f req/s  p50 %-9v p90 %-9v p99 %-9v max %-9v cpu/req %-8v errors %d",
		r.Name, r.Requests, r.RPS(), r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond),
		r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.CPUPerRequest().Round(100*time.Nanosecond), r.Errors)
}

// Run calls do from o.Workers goroutines until the run ends.
func Run(ctx context.Context, name string, o Options, do func(ctx context.Context) error) Result {
	return RunWorkers(ctx, name, o, func() func(context.Context) error { return do })
}

// RunWorkers is Run where each worker gets its own request function from
// newWorker, so it can keep state (a random source, buffers) unshared.
func RunWorkers(ctx context.Context, name string, o Options, newWorker func() func(ctx context.Context) error) Result {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, o.Warmup)
		run(wctx, o.Workers, 0, newWorker)
		cancel()
	}
	rctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start, cpu0 := time.Now(), processCPU()
	lat, errs, firstErr := run(rctx, o.Workers, o.MaxRequests, newWorker)
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	slices.Sort(lat)
	r := Result{Name: name, Requests: int64(len(lat)), Errors: errs, FirstErr: firstErr, Elapsed: elapsed, CPU: cpu}
	if len(lat) > 0 {
		pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		r.P50, r.P90, r.P99, r.Max = pct(.50), pct(.90), pct(.99), lat[len(lat)-1]
	}
	return r
}

func run(ctx context.Context, workers int, maxReq int64, newWorker func() func(context.Context) error) ([]time.Duration, int64, error) {
	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     int64
		firstErr error
		issued   int64
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			do := newWorker()
			var mine []time.Duration
			var myErrs int64
			var myFirst error
			for ctx.Err() == nil {
				if maxReq > 0 {
					mu.Lock()
					issued++
					over := issued > maxReq
					mu.Unlock()
					if over {
						break
					}
				}
				t0 := time.Now()
				err := do(ctx)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break // the run ended mid-request: not the server's fault
					}
					myErrs++
					if myFirst == nil {
						myFirst = err
					}
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			all = append(all, mine...)
			errs += myErrs
			if firstErr == nil {
				firstErr = myFirst
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, errs, firstErr
}
