package provider

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
)

// AddCommands adds the site's commands to the provider group.
func AddCommands(group *cobra.Command) {
	group.AddCommand(initCommand(), serveCommand(), workerCommand(), statusCommand(), sudoersCommand(), systemdCommand())
}

func initCommand() *cobra.Command {
	var central, tok, dir, listen, mapper, launcher, caFile, socketDir, driver string
	var minUID int
	cmd := &cobra.Command{
		Use:   "init --central URL --token T --data-dir DIR",
		Short: "Register this site with the centre and write its config",
		Long: `Make the site's Ed25519 key (DIR/site.key, 0600), register its public key
with the centre using the one-time token of 'trellis admin provider add', and
write DIR/provider.json for the operator to read and edit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if central == "" || tok == "" || dir == "" {
				return errors.New("--central, --token and --data-dir are required")
			}
			if err := os.MkdirAll(dir, 0o711); err != nil {
				return err
			}
			keyPath := filepath.Join(dir, KeyFile)
			key, err := LoadKey(keyPath)
			if errors.Is(err, os.ErrNotExist) {
				key, err = NewKey(keyPath)
			}
			if err != nil {
				return err
			}
			hc, err := HTTPClient(caFile)
			if err != nil {
				return err
			}
			pub := key.Public().(ed25519.PublicKey)
			c := trellisv1connect.NewProvidersClient(hc, central)
			resp, err := c.RegisterSite(cmd.Context(), connect.NewRequest(&trellisv1.RegisterSiteRequest{Token: tok, PublicKey: encodeKey(pub)}))
			if err != nil {
				return fmt.Errorf("registering with %s: %w", central, err)
			}
			cfg := &Config{
				Name: resp.Msg.Name, Central: central, Issuer: resp.Msg.Issuer, JWKSURL: resp.Msg.JwksUrl,
				Audience: resp.Msg.Audience, CentreAudience: resp.Msg.CentreAudience, CentralCAFile: caFile,
				Listen: listen, Mapper: mapper, Launcher: launcher, MinUID: minUID, SocketDir: socketDir,
				RequireUserSignature: true, Driver: driver,
			}
			if !knownDriver(driver) {
				return fmt.Errorf("--driver is sim, netns or empty (none), not %q", driver)
			}
			cfg.Defaults(dir)
			if _, err := newMapper(cfg.Mapper, 0); err != nil {
				return err
			}
			if err := cfg.Save(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Registered site %s (key %s) with %s.\nConfig: %s\nStart it with: trellis provider serve --data-dir %s\n",
				cfg.Name, usersig.Fingerprint(pub), central, filepath.Join(dir, ConfigFile), dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&central, "central", "", "the centre's URL")
	f.StringVar(&tok, "token", "", "the one-time registration token (trellis admin provider add)")
	f.StringVar(&dir, "data-dir", "", "the site's data directory")
	f.StringVar(&listen, "listen", "127.0.0.1:7800", "address to serve on (plain HTTP only on loopback)")
	f.StringVar(&mapper, "mapper", "pattern:{uid}", "user mapper: pattern:tb_{uid}, static:FILE or command:PATH")
	f.StringVar(&launcher, "launcher", "setuid", "how workers start: setuid (CAP_SETUID/CAP_SETGID) or sudo")
	f.IntVar(&minUID, "min-uid", 1000, "lowest local uid a user may be mapped to")
	f.StringVar(&caFile, "central-ca-file", "", "PEM CA to check the centre's certificate with")
	f.StringVar(&socketDir, "socket-dir", "", "directory of the workers' Unix socket (default DIR/run)")
	f.StringVar(&driver, "driver", "", "materialization driver: sim, netns or empty (this site does not materialize); see docs/materialize.md")
	return cmd
}

func encodeKey(pub ed25519.PublicKey) string {
	return base64Std(pub)
}

func serveCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR",
		Short: "Run the site's server (never as root)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			s, err := NewServer(ctx, dir, log)
			if err != nil {
				return err
			}
			return s.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the site's data directory")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

func workerCommand() *cobra.Command {
	var socket, user, nonce string
	cmd := &cobra.Command{
		Use:    "worker --socket PATH --user UID --nonce N",
		Short:  "Run as a mapped account and do that user's work (started by the site's server)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return RunWorker(context.Background(), socket, user, nonce)
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", "", "the server's Unix socket")
	f.StringVar(&user, "user", "", "the Trellis uid this worker serves")
	f.StringVar(&nonce, "nonce", "", "the launch's nonce")
	return cmd
}

func statusCommand() *cobra.Command {
	var dir, output string
	cmd := &cobra.Command{
		Use:   "status --data-dir DIR",
		Short: "List the site's workers (as the service account)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(dir)
			if err != nil {
				return err
			}
			ws, err := Status(filepath.Join(cfg.SocketDir, SocketName))
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ws)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tACCOUNT\tUID\tPID\tUPTIME\tRESTARTS\tIN-FLIGHT")
			for _, w := range ws {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\n", w.User, w.Account, w.UID, w.PID, w.Uptime, w.Restarts, w.InFlight)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the site's data directory")
	cmd.Flags().StringVar(&output, "format", "text", "text or json")
	return cmd
}

func sudoersCommand() *cobra.Command {
	var dir, account string
	cmd := &cobra.Command{
		Use:   "sudoers --data-dir DIR --service-account NAME",
		Short: "Print the one sudoers rule the sudo launcher needs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(dir)
			if err != nil {
				return err
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			sock := filepath.Join(cfg.SocketDir, SocketName)
			fmt.Fprintf(cmd.OutOrStdout(), "# /etc/sudoers.d/trellis-provider: the site's server may start a worker as any\n# account but root; the worker and the server refuse uids below %d.\nDefaults:%s !requiretty\n%s ALL=(ALL,!root) NOPASSWD: %s provider worker --socket %s --user * --nonce *\n",
				cfg.MinUID, account, account, bin, sock)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the site's data directory")
	cmd.Flags().StringVar(&account, "service-account", "trellis-site", "the account the server runs as")
	return cmd
}

func systemdCommand() *cobra.Command {
	var dir, account string
	cmd := &cobra.Command{
		Use:   "systemd-unit --data-dir DIR --service-account NAME",
		Short: "Print a systemd unit for the setuid launcher (CAP_SETUID and CAP_SETGID only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), `[Unit]
Description=Trellis provider (site integration module)
After=network-online.target
Wants=network-online.target

[Service]
User=%[1]s
ExecStart=%[2]s provider serve --data-dir %[3]s
# The server starts each user's worker as that user: it needs to change
# uid and gid, and nothing else.
AmbientCapabilities=CAP_SETUID CAP_SETGID
CapabilityBoundingSet=CAP_SETUID CAP_SETGID
Restart=on-failure

[Install]
WantedBy=multi-user.target
`, account, bin, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "/var/lib/trellis-provider", "the site's data directory")
	cmd.Flags().StringVar(&account, "service-account", "trellis-site", "the account the server runs as")
	return cmd
}
