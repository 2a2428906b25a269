package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKEK(b byte) []byte { return bytes.Repeat([]byte{b}, KEKSize) }

func TestAESGCMRoundTrip(t *testing.T) {
	s, err := NewAESGCM(testKEK(1))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("thirty-two bytes of private seed")
	a, err := s.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal(secret)
	if !bytes.HasPrefix(a, []byte("aesgcm1:")) {
		t.Fatalf("sealed blob lacks its format tag")
	}
	if bytes.Contains(a, secret) {
		t.Fatal("sealed blob contains the plaintext")
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are equal: nonce is not random")
	}
	got, err := s.Open(a)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if !s.Encrypted() || Plain().Encrypted() {
		t.Fatal("Encrypted() is wrong")
	}
}

func TestAESGCMWrongKEK(t *testing.T) {
	s1, _ := NewAESGCM(testKEK(1))
	s2, _ := NewAESGCM(testKEK(2))
	blob, _ := s1.Seal([]byte("secret seed"))
	_, err := s2.Open(blob)
	if !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("Open with the wrong KEK = %v, want ErrWrongKEK", err)
	}
	if !strings.Contains(err.Error(), "wrong key-encryption key") {
		t.Fatalf("error %q does not say what is wrong", err)
	}
	// Damage: flip one bit of the ciphertext, and truncate.
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	if _, err := s1.Open(bad); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("Open of a damaged blob = %v, want ErrWrongKEK", err)
	}
	if _, err := s1.Open(blob[:len("aesgcm1:")+4]); err == nil {
		t.Fatal("Open of a truncated blob succeeded")
	}
}

func TestPlainAndMixedFormats(t *testing.T) {
	plain := Plain()
	enc, _ := NewAESGCM(testKEK(1))
	pblob, _ := plain.Seal([]byte("seed"))
	if string(pblob) != "plain:seed" {
		t.Fatalf("plain blob = %q", pblob)
	}
	// An encrypting sealer opens plain blobs (keys from before the KEK) and
	// says they need sealing.
	if got, err := enc.Open(pblob); err != nil || string(got) != "seed" {
		t.Fatalf("AES-GCM Open(plain blob) = %q, %v", got, err)
	}
	if !NeedsReseal(enc, pblob) {
		t.Fatal("NeedsReseal(aesgcm, plain blob) = false")
	}
	eblob, _ := enc.Seal([]byte("seed"))
	if NeedsReseal(enc, eblob) || NeedsReseal(plain, pblob) || NeedsReseal(plain, eblob) {
		t.Fatal("NeedsReseal true for a blob in the sealer's own format")
	}
	// The plain sealer refuses encrypted blobs, clearly.
	_, err := plain.Open(eblob)
	if !errors.Is(err, ErrEncrypted) || !strings.Contains(err.Error(), "configure the key-encryption key") {
		t.Fatalf("plain Open(encrypted blob) = %v, want ErrEncrypted", err)
	}
	for _, s := range []Sealer{plain, enc} {
		if _, err := s.Open([]byte("rot13:abc")); err == nil {
			t.Fatal("Open accepted an unknown format")
		}
	}
}

func TestNewAESGCMKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewAESGCM(make([]byte, n)); err == nil {
			t.Errorf("NewAESGCM(%d bytes) succeeded; want AES-256 only", n)
		}
	}
}

func TestLoadKEKFile(t *testing.T) {
	kek := testKEK(7)
	kek[0] = 0xfe
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string
	}{
		{"hex", hex.EncodeToString(kek) + "\n", 0o600, ""},
		{"base64", base64.StdEncoding.EncodeToString(kek) + "\n", 0o400, ""},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(kek), 0o600, ""},
		{"group readable", hex.EncodeToString(kek), 0o640, "accessible by group or others"},
		{"world readable", hex.EncodeToString(kek), 0o604, "accessible by group or others"},
		{"short", base64.StdEncoding.EncodeToString(kek[:16]), 0o600, "want 32 bytes"},
		{"garbage", "not a key at all", 0o600, "want 32 bytes"},
		{"empty", "", 0o600, "want 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil { // umask may have narrowed it
				t.Fatal(err)
			}
			got, err := LoadKEKFile(p)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(got, kek) {
					t.Fatalf("LoadKEKFile = %x, %v; want %x", got, err, kek)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadKEKFile error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.content != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.content)) {
				t.Fatalf("error %q quotes the file content", err)
			}
		})
	}
	if _, err := LoadKEKFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("LoadKEKFile(missing file) succeeded")
	}
}

func TestLoadOrCreateKEKFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new", "trellis.kek")
	kek, created, err := LoadOrCreateKEKFile(p)
	if err != nil || !created || len(kek) != KEKSize {
		t.Fatalf("first call = %d bytes, created %v, %v; want a new %d-byte key", len(kek), created, err, KEKSize)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", perm)
	}
	if _, err := NewAESGCM(kek); err != nil {
		t.Fatal(err)
	}
	again, created, err := LoadOrCreateKEKFile(p)
	if err != nil || created || !bytes.Equal(again, kek) {
		t.Fatalf("second call = created %v, %v, same key %v; want the first call's key", created, err, bytes.Equal(again, kek))
	}
	// A file others may read is refused, not replaced.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKEKFile(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable file: err %v, want a refusal naming chmod 600", err)
	}
}
