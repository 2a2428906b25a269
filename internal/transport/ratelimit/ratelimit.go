// Package ratelimit bounds, per client address, how often anonymous
// callers may ask for what costs the server (a key pair, a mail, a login
// through the identity provider, an audit record). Behind a reverse proxy
// every caller has the proxy's address, and a limit applies to all of them
// together.
package ratelimit

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/trellis-testbed/trellis/internal/clientaddr"
)

// Limit is how often one address may do one thing: a steady rate and a
// burst.
type Limit struct {
	Every time.Duration
	Burst int
}

// MaxAddresses bounds the limiters kept per kind of request. Past it, the
// idle ones go; if none is idle, all go (a flood of distinct addresses
// resets the budgets rather than exhausting memory).
const MaxAddresses = 10_000

// Limiter applies limits by name (an operation, a group of pages).
type Limiter struct {
	limits map[string]Limit
	now    func() time.Time

	mu     sync.Mutex
	byName map[string]map[string]*entry
}

type entry struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter of these limits.
func New(limits map[string]Limit) *Limiter {
	return &Limiter{limits: limits, now: time.Now, byName: map[string]map[string]*entry{}}
}

// Key is the address a caller is counted under: its IP, and for IPv6 its
// /64, which one host usually holds whole (clientaddr.Key).
func Key(remoteAddr string) string { return clientaddr.Key(remoteAddr) }

// Allow reports whether the caller at remoteAddr may do name now; names
// without a limit always may.
func (l *Limiter) Allow(name, remoteAddr string) bool {
	lim, ok := l.limits[name]
	if !ok {
		return true
	}
	key := Key(remoteAddr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.byName[name]
	if m == nil {
		m = map[string]*entry{}
		l.byName[name] = m
	}
	e := m[key]
	if e == nil {
		if len(m) >= MaxAddresses {
			for k, x := range m {
				if now.Sub(x.seen) > time.Minute {
					delete(m, k)
				}
			}
			if len(m) >= MaxAddresses {
				clear(m)
			}
		}
		e = &entry{lim: rate.NewLimiter(rate.Every(lim.Every), lim.Burst)}
		m[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// Middleware answers 429 to a caller past the limit of name.
func (l *Limiter) Middleware(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.Allow(name, r.RemoteAddr) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests from your address: wait a moment and try again", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}
