package provider

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// OneTimeTokenTTL is how long a transfer or terminal token is valid.
const OneTimeTokenTTL = 30 * time.Second

// maxGrants bounds the tokens outstanding at once.
const maxGrants = 10_000

// A grant is what a one-time token allows: one upload, one download or
// one terminal, for one user as one local account, at one path.
type grant struct {
	kind    string // "upload", "download" or "terminal"
	uid     string
	account string
	path    string // relative to the account's home
	expires time.Time
}

// oneTimeTokens hands out tokens of 32 random bytes, each good once and
// for OneTimeTokenTTL. Only their SHA-256 is kept.
type oneTimeTokens struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[[32]byte]*grant
}

func newOneTimeTokens(now func() time.Time) *oneTimeTokens {
	return &oneTimeTokens{now: now, m: map[[32]byte]*grant{}}
}

// issue makes a token for g.
func (t *oneTimeTokens) issue(g grant) (string, time.Time, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := t.now()
	g.expires = now.Add(OneTimeTokenTTL)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxGrants {
		for k, v := range t.m {
			if !now.Before(v.expires) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= maxGrants {
			return "", time.Time{}, refused(http.StatusServiceUnavailable, "too many transfer tokens outstanding; try again in %s", OneTimeTokenTTL)
		}
	}
	t.m[sha256.Sum256([]byte(tok))] = &g
	return tok, g.expires, nil
}

// take redeems tok for kind: whatever the outcome, it is spent.
func (t *oneTimeTokens) take(tok, kind string) (*grant, error) {
	k := sha256.Sum256([]byte(tok))
	t.mu.Lock()
	g := t.m[k]
	delete(t.m, k)
	t.mu.Unlock()
	switch {
	case g == nil:
		return nil, refused(http.StatusUnauthorized, "one-time token refused: unknown or used already (ask the site for a new one)")
	case !t.now().Before(g.expires):
		return g, refused(http.StatusUnauthorized, "one-time token refused: it expired (they last %s)", OneTimeTokenTTL)
	case g.kind != kind:
		return g, refused(http.StatusUnauthorized, "one-time token refused: it is for a %s, not a %s", g.kind, kind)
	}
	return g, nil
}
