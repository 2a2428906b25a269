package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

// A server that starts without an administrator writes a bootstrap file:
// where it listens and a one-time token by which `trellis admin bootstrap`
// creates the first administrator through it (Admin/Bootstrap), since the
// embedded store cannot be opened by a second process while the server
// holds it. The file is readable by the server's account only, the token
// is never logged, and both go once the token is spent or the server stops.

// BootstrapFileName is the bootstrap file's name in the data directory.
const BootstrapFileName = "bootstrap.json"

// bootstrapFile is the bootstrap file's content.
type bootstrapFile struct {
	// Server is the URL to reach the server from this machine.
	Server string `json:"server"`
	Token  string `json:"token"`
	// CertificatePEM, under TLS, is the server's certificate: the client
	// accepts exactly it (the file is as trusted as the server's account).
	CertificatePEM string `json:"certificate_pem,omitempty"`
}

// armBootstrap arms a fresh bootstrap token and writes the file at path;
// it returns a function that removes the file (at shutdown).
func (s *Server) armBootstrap(path string, ln net.Listener) (func(), error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	f := bootstrapFile{Server: localURL(ln.Addr(), s.tls != nil), Token: base64.RawURLEncoding.EncodeToString(b[:])}
	if s.tls != nil && len(s.tls.Certificates) > 0 && len(s.tls.Certificates[0].Certificate) > 0 {
		f.CertificatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tls.Certificates[0].Certificate[0]}))
	}
	body, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bootstrap file: %w", err)
	}
	// Written whole under a temporary name, then renamed: a reader never
	// sees half a file, and an old file's mode cannot leak into the new.
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, append(body, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("bootstrap file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("bootstrap file: %w", err)
	}
	remove := func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("could not remove the bootstrap file", "file", path, "err", err)
		}
	}
	s.Service.ArmBootstrap(f.Token, func() {
		remove()
		s.log.Info("the first administrator was created with the bootstrap token; its file is removed", "file", path)
	})
	return remove, nil
}

// localURL is how a client on this machine reaches a listener at addr: an
// unspecified address (0.0.0.0, ::) is reached on loopback.
func localURL(addr net.Addr, tlsOn bool) string {
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// errServerGone says that the server a bootstrap file names does not
// answer: the file is stale (the server was killed).
var errServerGone = errors.New("the server named in the bootstrap file does not answer")

// bootstrapThroughServer creates the first administrator through the
// running server that wrote the bootstrap file at path.
func bootstrapThroughServer(ctx context.Context, path, uid, email, pw string) (*trellisv1.User, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read the bootstrap file: %w", err)
	}
	var f bootstrapFile
	if err := json.Unmarshal(b, &f); err != nil || f.Server == "" || f.Token == "" {
		return nil, "", fmt.Errorf("the bootstrap file %s is not one a Trellis server wrote", path)
	}
	u, err := url.Parse(f.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, "", fmt.Errorf("the bootstrap file %s names no server URL", path)
	}
	tr := &http.Transport{}
	if f.CertificatePEM != "" {
		block, _ := pem.Decode([]byte(f.CertificatePEM))
		if block == nil {
			return nil, "", fmt.Errorf("the bootstrap file %s holds no certificate", path)
		}
		want := block.Bytes
		tr.TLSClientConfig = &tls.Config{
			// The server is the one whose certificate the file pins, not
			// one a CA vouches for: loopback carries no name to check.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
					return errors.New("the server's certificate is not the one in the bootstrap file")
				}
				return nil
			},
		}
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	c := trellisv1connect.NewAdminClient(hc, f.Server)
	resp, err := c.Bootstrap(ctx, connect.NewRequest(&trellisv1.BootstrapRequest{BootstrapToken: f.Token, Uid: uid, Email: email, Password: pw}))
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) && ne.Op == "dial" {
			return nil, f.Server, errServerGone
		}
		return nil, f.Server, err
	}
	return resp.Msg.GetUser(), f.Server, nil
}

// bootstrapDirect creates the first administrator on the store directly
// (no server runs on it). It says which store it uses, and refuses to make
// a new embedded store in a directory nobody named.
func bootstrapDirect(ctx context.Context, w io.Writer, sc StoreConfig, dirNamed bool, uid, email, pw string) (*domain.User, error) {
	if sc.Database != "" {
		fmt.Fprintf(w, "Using the PostgreSQL database %s.\n", redactURL(sc.Database))
	} else {
		dir, err := filepath.Abs(dataDir(sc))
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, "trellis.db")); err != nil && !dirNamed {
			return nil, fmt.Errorf("no Trellis store in %s (the default --data-dir): name the store with --data-dir or --database (TRELLIS_DATA_DIR, TRELLIS_DATABASE), as for serve", dir)
		}
		fmt.Fprintf(w, "Using the embedded store in %s.\n", dir)
	}
	var u *domain.User
	err := withService(ctx, sc, func(svc *service.Service) error {
		var err error
		u, err = svc.Bootstrap(ctx, uid, email, pw)
		return err
	})
	return u, err
}

// dataDir is the embedded store's directory.
func dataDir(sc StoreConfig) string {
	if sc.DataDir == "" {
		return "trellis-data"
	}
	return sc.DataDir
}

// redactURL drops the password from a database URL, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
