package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Sealer protects private keys at rest. Sealed blobs carry a format tag, so
// a store may hold blobs of several formats and each is opened by its own.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
	// Encrypted reports whether Seal encrypts (false for Plain).
	Encrypted() bool
}

// Format tags of sealed blobs.
const (
	tagPlain  = "plain:"
	tagAESGCM = "aesgcm1:"
)

// KEKSize is the size of a key-encryption key: AES-256.
const KEKSize = 32

// ErrEncrypted is returned by the plain sealer's Open for an encrypted blob.
var ErrEncrypted = errors.New("signing keys are encrypted; configure the key-encryption key")

// ErrWrongKEK is returned when an encrypted blob does not open: the
// key-encryption key is not the one that sealed it, or the blob is damaged.
var ErrWrongKEK = errors.New("cannot decrypt signing key: wrong key-encryption key, or the stored key is damaged")

// NeedsReseal reports whether blob is in another format than s writes, and
// should be opened and sealed again with s: keys stored in plain before a
// key-encryption key was configured.
func NeedsReseal(s Sealer, blob []byte) bool {
	return s.Encrypted() && bytes.HasPrefix(blob, []byte(tagPlain))
}

// Plain returns the sealer that stores keys unencrypted, for deployments
// without a key-encryption key. Its Open refuses encrypted blobs.
func Plain() Sealer { return plainSealer{} }

type plainSealer struct{}

func (plainSealer) Encrypted() bool { return false }

func (plainSealer) Seal(p []byte) ([]byte, error) {
	return append([]byte(tagPlain), p...), nil
}

func (plainSealer) Open(b []byte) ([]byte, error) { return openPlain(b) }

func openPlain(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, []byte(tagPlain)):
		return bytes.Clone(b[len(tagPlain):]), nil
	case bytes.HasPrefix(b, []byte(tagAESGCM)):
		return nil, ErrEncrypted
	}
	return nil, errors.New("sealed key has an unknown format")
}

// NewAESGCM returns a sealer that encrypts with AES-256-GCM under kek, a
// random 96-bit nonce per blob. A blob is "aesgcm1:" || nonce || ciphertext;
// the tag is authenticated as additional data, so a blob cannot be passed
// off as another format. It opens plain blobs too (see NeedsReseal).
func NewAESGCM(kek []byte) (Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return aesGCMSealer{aead: aead}, nil
}

type aesGCMSealer struct{ aead cipher.AEAD }

func (aesGCMSealer) Encrypted() bool { return true }

func (s aesGCMSealer) Seal(p []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, len(tagAESGCM)+ns, len(tagAESGCM)+ns+len(p)+s.aead.Overhead())
	copy(out, tagAESGCM)
	nonce := out[len(tagAESGCM):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	return s.aead.Seal(out, nonce, p, []byte(tagAESGCM)), nil
}

func (s aesGCMSealer) Open(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte(tagAESGCM)) {
		return openPlain(b)
	}
	body := b[len(tagAESGCM):]
	ns := s.aead.NonceSize()
	if len(body) < ns+s.aead.Overhead() {
		return nil, errors.New("sealed key is truncated")
	}
	p, err := s.aead.Open(nil, body[:ns], body[ns:], []byte(tagAESGCM))
	if err != nil {
		return nil, ErrWrongKEK
	}
	return p, nil
}

// LoadKEKFile reads a key-encryption key: a file holding 32 bytes, hex or
// base64 encoded (surrounding white space ignored). It refuses a file that
// group or others may access, like ssh refuses a readable private key, since
// the key-encryption key is what stands between a stolen database and forged
// tokens.
func LoadKEKFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key-encryption key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key-encryption key file %s is accessible by group or others (mode %04o); restrict it with chmod 600", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file: %w", err)
	}
	kek, err := decodeKEK(strings.TrimSpace(string(data)))
	if err != nil {
		// The reason never quotes the content: it is the secret.
		return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return kek, nil
}

// LoadOrCreateKEKFile reads the key-encryption key at path as LoadKEKFile
// does, or, when there is no file there, makes a random one and writes it
// there (base64, mode 0600, its directory created 0700 if missing); created
// says which. Two processes creating it at once agree on one key: the file
// is created exclusively, and the loser reads the winner's.
func LoadOrCreateKEKFile(path string) (kek []byte, created bool, err error) {
	if _, err := os.Lstat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		kek, err := LoadKEKFile(path)
		return kek, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("key-encryption key file: %w", err)
	}
	kek = make([]byte, KEKSize)
	_, _ = rand.Read(kek) // never fails (crypto/rand, Go 1.24+)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		kek, err := LoadKEKFile(path)
		return kek, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("key-encryption key file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(kek) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return kek, true, nil
}

func decodeKEK(s string) ([]byte, error) {
	if len(s) == 2*KEKSize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KEKSize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes encoded in hex (%d digits) or base64 (e.g. from `openssl rand -base64 32`)", KEKSize, 2*KEKSize)
}
