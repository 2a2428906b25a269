package password

import (
	"errors"
	"strings"
	"testing"
)

// Vectors from each format's own references, not from this package: the
// SHA-512-crypt one is the example of Drepper's specification, the bcrypt
// one is from OpenBSD's and crypt_blowfish's test vectors (the $2b$ and $2y$
// variants hash an ASCII password alike), and the MD5-crypt and Django
// PBKDF2 ones were made with `openssl passwd -1` and Python's
// hashlib.pbkdf2_hmac.
var legacyVectors = []struct {
	format, hash, password string
}{
	{"sha512-crypt", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!"},
	{"sha512-crypt", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.", "Hello world!"},
	{"bcrypt", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	{"bcrypt", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	{"bcrypt", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
	{"md5-crypt", "$1$saltsalt$NuzA7WTAelpl95xgBGWN60", "correct horse"},
	{"pbkdf2-sha256", "pbkdf2_sha256$1000$abc$2wl2bMVqW4pHUr1tsBwbMhI3lHL6rqnbiyh56gWJTH8=", "hunter2-legacy"},
}

func TestVerifyLegacy(t *testing.T) {
	h := &Hasher{Params: TestParams()}
	for _, v := range legacyVectors {
		t.Run(v.hash[:4], func(t *testing.T) {
			if f := Format(v.hash); f != v.format {
				t.Fatalf("Format = %q, want %q", f, v.format)
			}
			if err := CheckImportable(v.hash); err != nil {
				t.Fatalf("CheckImportable: %v", err)
			}
			ok, rehash, err := h.Verify(v.hash, v.password)
			if err != nil || !ok || !rehash {
				t.Fatalf("Verify(right password) = %v, %v, %v; want true, true, nil", ok, rehash, err)
			}
			for _, wrong := range []string{"", v.password + "x", v.password[:len(v.password)-1]} {
				if ok, _, err := h.Verify(v.hash, wrong); ok || err != nil {
					t.Errorf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
		})
	}
}

func TestCheckImportableRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, hash string
		want       error
	}{
		{"unknown scheme", "$5$salt$abcdef", ErrUnknownFormat},
		{"plain text", "hunter2", ErrUnknownFormat},
		{"empty", "", ErrUnknownFormat},
		{"bcrypt cost too high", "$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrMalformedHash},
		{"bcrypt truncated", "$2a$05$CCCC", ErrMalformedHash},
		{"sha512-crypt rounds too high", "$6$rounds=999999999$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.", ErrMalformedHash},
		{"sha512-crypt short", "$6$salt$abc", ErrMalformedHash},
		{"md5-crypt short", "$1$salt$abc", ErrMalformedHash},
		{"pbkdf2 iterations too high", "pbkdf2_sha256$900000000$abc$2wl2bMVqW4pHUr1tsBwbMhI3lHL6rqnbiyh56gWJTH8=", ErrMalformedHash},
		{"pbkdf2 not base64", "pbkdf2_sha256$1000$abc$!!!", ErrMalformedHash},
		{"argon2id malformed", "$argon2id$v=19$m=1", ErrMalformedHash},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckImportable(tt.hash)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckImportable = %v, want %v", err, tt.want)
			}
			if len(tt.hash) > 12 && strings.Contains(err.Error(), tt.hash[len(tt.hash)-10:]) {
				t.Fatalf("error shows the hash: %v", err)
			}
			// Verify refuses it too, without panicking.
			h := &Hasher{Params: TestParams()}
			if ok, _, err := h.Verify(tt.hash, "pw"); ok || err == nil {
				t.Fatalf("Verify = %v, %v; want an error", ok, err)
			}
		})
	}
}
