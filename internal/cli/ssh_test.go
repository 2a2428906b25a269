package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFiles(t *testing.T) {
	for in, want := range map[string][2]string{
		"/h/.ssh/id_ed25519":     {"/h/.ssh/id_ed25519.pub", "/h/.ssh/id_ed25519-cert.pub"},
		"/h/.ssh/id_ed25519.pub": {"/h/.ssh/id_ed25519.pub", "/h/.ssh/id_ed25519-cert.pub"},
		"x.pub":                  {"x.pub", "x-cert.pub"},
	} {
		if pub, cert := keyFiles(in); pub != want[0] || cert != want[1] {
			t.Errorf("keyFiles(%q) = %q, %q; want %q", in, pub, cert, want)
		}
	}
}

func TestReadPublicKeyNeverReadsPrivateKeys(t *testing.T) {
	dir := t.TempDir()
	const pubLine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPV2x8xN/qWHfVW/2KB4rnJjgDQVGGL0bFL1Qec6K0zi me@box"
	const private = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	id := write("id", private)
	write("id.pub", pubLine+"\n")
	lone := write("lone", private)

	// The private key's path reads the .pub beside it.
	if got, err := readPublicKey(id); err != nil || got != pubLine {
		t.Errorf("readPublicKey(id) = %q, %v", got, err)
	}
	// A private key alone is refused before anything is sent.
	got, err := readPublicKey(lone)
	if err == nil || !strings.Contains(err.Error(), "private key") || strings.Contains(err.Error(), "secret") || got != "" {
		t.Errorf("readPublicKey(lone) = %q, %v", got, err)
	}
	if _, err := readPublicKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was read")
	}
}
