// Package password hashes passwords with Argon2id and checks new passwords
// against Trellis's password policy.
//
// Hashes are stored in the PHC string format that other Argon2 libraries
// read and write:
//
//	$argon2id$v=19$m=65536,t=2,p=2$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. The parameters travel with
// every hash, so raising them later only makes old hashes "need a rehash":
// the next successful login stores a new one (see Hasher.Verify).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the Argon2id cost parameters.
type Params struct {
	Time      uint32 // passes over memory (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // lanes (p)
	SaltLen   uint32 // bytes of random salt
	KeyLen    uint32 // bytes of derived hash
}

// DefaultParams are the production parameters: 64 MiB, two passes, two
// lanes (RFC 9106's second recommended option is 64 MiB with t=3, p=4; the
// testbed's two-core servers take p=2 and t=2 to keep a login under ~100 ms).
func DefaultParams() Params {
	return Params{Time: 2, MemoryKiB: 64 * 1024, Threads: 2, SaltLen: 16, KeyLen: 32}
}

// TestParams are cheap parameters for tests of other packages. Never use
// them in production: they offer almost no resistance to guessing.
func TestParams() Params {
	return Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Sanity bounds. They refuse parameters that argon2 would reject (or panic
// on) and encoded hashes whose parameters would make one Verify a denial of
// service (a tampered row asking for 1 TiB of memory).
const (
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
	maxTime      = 64
	maxMemoryKiB = 4 * 1024 * 1024 // 4 GiB
)

func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d out of range 1..%d", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		// argon2 needs at least 8 KiB per lane.
		return fmt.Errorf("memory %d KiB out of range %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d out of range %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d out of range %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hasher hashes and verifies passwords. The zero Hasher uses DefaultParams.
// It is safe for concurrent use.
//
// Each Hash, Verify or Equalize allocates Params.MemoryKiB of memory; callers
// that accept logins from the network should bound how many run at once.
type Hasher struct {
	Params Params
}

func (h *Hasher) params() Params {
	if h.Params == (Params{}) {
		return DefaultParams()
	}
	return h.Params
}

// Effective returns the parameters h hashes with: Params, or DefaultParams
// when they are zero.
func (h *Hasher) Effective() Params { return h.params() }

// Validate reports whether p are parameters this package accepts: within
// the bounds that keep one derivation from being a denial of service.
func (p Params) Validate() error { return p.validate() }

var b64 = base64.RawStdEncoding

// Hash returns the PHC-encoded Argon2id hash of password with a fresh salt.
func (h *Hasher) Hash(password string) (string, error) {
	p := h.params()
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("password: invalid hasher parameters: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the encoded hash. needsRehash is
// true when the hash was made with parameters other than h's, so the caller
// should store a fresh Hash after a successful login. err is set only when
// encoded is not a well-formed Argon2id hash; its text never contains the
// hash or the password.
//
// A hash in a legacy format that accounts migrated from older testbeds
// bring (see legacy.go) is verified too, and always needs a rehash: the
// first successful login replaces it.
func (h *Hasher) Verify(encoded, password string) (ok bool, needsRehash bool, err error) {
	if f := Format(encoded); f != "argon2id" && f != "" {
		ok, err := verifyLegacy(encoded, password)
		return ok, err == nil, err
	}
	d, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), d.salt, d.params.Time, d.params.MemoryKiB, d.params.Threads, d.params.KeyLen)
	ok = subtle.ConstantTimeCompare(key, d.key) == 1
	return ok, d.params != h.params(), nil
}

// equalizeSalt is a fixed salt for Equalize: its result is thrown away, so
// it needs no randomness, only the right length.
var equalizeSalt = make([]byte, maxSaltLen)

// Equalize spends the time and memory of a Verify against a hash made with
// h's parameters, and throws the result away. Call it when the account does
// not exist (or has no password), so that the response time does not tell
// an unknown uid from a wrong password.
func (h *Hasher) Equalize(password string) {
	p := h.params()
	if p.validate() != nil {
		// Hash and Verify refuse these parameters too: nothing to match.
		return
	}
	_ = argon2.IDKey([]byte(password), equalizeSalt[:p.SaltLen], p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
}

type decoded struct {
	params Params
	salt   []byte
	key    []byte
}

// ErrMalformedHash is wrapped by every error about an encoded hash that
// cannot be parsed.
var ErrMalformedHash = errors.New("password: malformed argon2id hash")

func malformed(reason string) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, reason)
}

// decode parses a PHC string strictly: the exact field order this package
// writes, version 19 only. Reasons name the part that is wrong, never its
// value, since the hash is a secret too.
func decode(encoded string) (*decoded, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, malformed("expected $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[1] != "argon2id" {
		return nil, malformed("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, malformed("unsupported argon2 version")
	}
	var p Params
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return nil, malformed("parameters must be m=…,t=…,p=…")
	}
	for i, name := range []string{"m", "t", "p"} {
		k, v, found := strings.Cut(kv[i], "=")
		if !found || k != name {
			return nil, malformed("parameters must be m=…,t=…,p=…")
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return nil, malformed("parameter " + name + " is not a number in range")
		}
		switch name {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(n)
		}
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil {
		return nil, malformed("salt is not unpadded base64")
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil {
		return nil, malformed("hash is not unpadded base64")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.validate(); err != nil {
		return nil, malformed(err.Error())
	}
	return &decoded{params: p, salt: salt, key: key}, nil
}
