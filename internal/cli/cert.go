package cli

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// Files of the X.509 client certificate in the config directory.
const (
	certFileName = "cert.pem"
	keyFileName  = "key.pem"
)

func newCertCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "X.509 client certificates for mutual TLS",
	}
	cmd.AddCommand(newCertGetCmd(a), newCertShowCmd(a))
	return cmd
}

func newCertGetCmd(a *app) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "get UID",
		Short: "Log in and save a client certificate bound to the session",
		Long: `Log in with a password, asking for an X.509 client certificate bound to the
new session, and save it (cert.pem, followed by the CA certificate) and its
key (key.pem) in the config directory, readable by you only. The session's
tokens are saved as by trellis login. Over mutual TLS the certificate is you
until the session ends (trellis logout) or 24 hours pass.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			uid := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			password, err := a.secrets(fromStdin).read("Password for " + uid + ": ")
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			resp, err := c.anonAuth.Login(cmd.Context(), connect.NewRequest(&trellisv1.LoginRequest{Uid: uid, Password: password, IssueClientCertificate: true}))
			if err != nil {
				return err
			}
			tokens := resp.Msg.GetTokens()
			if tokens.GetAccessToken() == "" || resp.Msg.GetClientCertificatePem() == "" || resp.Msg.GetClientKeyPem() == "" {
				return errors.New("the server returned no client certificate")
			}
			if err := os.MkdirAll(c.store.dir, 0o700); err != nil {
				return err
			}
			certPath, keyPath := filepath.Join(c.store.dir, certFileName), filepath.Join(c.store.dir, keyFileName)
			if err := writePrivate(keyPath, resp.Msg.GetClientKeyPem()); err != nil {
				return err
			}
			if err := writePrivate(certPath, resp.Msg.GetClientCertificatePem()); err != nil {
				return err
			}
			creds := &credentials{Server: c.server, UID: uid}
			creds.applyTokens(tokens)
			if err := c.store.save(creds); err != nil {
				return err
			}
			out, _ := structpb.NewStruct(map[string]any{"certificate": certPath, "key": keyPath})
			return a.emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Certificate: %s\nKey: %s\n", certPath, keyPath)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

// writePrivate writes a file readable by its owner only, replacing it.
func writePrivate(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cert-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newCertShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Describe the saved client certificate",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.resolveConfigDir()
			if err != nil {
				return err
			}
			path := filepath.Join(dir, certFileName)
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no client certificate at %s: get one with trellis cert get UID", path)
			}
			if err != nil {
				return err
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != "CERTIFICATE" {
				return fmt.Errorf("%s holds no PEM certificate", path)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			sum := sha256.Sum256(cert.Raw)
			fp := hex.EncodeToString(sum[:])
			out, _ := structpb.NewStruct(map[string]any{
				"path": path, "subject": cert.Subject.String(), "issuer": cert.Issuer.String(),
				"serial": cert.SerialNumber.Text(16), "not_before": cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z"),
				"not_after": cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"), "sha256": fp,
			})
			return a.emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Certificate: %s\nSubject:     %s\nIssuer:      %s\nSerial:      %s\nValid:       %s to %s\nSHA-256:     %s\n",
					path, clean(cert.Subject.String()), clean(cert.Issuer.String()), cert.SerialNumber.Text(16),
					cert.NotBefore.UTC().Format("2006-01-02 15:04:05Z"), cert.NotAfter.UTC().Format("2006-01-02 15:04:05Z"), fp)
				return err
			})
		},
	}
}
