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
// only one works at a time; when the holder stops, another takes over.
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
	// worked hears of each piece of work, by whom; a full channel drops
	// the news rather than block the job.
	worked := make(chan string, 64)
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
			select {
			case worked <- holder:
			default:
			}
			return nil
		}}
	}
	deadline := time.After(10 * time.Second)
	next := func() string {
		t.Helper()
		select {
		case h := <-worked:
			return h
		case <-deadline:
			t.Fatal("no replica worked within 10 s")
			return ""
		}
	}
	cancels := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, h := range []string{"r1", "r2", "r3"} {
		c, cancel := context.WithCancel(ctx)
		cancels[h] = cancel
		wg.Go(func() { Run(c, st, h, job(h), log) })
	}
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
		wg.Wait()
		if maxConcurrent.Load() != 1 {
			t.Errorf("work ran %d at once", maxConcurrent.Load())
		}
	}()

	// The first to work holds the lease. (On a loaded machine a holder
	// that misses renewals for three periods loses it to another,
	// legitimately; what must never happen is two working at once.)
	first := next()
	// The holder stops (and releases): another takes over.
	cancels[first]()
	for next() == first { // work of the holder's last moments
	}
}
