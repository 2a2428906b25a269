package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/provider"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
)

// ProviderCommand returns the root's provider group, creating it if the
// tree has none, so that the site's own commands (init, serve, worker…)
// join the user's (connect, exec…) under one name.
func ProviderCommand(root *cobra.Command) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == "provider" {
			return c
		}
	}
	c := newProviderGroup()
	root.AddCommand(c)
	return c
}

func newProviderGroup() *cobra.Command {
	return asGroup(&cobra.Command{
		Use:   "provider",
		Short: "Sites: connect to one and run work there; run a site (init, serve)",
		Long: `A site (provider) maps Trellis users to local accounts and runs their work as
those accounts. Users connect once (trellis provider connect SITE), which
makes a key only the user holds; every request to the site is signed with it.
Site operators run trellis provider init and serve (docs/provider.md).`,
	})
}

func newProviderCmd(a *app) *cobra.Command {
	cmd := newProviderGroup()
	cmd.AddCommand(newProviderConnectCmd(a), newProviderListCmd(a), newProviderDisconnectCmd(a), newProviderExecCmd(a),
		newProviderWhoamiCmd(a), newProviderUploadCmd(a), newProviderDownloadCmd(a), newProviderTerminalCmd(a))
	return cmd
}

// siteKeyPath is where the user's key for a site lives: only the user
// holds it; the centre never sees it.
func (a *app) siteKeyPath(site string) (string, error) {
	dir, err := a.resolveConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "providers", site+".key"), nil
}

func (a *app) siteHTTP() (*http.Client, error) {
	rt, err := a.roundTripper()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt, Timeout: 5 * time.Minute}, nil
}

// postSite posts body to the site and decodes its JSON answer into out,
// or returns the site's refusal.
func postSite(ctx context.Context, hc *http.Client, url string, headers map[string]string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the site: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	return siteAnswer(resp.StatusCode, b, out)
}

// siteAnswer decodes a site's answer into out, or returns its refusal.
func siteAnswer(status int, b []byte, out any) error {
	if status != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("the site refused (%d %s): %s", status, http.StatusText(status), clean(e.Error))
	}
	return json.Unmarshal(b, out)
}

func newProviderConnectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "connect SITE",
		Short: "Connect to a site: it maps you to a local account and learns a key only you hold",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			site := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.CreateConnectionTicket(cmd.Context(), connect.NewRequest(&trellisv1.CreateConnectionTicketRequest{Provider: site}))
			if err != nil {
				return err
			}
			path, err := a.siteKeyPath(site)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			// A new key for every connection: the site replaces the old one.
			_ = os.Remove(path + ".new")
			key, err := provider.NewKey(path + ".new")
			if err != nil {
				return err
			}
			pub := key.Public().(ed25519.PublicKey)
			body, _ := json.Marshal(provider.ConnectRequest{Ticket: resp.Msg.Ticket, UserPublicKey: base64.StdEncoding.EncodeToString(pub)})
			hc, err := a.siteHTTP()
			if err != nil {
				return err
			}
			var out provider.ConnectResponse
			if err := postSite(cmd.Context(), hc, strings.TrimRight(resp.Msg.Url, "/")+"/connect", nil, body, &out); err != nil {
				_ = os.Remove(path + ".new")
				return err
			}
			if err := os.Rename(path+".new", path); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "Connected to %s as local account %s (your key %s, in %s).\n", clean(site), clean(out.LocalAccount), usersig.Fingerprint(pub), path)
			return nil
		},
	}
}

func newProviderListCmd(a *app) *cobra.Command {
	var uid string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your connections to sites",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.ListConnections(cmd.Context(), connect.NewRequest(&trellisv1.ListConnectionsRequest{Uid: uid}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if len(resp.Msg.GetConnections()) == 0 {
					_, err := fmt.Fprintln(w, "No connections.")
					return err
				}
				t := newTable(w, "SITE", "USER", "LOCAL ACCOUNT", "KEY", "SINCE")
				for _, c := range resp.Msg.GetConnections() {
					t.row(c.GetProvider(), c.GetUid(), c.GetLocalAccount(), c.GetUserKeyFingerprint(), formatTS(c.GetCreatedAt()))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&uid, "uid", "", "another user's connections (admins)")
	return cmd
}

// forwardTimeout bounds a request the centre forwards: the centre's own
// limit (service.ForwardTimeout, two minutes) and a margin.
const forwardTimeout = 150 * time.Second

// signedSiteCall sends a user request to a site, signed with the user's
// own key over exactly this request: through the centre
// (Providers/Forward), which adds its token for the site and forwards the
// request unchanged, or, when direct, straight to the site with a token
// the centre issued for it.
//
// It returns the site's URL, for what goes to the site directly next.
func (a *app) signedSiteCall(ctx context.Context, c *conn, site, path string, body []byte, direct bool, out any) (string, error) {
	keyPath, err := a.siteKeyPath(site)
	if err != nil {
		return "", err
	}
	key, err := provider.LoadKey(keyPath)
	if err != nil {
		return "", fmt.Errorf("no key for %s (connect first: trellis provider connect %s): %w", site, site, err)
	}
	who, err := c.auth.WhoAmI(ctx, connect.NewRequest(&trellisv1.WhoAmIRequest{}))
	if err != nil {
		return "", err
	}
	if !direct {
		sig, err := usersig.Sign(key, who.Msg.GetUid(), site, http.MethodPost, path, body, a.now())
		if err != nil {
			return "", err
		}
		resp, err := c.forwarder.Forward(ctx, connect.NewRequest(&trellisv1.ForwardRequest{
			Provider: site, Method: http.MethodPost, Target: path, Body: body, UserSignature: sig,
		}))
		if err != nil {
			return "", err
		}
		return strings.TrimRight(resp.Msg.GetSiteUrl(), "/"), siteAnswer(int(resp.Msg.GetStatus()), resp.Msg.GetBody(), out)
	}
	tok, err := c.providers.CreateSiteToken(ctx, connect.NewRequest(&trellisv1.CreateSiteTokenRequest{Provider: site}))
	if err != nil {
		return "", err
	}
	sig, err := usersig.Sign(key, who.Msg.GetUid(), site, http.MethodPost, path, body, a.now())
	if err != nil {
		return "", err
	}
	hc, err := a.siteHTTP()
	if err != nil {
		return "", err
	}
	siteURL := strings.TrimRight(tok.Msg.Url, "/")
	return siteURL, postSite(ctx, hc, siteURL+path, map[string]string{
		"Authorization": "Bearer " + tok.Msg.Token,
		usersig.Header:  sig,
	}, body, out)
}

func newProviderExecCmd(a *app) *cobra.Command {
	var timeout time.Duration
	var direct bool
	cmd := &cobra.Command{
		Use:   "exec [--direct] SITE -- CMD [ARGS...]",
		Short: "Run a command at a site as your local account",
		Long: `Run a command at a site as the local account you are mapped to, and print its
output; the exit status is the command's. The request is signed with your
key and goes through the centre, which forwards it unchanged; with --direct
it goes straight to the site (the centre only issues a token for it).`,
		Example: `  trellis provider exec site1 -- id -un`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			argv := args[1:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return usageError{cmd: cmd.CommandPath(), err: errors.New("name the command to run after --")}
			}
			body, _ := json.Marshal(provider.ExecRequest{Argv: argv, TimeoutSeconds: int(timeout / time.Second)})
			var res provider.Result
			if _, err := a.signedSiteCall(cmd.Context(), c, args[0], "/exec", body, direct, &res); err != nil {
				return err
			}
			_, _ = a.streams.Out.Write(res.Stdout)
			_, _ = a.streams.Err.Write(res.Stderr)
			if res.Truncated {
				fmt.Fprintln(a.streams.Err, "(output truncated at the site's limit)")
			}
			if res.ExitCode != 0 {
				return ExitError{Code: min(max(res.ExitCode, 1), 255)}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "time limit (at most the site's)")
	cmd.Flags().BoolVar(&direct, "direct", false, "send the request straight to the site, not through the centre")
	// Flags after SITE belong to the command run there.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func newProviderDisconnectCmd(a *app) *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "disconnect SITE",
		Short: "Remove your connection to a site, at the site and at the centre",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			site := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			var out map[string]string
			_, siteErr := a.signedSiteCall(cmd.Context(), c, site, "/disconnect", []byte("{}"), direct, &out)
			if _, err := c.providers.RemoveConnection(cmd.Context(), connect.NewRequest(&trellisv1.RemoveConnectionRequest{Provider: site})); err != nil {
				return err
			}
			if path, err := a.siteKeyPath(site); err == nil {
				_ = os.Remove(path)
			}
			if siteErr != nil {
				return fmt.Errorf("removed at the centre, but the site did not confirm: %w", siteErr)
			}
			fmt.Fprintf(a.streams.Out, "Disconnected from %s.\n", clean(site))
			return nil
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "tell the site straight, not through the centre")
	return cmd
}

func newProviderWhoamiCmd(a *app) *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "whoami [--direct] SITE",
		Short: "Show who you are at a site, as your worker there reports it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var res provider.WhoamiResponse
			if _, err := a.signedSiteCall(cmd.Context(), c, args[0], "/whoami", []byte("{}"), direct, &res); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.streams.Out, "%s at %s: local account %s (uid %d), worker pid %d\n", clean(res.UID), clean(args[0]), clean(res.LocalAccount), res.LocalUID, res.WorkerPID)
			return err
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "send the request straight to the site, not through the centre")
	return cmd
}
