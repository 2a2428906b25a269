// Package storemetrics wraps a store.Store to count and time its
// transactions for Prometheus, so operators see a struggling database before
// users do, and to log an outage of the store once, when it begins, and
// again when the store commits again, rather than once per request.
package storemetrics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

type instrumented struct {
	store.Store
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	down     prometheus.Gauge

	log *slog.Logger
	mu  sync.Mutex
	// outageSince is when the current outage began; zero while the store
	// serves.
	outageSince time.Time
}

// Wrap returns st with its transactions measured on reg and its outages
// logged to log.
func Wrap(st store.Store, reg prometheus.Registerer, log *slog.Logger) store.Store {
	if log == nil {
		log = slog.Default()
	}
	s := &instrumented{
		Store: st,
		log:   log,
		down: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trellis_store_unavailable",
			Help: "1 while the store is unavailable (unreachable, full, or conflicting past every retry), from its first failure until it commits again.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trellis_store_errors_total",
			Help: "Store transactions that failed for a reason other than the operation's own (a domain error), by kind (update, view, ping, probe, head).",
		}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "trellis_store_transaction_seconds",
			Help:    "Store transaction latency by kind.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"kind"}),
	}
	reg.MustRegister(s.errors, s.duration, s.down)
	return s
}

func (s *instrumented) observe(kind string, start time.Time, err error) {
	s.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	// A domain error is the operation's answer (not found, invalid, …),
	// not the store failing.
	unavailable := errors.Is(err, store.ErrUnavailable)
	if err != nil && (unavailable || domain.CodeOf(err) == domain.CodeInternal) {
		s.errors.WithLabelValues(kind).Inc()
	}
	switch {
	case unavailable:
		s.outage(err)
	case err == nil && (kind == "update" || kind == "probe"):
		// Only a commit shows that the store serves again: reads may
		// pass while writes cannot (a full disk).
		s.recovered()
	}
}

// outage logs the first failure of an outage, with its cause.
func (s *instrumented) outage(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.outageSince.IsZero() {
		return
	}
	s.outageSince = time.Now()
	s.down.Set(1)
	s.log.Error("store unavailable: requests are answered unavailable with a retry hint until it commits again; logged once per outage", "store", s.Kind(), "err", err)
}

// recovered logs the end of an outage.
func (s *instrumented) recovered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outageSince.IsZero() {
		return
	}
	s.log.Info("store available again", "store", s.Kind(), "outage", time.Since(s.outageSince).Round(time.Millisecond).String())
	s.outageSince = time.Time{}
	s.down.Set(0)
}

func (s *instrumented) Update(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.Update(ctx, fn)
	s.observe("update", start, err)
	return err
}

func (s *instrumented) View(ctx context.Context, fn func(store.Tx) error) error {
	start := time.Now()
	err := s.Store.View(ctx, fn)
	s.observe("view", start, err)
	return err
}

func (s *instrumented) Probe(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Probe(ctx)
	s.observe("probe", start, err)
	return err
}

func (s *instrumented) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.observe("ping", start, err)
	return err
}

// ChangeHead passes the wrapped store's knowledge of its feed's head on.
func (s *instrumented) ChangeHead() (int64, bool) {
	if lh, ok := s.Store.(store.LocalHead); ok {
		return lh.ChangeHead()
	}
	return 0, false
}

// ReadChangeHead passes the wrapped store's one-statement head read on, or
// reads the head in a read-only transaction when it has none.
func (s *instrumented) ReadChangeHead(ctx context.Context) (int64, error) {
	start := time.Now()
	var seq int64
	var err error
	if hr, ok := s.Store.(store.HeadReader); ok {
		seq, err = hr.ReadChangeHead(ctx)
	} else {
		err = s.Store.View(ctx, func(tx store.Tx) error {
			var err error
			seq, err = tx.Changes().Latest(ctx)
			return err
		})
	}
	s.observe("head", start, err)
	return seq, err
}
