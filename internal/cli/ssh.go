package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newSSHCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "ssh",
		Short: "Register SSH keys and get short-lived SSH certificates",
		Long: `Register your SSH public keys with Trellis, then ask for a short-lived
certificate for one of them: sites that trust Trellis's SSH certificate
authority ('trellis ssh ca') let you log in with it as your uid.`,
	})
	key := asGroup(&cobra.Command{
		Use:   "key",
		Short: "Add, list and remove your SSH public keys",
	})
	key.AddCommand(newSSHKeyAddCmd(a), newSSHKeyListCmd(a), newSSHKeyRemoveCmd(a))
	cmd.AddCommand(key, newSSHCertCmd(a), newSSHCACmd(a))
	return cmd
}

// keyFiles resolves what --key or an argument names, as ssh-keygen does: a
// private key "id" has its public key in "id.pub" and gets its certificate in
// "id-cert.pub"; "id.pub" names the same pair.
func keyFiles(path string) (pub, cert string) {
	base := strings.TrimSuffix(path, ".pub")
	return base + ".pub", base + "-cert.pub"
}

// readPublicKey reads one public key line from path (its .pub companion when
// path is a private key). A private key never leaves this machine: it is
// refused here, before anything is sent.
func readPublicKey(path string) (string, error) {
	if path == "-" {
		return "", errors.New("give the public key file, not standard input")
	}
	candidates := []string{path}
	if !strings.HasSuffix(path, ".pub") {
		pub, _ := keyFiles(path)
		candidates = []string{pub, path}
	}
	var firstErr error
	for _, p := range candidates {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if strings.Contains(string(b), "PRIVATE KEY") {
			return "", fmt.Errorf("%s is a private key, which must never leave your machine; give its public key (%s)", p, p+".pub")
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", firstErr
}

func newSSHKeyAddCmd(a *app) *cobra.Command {
	var uid string
	cmd := &cobra.Command{
		Use:   "add FILE",
		Short: "Register an SSH public key (FILE.pub, or the .pub beside private key FILE)",
		Long: `Register an SSH public key with your account. FILE is the public key
(~/.ssh/id_ed25519.pub) or its private key, whose .pub file beside it is read
instead; the private key itself is never read nor sent. Accepted: ed25519,
ecdsa, rsa of 3072 bits or more, and their security-key (sk-) variants.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			line, err := readPublicKey(args[0])
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.AddSSHKey(cmd.Context(), connect.NewRequest(&trellisv1.AddSSHKeyRequest{Uid: uid, PublicKey: line}))
			if err != nil {
				return err
			}
			k := resp.Msg.GetKey()
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Added %s key %s (%d bits) to %s.\n", clean(k.GetType()), clean(k.GetFingerprint()), k.GetBits(), clean(k.GetUid()))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&uid, "uid", "", "account to add the key to (administrators; default yours)")
	return cmd
}

func newSSHKeyListCmd(a *app) *cobra.Command {
	var uid string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your SSH public keys",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.ListSSHKeys(cmd.Context(), connect.NewRequest(&trellisv1.ListSSHKeysRequest{Uid: uid}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				t := newTable(w, "FINGERPRINT", "TYPE", "BITS", "COMMENT", "ADDED")
				for _, k := range resp.Msg.GetKeys() {
					t.row(k.GetFingerprint(), k.GetType(), strconv.Itoa(int(k.GetBits())), k.GetComment(), formatTS(k.GetCreatedAt()))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&uid, "uid", "", "account whose keys to list (administrators; default yours)")
	return cmd
}

func newSSHKeyRemoveCmd(a *app) *cobra.Command {
	var uid string
	cmd := &cobra.Command{
		Use:     "rm FINGERPRINT",
		Aliases: []string{"remove"},
		Short:   "Remove one of your SSH public keys, named by its fingerprint (SHA256:…)",
		Long: `Remove one of your SSH public keys, named by its fingerprint as 'trellis ssh
key list' and 'ssh-keygen -l' print it. Certificates already issued for it
stay valid until they expire.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.RemoveSSHKey(cmd.Context(), connect.NewRequest(&trellisv1.RemoveSSHKeyRequest{Uid: uid, Fingerprint: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed SSH key %s.\n", clean(args[0]))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&uid, "uid", "", "account to remove the key from (administrators; default yours)")
	return cmd
}

func newSSHCertCmd(a *app) *cobra.Command {
	var (
		keyPath  string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cert --key FILE [--validity DURATION]",
		Short: "Get a short-lived SSH certificate for one of your registered keys",
		Long: `Get an SSH user certificate for a key registered with 'trellis ssh key add',
valid for your uid, and write it beside the key as ssh does: --key id (or
id.pub) writes id-cert.pub, which ssh uses with id automatically.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			pubPath, certPath := keyFiles(keyPath)
			line, err := readPublicKey(pubPath)
			if err != nil {
				return err
			}
			msg := &trellisv1.IssueSSHCertificateRequest{PublicKey: line}
			if cmd.Flags().Changed("validity") {
				msg.Validity = durationpb.New(validity)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.auth.IssueSSHCertificate(cmd.Context(), connect.NewRequest(msg))
			if err != nil {
				return err
			}
			if err := writeFileAtomic(certPath, []byte(resp.Msg.GetCertificate()+"\n"), 0o644); err != nil {
				return fmt.Errorf("writing the certificate: %w", err)
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Wrote %s: principal %s, valid until %s (serial %d).\n", certPath,
					clean(strings.Join(resp.Msg.GetPrincipals(), ",")), formatTS(resp.Msg.GetValidBefore()), resp.Msg.GetSerial())
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "the key to certify: private key file or its .pub (required)")
	f.DurationVar(&validity, "validity", 0, "how long the certificate is valid (default: the server's, 8h unless configured)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// writeFileAtomic replaces path with data, so that ssh never reads half a
// certificate.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newSSHCACmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ca",
		Short: "Print the SSH certificate authority's key, for sshd's TrustedUserCAKeys",
		Long: `Print the public key of the authority that signs Trellis's SSH user
certificates, one line in the form of sshd's TrustedUserCAKeys file. Sites
can also fetch it without credentials from GET /ssh/trusted-user-ca-keys.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.info.GetSSHCertificateAuthority(cmd.Context(), connect.NewRequest(&trellisv1.GetSSHCertificateAuthorityRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, clean(resp.Msg.GetPublicKey()))
				return err
			})
		},
	}
}
