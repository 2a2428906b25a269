package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerifyRoundTrip(t *testing.T) {
	h := &Hasher{Params: TestParams()}
	for _, pw := range []string{"correct horse battery", "", "ünïcødé pässwörd ✓", strings.Repeat("x", 256)} {
		enc, err := h.Hash(pw)
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("encoding %q lacks the PHC prefix", enc)
		}
		ok, rehash, err := h.Verify(enc, pw)
		if err != nil || !ok || rehash {
			t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		ok, _, err = h.Verify(enc, pw+"x")
		if err != nil || ok {
			t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
		}
	}
}

func TestHashSalted(t *testing.T) {
	h := &Hasher{Params: TestParams()}
	a, _ := h.Hash("same password")
	b, _ := h.Hash("same password")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestZeroHasherUsesDefaults(t *testing.T) {
	var h Hasher
	want := Params{Time: 2, MemoryKiB: 65536, Threads: 2, SaltLen: 16, KeyLen: 32}
	if DefaultParams() != want {
		t.Fatalf("DefaultParams = %+v, want %+v", DefaultParams(), want)
	}
	if h.params() != want {
		t.Fatalf("zero Hasher params = %+v, want DefaultParams", h.params())
	}
}

func TestNeedsRehash(t *testing.T) {
	old := &Hasher{Params: TestParams()}
	enc, err := old.Hash("a fine password")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Params)
		want   bool
	}{
		{"same", func(*Params) {}, false},
		{"more time", func(p *Params) { p.Time++ }, true},
		{"more memory", func(p *Params) { p.MemoryKiB *= 2 }, true},
		{"more threads", func(p *Params) { p.Threads++ }, true},
		{"longer salt", func(p *Params) { p.SaltLen = 32 }, true},
		{"longer key", func(p *Params) { p.KeyLen = 64 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := TestParams()
			tt.change(&p)
			ok, rehash, err := (&Hasher{Params: p}).Verify(enc, "a fine password")
			if err != nil || !ok {
				t.Fatalf("Verify = %v, %v; want true, nil (old hashes keep verifying)", ok, err)
			}
			if rehash != tt.want {
				t.Fatalf("needsRehash = %v, want %v", rehash, tt.want)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := &Hasher{Params: TestParams()}
	good, _ := h.Hash("a fine password")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	tests := []struct{ name, enc string }{
		{"empty", ""},
		{"bcrypt truncated", "$2a$10$N9qo8uLOickgx2ZMRZoMye"}, // bcrypt itself is a legacy format (legacy_test.go)
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"param order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"param missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"param not a number", "$argon2id$v=19$m=x,t=1,p=1$" + salt + "$" + key},
		{"threads overflow", "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"bad base64 hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-2] + "!!"},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"trailing field", good + "$x"},
		{"no leading dollar", strings.TrimPrefix(good, "$")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(tt.enc, "a fine password")
			if err == nil || ok || rehash {
				t.Fatalf("Verify = %v, %v, %v; want false, false, error", ok, rehash, err)
			}
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
			if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "fine password") {
				t.Fatalf("error text %q leaks the hash or the password", err)
			}
		})
	}
}

func TestHashRefusesBadParams(t *testing.T) {
	for _, p := range []Params{
		{Time: 0, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 4, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := (&Hasher{Params: p}).Hash("a fine password"); err == nil {
			t.Errorf("Hash with %+v succeeded; want an error", p)
		}
		(&Hasher{Params: p}).Equalize("must not panic")
	}
}

func TestEqualize(t *testing.T) {
	// Equalize must run argon2 with the hasher's parameters without
	// panicking; its timing is the business of BenchmarkEqualizeDefault.
	(&Hasher{Params: TestParams()}).Equalize("whatever")
	p := TestParams()
	p.SaltLen = maxSaltLen
	(&Hasher{Params: p}).Equalize("whatever")
}

var sink bool

func BenchmarkHashDefault(b *testing.B) {
	h := &Hasher{Params: DefaultParams()}
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDefault is the per-login cost of DefaultParams.
func BenchmarkVerifyDefault(b *testing.B) {
	h := &Hasher{Params: DefaultParams()}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ok, _, err := h.Verify(enc, "correct horse battery staple")
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		sink = ok
	}
}

// BenchmarkEqualizeDefault should match BenchmarkVerifyDefault: it is what an
// unknown uid costs.
func BenchmarkEqualizeDefault(b *testing.B) {
	h := &Hasher{Params: DefaultParams()}
	for b.Loop() {
		h.Equalize("correct horse battery staple")
	}
}
