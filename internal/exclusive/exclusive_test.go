package exclusive

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// TestOneReplicaWorks runs the same job on three "replicas" of one store:
// only one works; when it stops, another takes over.
func TestOneReplicaWorks(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	worked := map[string]int{}
	var concurrent, maxConcurrent atomic.Int32
	job := func(holder string) Job {
		return Job{Name: "job", Every: 20 * time.Millisecond, Work: func(context.Context) error {
			n := concurrent.Add(1)
			defer concurrent.Add(-1)
			for {
				m := maxConcurrent.Load()
				if n <= m || maxConcurrent.CompareAndSwap(m, n) {
					break
				}
			}
			mu.Lock()
			worked[holder]++
			mu.Unlock()
			return nil
		}}
	}
	ctxs := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, h := range []string{"r1", "r2", "r3"} {
		c, cancel := context.WithCancel(ctx)
		ctxs[h] = cancel
		wg.Go(func() { Run(c, st, h, job(h), log) })
	}
	time.Sleep(300 * time.Millisecond)
	// One replica holds the lease. (On a loaded machine a holder that
	// misses renewals for three periods loses it to another, legitimately;
	// what must never happen is two working at once, checked below.)
	mu.Lock()
	first, most := "", 0
	for h, n := range worked {
		if n > most {
			first, most = h, n
		}
	}
	mu.Unlock()
	if first == "" {
		t.Fatal("no replica worked")
	}
	othersWork := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for h, c := range worked {
			if h != first {
				n += c
			}
		}
		return n
	}
	// The holder stops (and releases): another takes over.
	before := othersWork()
	ctxs[first]()
	time.Sleep(300 * time.Millisecond)
	others := othersWork() - before
	for _, cancel := range ctxs {
		cancel()
	}
	wg.Wait()
	if others == 0 {
		t.Fatalf("no replica took over after the holder stopped: %v", worked)
	}
	if maxConcurrent.Load() != 1 {
		t.Fatalf("work ran %d at once", maxConcurrent.Load())
	}
}
