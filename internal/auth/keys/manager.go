// Package keys manages Trellis's token-signing keys: Ed25519 key pairs kept
// in the store (private halves sealed with a key-encryption key when one is
// configured), rotated on a schedule, and published as a JSON Web Key Set so
// that other services verify tokens without calling Trellis.
//
// A key's life: it signs from its creation until NotAfter, the newest such
// key signing; after NotAfter it stays published for Options.TokenTTL, until
// every token it signed has expired; then it is deleted. Every replica runs
// a Manager over the same store and converges on the same set: a replica that
// meets an unknown key id reloads the set (at most once a second).
package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trellis-testbed/trellis/internal/store"
)

// Algorithm is the JOSE algorithm of every key this package makes.
const Algorithm = "EdDSA"

// Defaults of Options.
const (
	DefaultRotateAfter = 30 * 24 * time.Hour
	DefaultTokenTTL    = time.Hour
)

// missReloadEvery bounds the reloads that unknown key ids cause, so a flood
// of tokens with made-up kids costs the store one read a second.
const missReloadEvery = time.Second

// reloadTimeout bounds a reload made on behalf of PublicKey, which has no
// context of its own.
const reloadTimeout = 5 * time.Second

// Options configure a Manager; zero fields take the defaults.
type Options struct {
	// RotateAfter is how long a new key signs (default 30 days).
	RotateAfter time.Duration
	// TokenTTL is how long a key stays published after it stops signing. It
	// must be at least the lifetime of the longest token the keys sign
	// (default 1 hour).
	TokenTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// key is one loaded key. priv is nil for keys that no longer sign: their
// private halves are never decrypted.
type key struct {
	id        string
	pub       ed25519.PublicKey
	priv      ed25519.PrivateKey
	createdAt time.Time
	notAfter  time.Time
}

func (k *key) signing(now time.Time) bool { return k.priv != nil && now.Before(k.notAfter) }

// Manager holds the signing keys in memory. It is safe for concurrent use.
type Manager struct {
	st     store.Store
	sealer Sealer
	opts   Options

	mu   sync.RWMutex
	keys []*key // newest first
	byID map[string]*key
	// jwks caches the encoded key set until the set changes: on a reload,
	// or at jwksUntil, when the first of its keys stops being published.
	jwks      []byte
	jwksUntil time.Time

	missMu     sync.Mutex
	lastMissAt time.Time // last reload caused by an unknown kid
}

// NewManager returns a Manager over st that seals private keys with sealer
// (nil means Plain). Call Init before use.
func NewManager(st store.Store, sealer Sealer, opts Options) *Manager {
	if opts.RotateAfter <= 0 {
		opts.RotateAfter = DefaultRotateAfter
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if sealer == nil {
		sealer = Plain()
	}
	return &Manager{st: st, sealer: sealer, opts: opts, byID: map[string]*key{}}
}

// What sync does besides loading and housekeeping.
type syncMode int

const (
	// modeInit creates a key when none signs now.
	modeInit syncMode = iota
	// modeMaintain creates a successor ahead of time, so replicas pick it
	// up (Maintain, or a miss in PublicKey) before the current one retires.
	modeMaintain
	// modeRotate retires every signing key now and creates a new one.
	modeRotate
)

// Init loads the keys and, when none is signing, creates one, in one
// transaction. Two replicas starting at once may both create a key; both are
// published and the newest signs.
func (m *Manager) Init(ctx context.Context) error {
	return m.sync(ctx, modeInit, "initializing signing keys")
}

// Rotate makes a new key that signs from now on. The keys that were signing
// stop (their NotAfter becomes now) and stay published for TokenTTL, so the
// tokens they signed keep verifying until they expire.
func (m *Manager) Rotate(ctx context.Context) error {
	return m.sync(ctx, modeRotate, "rotating signing keys")
}

// Maintain is the periodic job of every replica (run it every minute or so):
// it reloads the keys, deletes those no longer published, seals keys stored
// in plain once a key-encryption key is configured, and creates the next key
// when the signing one has less than a tenth of RotateAfter left.
func (m *Manager) Maintain(ctx context.Context) error {
	return m.sync(ctx, modeMaintain, "maintaining signing keys")
}

// Reload replaces the keys in memory with those in the store.
func (m *Manager) Reload(ctx context.Context) error {
	var list []*store.SigningKey
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		list, err = tx.SigningKeys().List(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("keys: reloading signing keys: %w", err)
	}
	return m.install(list)
}

func (m *Manager) sync(ctx context.Context, mode syncMode, what string) error {
	var final []*store.SigningKey
	err := m.st.Update(ctx, func(tx store.Tx) error {
		// The store may run this more than once: touch nothing outside.
		final = nil
		now := m.opts.Now()
		sks := tx.SigningKeys()
		list, err := sks.List(ctx)
		if err != nil {
			return err
		}
		var kept []*store.SigningKey
		signingUntil := time.Time{} // latest NotAfter among keys kept
		for _, sk := range list {
			if !m.published(sk.NotAfter, now) {
				if err := sks.Delete(ctx, sk.ID); err != nil {
					return fmt.Errorf("deleting retired key %s: %w", sk.ID, err)
				}
				continue
			}
			next := *sk
			changed := false
			if mode == modeRotate && now.Before(sk.NotAfter) {
				next.NotAfter, changed = now, true
			}
			if NeedsReseal(m.sealer, sk.PrivateKey) {
				if next.PrivateKey, err = m.reseal(sk.PrivateKey); err != nil {
					return fmt.Errorf("sealing key %s: %w", sk.ID, err)
				}
				changed = true
			}
			if changed {
				// SigningKeys has no update: replace the row in this
				// transaction.
				if err := sks.Delete(ctx, sk.ID); err != nil {
					return fmt.Errorf("replacing key %s: %w", sk.ID, err)
				}
				if err := sks.Create(ctx, &next); err != nil {
					return fmt.Errorf("replacing key %s: %w", sk.ID, err)
				}
			}
			if sk.Algorithm == Algorithm && next.NotAfter.After(signingUntil) {
				signingUntil = next.NotAfter
			}
			kept = append(kept, &next)
		}
		var need bool
		switch mode {
		case modeInit:
			need = !now.Before(signingUntil)
		case modeMaintain:
			need = !now.Add(m.opts.RotateAfter / 10).Before(signingUntil)
		case modeRotate:
			need = true
		}
		if need {
			sk, err := m.newKey(now)
			if err != nil {
				return err
			}
			if err := sks.Create(ctx, sk); err != nil {
				return fmt.Errorf("storing new key: %w", err)
			}
			kept = append(kept, sk)
		}
		final = kept
		return nil
	})
	if err != nil {
		return fmt.Errorf("keys: %s: %w", what, err)
	}
	if err := m.install(final); err != nil {
		return fmt.Errorf("keys: %s: %w", what, err)
	}
	return nil
}

func (m *Manager) published(notAfter, now time.Time) bool {
	return now.Before(notAfter.Add(m.opts.TokenTTL))
}

func (m *Manager) reseal(blob []byte) ([]byte, error) {
	p, err := m.sealer.Open(blob)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	return m.sealer.Seal(p)
}

func (m *Manager) newKey(now time.Time) (*store.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	// Store the 32-byte seed, the canonical private key (RFC 8032).
	sealed, err := m.sealer.Seal(priv.Seed())
	if err != nil {
		return nil, fmt.Errorf("sealing new key: %w", err)
	}
	return &store.SigningKey{
		ID:         newKeyID(),
		Algorithm:  Algorithm,
		PublicKey:  pub,
		PrivateKey: sealed,
		CreatedAt:  now,
		NotAfter:   now.Add(m.opts.RotateAfter),
	}, nil
}

// newKeyID returns 128 random bits, base64url: unique without coordination
// between replicas, and safe in URLs and headers.
func newKeyID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// install decodes the stored keys and makes them current. Keys of other
// algorithms are skipped (a newer release may add some); keys no longer
// published are dropped; private halves are opened only for keys that
// still sign.
func (m *Manager) install(list []*store.SigningKey) error {
	now := m.opts.Now()
	keys := make([]*key, 0, len(list))
	for _, sk := range list {
		if sk.Algorithm != Algorithm || !m.published(sk.NotAfter, now) {
			continue
		}
		k, err := m.decode(sk, now)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	// Newest first; ties (same clock tick) broken by id so every replica
	// agrees on which key signs.
	slices.SortFunc(keys, func(a, b *key) int {
		if c := b.createdAt.Compare(a.createdAt); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	byID := make(map[string]*key, len(keys))
	for _, k := range keys {
		byID[k.id] = k
	}
	m.mu.Lock()
	m.keys, m.byID, m.jwks = keys, byID, nil
	m.mu.Unlock()
	return nil
}

func (m *Manager) decode(sk *store.SigningKey, now time.Time) (*key, error) {
	if len(sk.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("signing key %s: public key has %d bytes, want %d", sk.ID, len(sk.PublicKey), ed25519.PublicKeySize)
	}
	k := &key{
		id:        sk.ID,
		pub:       ed25519.PublicKey(bytes.Clone(sk.PublicKey)),
		createdAt: sk.CreatedAt,
		notAfter:  sk.NotAfter,
	}
	if !now.Before(sk.NotAfter) {
		return k, nil
	}
	seed, err := m.sealer.Open(sk.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("opening signing key %s: %w", sk.ID, err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("opening signing key %s: private key has the wrong size", sk.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), k.pub) {
		return nil, fmt.Errorf("opening signing key %s: private key does not match the public key", sk.ID)
	}
	k.priv = priv
	return k, nil
}

// Signer returns the key that signs now: the newest whose NotAfter is in the
// future. It returns an empty kid and a nil key when there is none (Init was
// not called, or Maintain has not run for longer than RotateAfter).
func (m *Manager) Signer() (kid string, priv ed25519.PrivateKey) {
	now := m.opts.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys {
		if k.signing(now) {
			return k.id, k.priv
		}
	}
	return "", nil
}

// PublicKey returns the published key with this id. On a miss it reloads the
// set from the store, at most once a second, so a key that another replica
// created is found.
func (m *Manager) PublicKey(kid string) (ed25519.PublicKey, bool) {
	if pub, found, known := m.lookup(kid); known {
		return pub, found
	}
	m.missMu.Lock()
	defer m.missMu.Unlock()
	// A caller that waited for missMu may find the key loaded meanwhile.
	if pub, found, known := m.lookup(kid); known {
		return pub, found
	}
	now := m.opts.Now()
	if !m.lastMissAt.IsZero() && now.Sub(m.lastMissAt) < missReloadEvery {
		return nil, false
	}
	m.lastMissAt = now
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	if err := m.Reload(ctx); err != nil {
		// Keep serving the keys we have; the next miss a second later
		// retries. Maintain reports store trouble to the operator.
		return nil, false
	}
	pub, found, _ := m.lookup(kid)
	return pub, found
}

// lookup answers from memory. known is false when kid is not loaded at all
// (worth a reload); a loaded key whose publication ended is known and not
// found.
func (m *Manager) lookup(kid string) (pub ed25519.PublicKey, found, known bool) {
	now := m.opts.Now()
	m.mu.RLock()
	k, ok := m.byID[kid]
	m.mu.RUnlock()
	if !ok {
		return nil, false, false
	}
	if !m.published(k.notAfter, now) {
		return nil, false, true
	}
	return k.pub, true, true
}

// JWKS returns the published keys as a JSON Web Key Set (RFC 7517; Ed25519
// keys as in RFC 8037), newest first. The bytes are cached until the set
// changes; callers must not modify them.
func (m *Manager) JWKS() ([]byte, error) {
	now := m.opts.Now()
	m.mu.RLock()
	b, until := m.jwks, m.jwksUntil
	m.mu.RUnlock()
	if b != nil && now.Before(until) {
		return b, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jwks != nil && now.Before(m.jwksUntil) {
		return m.jwks, nil
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	until = time.Time{}
	for _, k := range m.keys {
		end := k.notAfter.Add(m.opts.TokenTTL)
		if !now.Before(end) {
			continue
		}
		if until.IsZero() || end.Before(until) {
			until = end
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.id, Algorithm: Algorithm, Use: "sig"})
	}
	if until.IsZero() {
		// Empty set: it changes only on a reload, which clears the cache.
		until = now.Add(100 * 365 * 24 * time.Hour)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("keys: encoding the key set: %w", err)
	}
	m.jwks, m.jwksUntil = b, until
	return b, nil
}
