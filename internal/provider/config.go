// Package provider is the site side of Trellis: `trellis provider serve`
// verifies the centre's tokens offline, maps Trellis users to local
// accounts, checks the user's own signature on every request and runs the
// work in a per-user worker process as the mapped account.
package provider

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File names in the data directory.
const (
	ConfigFile = "provider.json"
	KeyFile    = "site.key"
	StateFile  = "state.json"
	AuditFile  = "audit.log"
	SocketName = "worker.sock"
)

// Config is the site's configuration, written by `trellis provider init`
// for the operator to read and edit.
type Config struct {
	// Name is the site's name at the centre; Central the centre's URL.
	Name    string `json:"name"`
	Central string `json:"central"`
	// Issuer, JWKSURL and Audience check the centre's tokens;
	// CentreAudience addresses the site's own JWTs to the centre.
	Issuer         string `json:"issuer"`
	JWKSURL        string `json:"jwks_url"`
	Audience       string `json:"audience"`
	CentreAudience string `json:"centre_audience"`
	// CentralCAFile, when set, is the PEM CA the centre's certificate is
	// checked against instead of the system's.
	CentralCAFile string `json:"central_ca_file,omitempty"`

	// Listen is the site's address. Without TLSCert and TLSKey it must be
	// a loopback address (development).
	Listen  string `json:"listen"`
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`

	// Mapper maps a Trellis uid to a local account: "pattern:tb_{uid}",
	// "static:FILE" (lines "uid account") or "command:PATH" (PATH uid
	// prints the account).
	Mapper string `json:"mapper"`
	// MinUID is the lowest local uid a user may be mapped to.
	MinUID int `json:"min_uid"`
	// Launcher starts workers: "setuid" (the server holds CAP_SETUID and
	// CAP_SETGID) or "sudo" (a narrow sudoers rule).
	Launcher string `json:"launcher"`
	// SocketDir holds the Unix socket workers connect to; it must be
	// reachable (searchable) by the mapped accounts.
	SocketDir string `json:"socket_dir"`
	// RequireUserSignature refuses requests without the user's own
	// signature (default true): a takeover of the centre cannot act here.
	RequireUserSignature bool `json:"require_user_signature"`

	// Driver materializes realizations: "sim" (in memory), "netns"
	// (network namespaces on this machine; needs CAP_NET_ADMIN and
	// CAP_SYS_ADMIN), one a custom build registered (RegisterDriver), or
	// empty: this site refuses materialization deliveries.
	Driver string `json:"driver,omitempty"`

	// Limits.
	ExecTimeout     Duration `json:"exec_timeout"`
	MaxOutputBytes  int      `json:"max_output_bytes"`
	WorkerIdle      Duration `json:"worker_idle"`
	MapperTimeout   Duration `json:"mapper_timeout"`
	SignatureMaxAge Duration `json:"signature_max_age"`
	// MaxTransferBytes bounds one uploaded or downloaded file;
	// TransferTimeout one transfer's time.
	MaxTransferBytes int64    `json:"max_transfer_bytes"`
	TransferTimeout  Duration `json:"transfer_timeout"`
}

// Duration is a time.Duration written as "30s" in the config file.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Defaults fills what the file leaves out.
func (c *Config) Defaults(dataDir string) {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&c.ExecTimeout, time.Minute)
	def(&c.WorkerIdle, 10*time.Minute)
	def(&c.MapperTimeout, 5*time.Second)
	def(&c.SignatureMaxAge, 60*time.Second)
	def(&c.TransferTimeout, 10*time.Minute)
	if c.MaxTransferBytes == 0 {
		c.MaxTransferBytes = 1 << 30
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = 1 << 20
	}
	if c.MinUID == 0 {
		c.MinUID = 1000
	}
	if c.Launcher == "" {
		c.Launcher = "setuid"
	}
	if c.Mapper == "" {
		c.Mapper = "pattern:{uid}"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7800"
	}
	if c.SocketDir == "" {
		c.SocketDir = filepath.Join(dataDir, "run")
	}
}

// LoadConfig reads DIR/provider.json. require_user_signature defaults to
// true when the file does not say.
func LoadConfig(dir string) (*Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("reading the site's config (run trellis provider init first): %w", err)
	}
	c := Config{RequireUserSignature: true}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	c.Defaults(dir)
	if c.Name == "" || c.Issuer == "" || c.Audience == "" || c.CentreAudience == "" || c.Central == "" {
		return nil, fmt.Errorf("%s: name, central, issuer, audience and centre_audience are required", filepath.Join(dir, ConfigFile))
	}
	switch c.Launcher {
	case "setuid", "sudo":
	default:
		return nil, fmt.Errorf("%s: launcher is setuid or sudo, not %q", filepath.Join(dir, ConfigFile), c.Launcher)
	}
	if !knownDriver(c.Driver) {
		return nil, fmt.Errorf("%s: driver is sim, netns, a registered one or empty (none), not %q", filepath.Join(dir, ConfigFile), c.Driver)
	}
	if c.MinUID < 1 {
		return nil, errors.New("min_uid must be at least 1: never map to root")
	}
	if _, err := newMapper(c.Mapper, time.Duration(c.MapperTimeout)); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return &c, nil
}

// Save writes the config file (0644: nothing in it is secret).
func (c *Config) Save(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ConfigFile), append(b, '\n'), 0o644)
}

// writeFileAtomic replaces path with b: a crash leaves the old file or the
// new one, never half of one.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// NewKey makes an Ed25519 key and writes it to path (PKCS #8 PEM, 0600);
// it refuses to replace one.
func NewKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, err
	}
	return priv, f.Close()
}

// LoadKey reads an Ed25519 key NewKey wrote; it refuses a file others may
// read.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return priv, nil
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
