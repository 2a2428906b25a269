package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// PasswordCheck verifies uid's password and returns the account, or the
// refusal (the same unauthenticated error for an unknown uid and a wrong
// password; a back-off, an account that may not log in, password login
// disabled). The service provides it (Service.AuthenticatePassword): the
// auth layer does not reach the store's password hashes itself.
type PasswordCheck func(ctx context.Context, uid, password string) (*domain.User, error)

// Defaults of the local backend's cache of verified passwords.
const (
	// LocalCacheTTL bounds how long a verified password is remembered.
	LocalCacheTTL = 5 * time.Minute
	// LocalCacheMax bounds how many are.
	LocalCacheMax = 10_000
)

// LocalOptions tune the local backend; zero values take the defaults.
type LocalOptions struct {
	TTL        time.Duration
	MaxEntries int
	Now        func() time.Time
}

// Local is the backend of the store's own passwords, sent with every
// request as HTTP Basic (Authorization: Basic base64(uid:password), what
// `curl -u uid:password` sends): for scripts. A principal it admits has no
// session.
//
// Checking a password costs an Argon2id run (about 49 ms), so a verified
// uid and password are remembered for at most TTL, under an HMAC of both
// with a key drawn per process: the password itself is never kept, and the
// key never leaves the process. Entries are dropped when the account
// changes (InvalidateUser, through the change feed: a new password, a new
// state); the account's state is checked on every request anyway (see
// Backend).
type Local struct {
	check PasswordCheck
	ttl   time.Duration
	max   int
	now   func() time.Time
	key   [32]byte

	flight singleflight.Group // concurrent checks of the same credentials

	mu      sync.Mutex
	gen     uint64 // bumped by every invalidation; see Authenticate
	entries map[[32]byte]localEntry
	byUID   map[string]map[[32]byte]struct{}
}

type localEntry struct {
	uid     string
	expires time.Time
}

// NewLocal returns the local backend; check verifies passwords.
func NewLocal(check PasswordCheck, o LocalOptions) *Local {
	if o.TTL <= 0 || o.TTL > LocalCacheTTL {
		o.TTL = LocalCacheTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = LocalCacheMax
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Local{
		check: check, ttl: o.TTL, max: o.MaxEntries, now: o.Now,
		entries: map[[32]byte]localEntry{},
		byUID:   map[string]map[[32]byte]struct{}{},
	}
	if _, err := rand.Read(l.key[:]); err != nil {
		panic("auth: no randomness for the password cache key: " + err.Error())
	}
	return l
}

// Name implements Backend.
func (*Local) Name() string { return "local" }

// AuthorizationScheme names the header form the backend reads.
func (*Local) AuthorizationScheme() string { return "Basic base64(uid:password)" }

var errMalformedBasic = domain.Unauthenticated(`malformed Authorization header: expected "Basic base64(uid:password)" (what curl -u uid:password sends)`)

// ParseBasic reads HTTP Basic credentials from h; ok is false when h has no
// Authorization header of the Basic scheme. A Basic header that does not
// hold base64(uid:password) is an error, which never repeats the header.
func ParseBasic(h http.Header) (uid, password string, ok bool, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, nil
	}
	raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if derr != nil {
		return "", "", true, errMalformedBasic
	}
	uid, password, found := strings.Cut(string(raw), ":")
	if !found || uid == "" {
		return "", "", true, errMalformedBasic
	}
	return uid, password, true, nil
}

// Authenticate implements Backend.
func (l *Local) Authenticate(ctx context.Context, h http.Header) (*Principal, error) {
	uid, password, ok, err := ParseBasic(h)
	if !ok || err != nil {
		return nil, err
	}
	k := l.cacheKey(uid, password)
	now := l.now()
	l.mu.Lock()
	e, hit := l.entries[k]
	if hit && !now.Before(e.expires) {
		l.dropLocked(k, e.uid)
		hit = false
	}
	gen := l.gen
	l.mu.Unlock()
	if hit {
		return &Principal{UID: e.uid}, nil
	}
	// Requests with the same credentials that miss together (a script's
	// burst at its start) share one check: an argon2id run each would
	// spend the server's hashing slots on one answer.
	v, err, _ := l.flight.Do(string(k[:]), func() (any, error) { return l.check(ctx, uid, password) })
	if err != nil {
		return nil, err
	}
	u := v.(*domain.User)
	l.mu.Lock()
	// An invalidation while the password was being checked may mean it
	// changed meanwhile: the answer holds for this request, not later.
	if l.gen == gen {
		l.storeLocked(k, localEntry{uid: u.UID, expires: now.Add(l.ttl)})
	}
	l.mu.Unlock()
	return &Principal{UID: u.UID}, nil
}

// cacheKey is HMAC-SHA256 of uid and password under the process's key.
func (l *Local) cacheKey(uid, password string) [32]byte {
	m := hmac.New(sha256.New, l.key[:])
	m.Write([]byte(uid))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (l *Local) storeLocked(k [32]byte, e localEntry) {
	if _, ok := l.entries[k]; !ok && len(l.entries) >= l.max {
		l.evictLocked()
	}
	l.entries[k] = e
	keys := l.byUID[e.uid]
	if keys == nil {
		keys = map[[32]byte]struct{}{}
		l.byUID[e.uid] = keys
	}
	keys[k] = struct{}{}
}

// evictLocked makes room: expired entries go first, else one at random
// (map order), which costs at most a password check and never a wrong
// answer.
func (l *Local) evictLocked() {
	now := l.now()
	for k, e := range l.entries {
		if !now.Before(e.expires) {
			l.dropLocked(k, e.uid)
		}
	}
	if len(l.entries) < l.max {
		return
	}
	for k, e := range l.entries {
		l.dropLocked(k, e.uid)
		if len(l.entries) < l.max {
			return
		}
	}
}

func (l *Local) dropLocked(k [32]byte, uid string) {
	delete(l.entries, k)
	if keys := l.byUID[uid]; keys != nil {
		delete(keys, k)
		if len(keys) == 0 {
			delete(l.byUID, uid)
		}
	}
}

// InvalidateUser forgets every password verified for uid: the account
// changed (its password, its state).
func (l *Local) InvalidateUser(uid string) {
	l.mu.Lock()
	l.gen++
	for k := range l.byUID[uid] {
		delete(l.entries, k)
	}
	delete(l.byUID, uid)
	l.mu.Unlock()
}

// Reset forgets every verified password: the change feed lost track.
func (l *Local) Reset() {
	l.mu.Lock()
	l.gen++
	clear(l.entries)
	clear(l.byUID)
	l.mu.Unlock()
}

// Len returns how many verified passwords are remembered.
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
