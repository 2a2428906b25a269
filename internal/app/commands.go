package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/requestid"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// AddCommands adds the operator's commands that work on the store directly
// (serve, admin bootstrap, admin migrate) to the client's command tree.
func AddCommands(root, admin *cobra.Command) {
	root.AddCommand(serveCommand())
	admin.AddCommand(bootstrapCommand(), migrateCommand(), backupCommand(), restoreCommand(), rotateSigningKeyCommand())
}

func storeFlags(cmd *cobra.Command, c *StoreConfig) {
	cmd.Flags().StringVar(&c.DataDir, "data-dir", envOr("TRELLIS_DATA_DIR", "trellis-data"), "directory of the embedded store (env TRELLIS_DATA_DIR)")
	cmd.Flags().StringVar(&c.Database, "database", envOr("TRELLIS_DATABASE", ""), "PostgreSQL URL (postgres://…) to use instead of the embedded store (env TRELLIS_DATABASE)")
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(requestid.LogHandler{Handler: slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(requestid.LogHandler{Handler: slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("--log-format %q: one of text, json", format)
}

func serveCommand() *cobra.Command {
	var (
		cfg                 Config
		logLevel, logFormat string
		smtpPasswordFile    string
		authBackends        string
		drain               string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Trellis server",
		Long: `Run the Trellis server. With no flags it serves on 127.0.0.1:7700 from an
embedded store in ./trellis-data, created and migrated on first start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Log = log
			// Libraries that log through the default logger (the OpenID
			// Connect provider's) write where the server does.
			slog.SetDefault(log)
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			if cfg.TLSAuto && cfg.TLSCert != "" {
				return errors.New("--tls-auto and --tls-cert exclude each other")
			}
			if err := CheckListen(cfg.Listen, cfg.TLSCert != "" || cfg.TLSAuto); err != nil {
				return err
			}
			if cfg.Drain, err = time.ParseDuration(drain); err != nil || cfg.Drain < 0 {
				return fmt.Errorf("--drain %q: a duration of 0 or more, such as 15s", drain)
			}
			cfg.AuthBackends = ParseAuthBackends(authBackends)
			if _, err := checkAuthBackends(cfg.AuthBackends, cfg.Listen); err != nil {
				return err
			}
			if smtpPasswordFile != "" {
				b, err := os.ReadFile(smtpPasswordFile)
				if err != nil {
					return fmt.Errorf("--smtp-password-file: %w", err)
				}
				cfg.SMTP.Password = strings.TrimSpace(string(b))
			}
			cfg.BootstrapFile = filepath.Join(dataDir(cfg.Store), BootstrapFileName)
			if cfg.KEKFile == "" {
				cfg.KEKFile = DefaultKEKFile(cfg.Store)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				// A second signal, while the server drains or shuts down,
				// ends the process at once, as it would without Trellis.
				<-ctx.Done()
				stop()
			}()
			st, err := OpenStore(ctx, cfg.Store)
			if err != nil {
				return err
			}
			defer st.Close()
			srv, err := Build(ctx, cfg, st)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			return srv.Serve(ctx, ln)
		},
	}
	storeFlags(cmd, &cfg.Store)
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", envOr("TRELLIS_LISTEN", "127.0.0.1:7700"), "address to serve on (env TRELLIS_LISTEN); plain HTTP only on loopback")
	f.StringVar(&cfg.TLSCert, "tls-cert", envOr("TRELLIS_TLS_CERT", ""), "TLS certificate file (PEM) (env TRELLIS_TLS_CERT)")
	f.StringVar(&cfg.TLSKey, "tls-key", envOr("TRELLIS_TLS_KEY", ""), "TLS private key file (PEM) (env TRELLIS_TLS_KEY)")
	f.BoolVar(&cfg.TLSAuto, "tls-auto", false, "serve HTTPS with a certificate issued by the Trellis CA for the listen host, the public URL's host and localhost")
	f.StringVar(&cfg.KEKFile, "kek-file", envOr("TRELLIS_KEK_FILE", ""), "file holding the 32-byte key (base64 or hex, mode 0600) that encrypts private keys at rest; made on first start when missing (default DATA_DIR/trellis.kek; keep it out of the store's backups, see docs/operations.md) (env TRELLIS_KEK_FILE)")
	f.StringVar(&cfg.PublicURL, "public-url", envOr("TRELLIS_PUBLIC_URL", ""), "URL clients use to reach this server (default from --listen) (env TRELLIS_PUBLIC_URL)")
	f.BoolVar(&cfg.StrictRevocation, "strict-revocation", envOr("TRELLIS_STRICT_REVOCATION", "") == "true", "with several replicas: check every request against changes committed on any replica, so a logout or a locked account is refused everywhere as soon as it is acknowledged (costs about one store read per round of requests; otherwise other replicas follow within the change feed's interval) (env TRELLIS_STRICT_REVOCATION)")
	f.StringVar(&drain, "drain", envOr("TRELLIS_DRAIN", "0s"), "after SIGTERM or an interrupt, keep serving this long with /readyz answering 503, so load balancers move clients away first (env TRELLIS_DRAIN)")
	f.IntVar(&cfg.HTTP.MaxConnsPerClient, "max-conns-per-client", DefaultMaxConnsPerClient, "connections one client address (an IPv6 /64) may hold open at once; -1: no limit (behind a reverse proxy, whose address every request has)")
	f.DurationVar(&cfg.Service.SessionTTL, "session-ttl", 0, "how long a login lasts (default 24h)")
	f.DurationVar(&cfg.Service.AccessTokenTTL, "access-token-ttl", 0, "how long an access token is valid (default 10m)")
	f.DurationVar(&cfg.Service.SSHCertValidity, "ssh-cert-validity", 0, "how long an SSH certificate is valid unless the request says (default 8h)")
	f.DurationVar(&cfg.Service.SSHCertMaxValidity, "ssh-cert-max-validity", 0, "the longest SSH certificate validity a request may ask for (default 24h)")
	f.DurationVar(&cfg.Service.LeaseDefault, "lease", 0, "a realization's lease when the request names none (default 24h)")
	f.DurationVar(&cfg.Service.LeaseMax, "max-lease", 0, "the longest lease a realization may ask for or renew to (default 168h)")
	f.DurationVar(&cfg.Service.SiteSilenceLimit, "site-silence-limit", 0, "how long a site may leave a realization's materialization unanswered before its resources are marked suspect (default 15m)")
	f.StringVar(&cfg.SiteCAFile, "site-ca-file", envOr("TRELLIS_SITE_CA_FILE", ""), "PEM CA certificates to trust for sites' HTTPS, besides the system's, when posting deliveries (env TRELLIS_SITE_CA_FILE)")
	f.BoolVar(&cfg.Service.VetAllProjects, "vet-all-projects", envOr("TRELLIS_VET_ALL_PROJECTS", "") == "true", "every new project waits for an admin's approval, not only those of users who belong to no approved project (env TRELLIS_VET_ALL_PROJECTS)")
	f.StringVar(&cfg.SMTP.Addr, "smtp-addr", envOr("TRELLIS_SMTP_ADDR", ""), "SMTP server host:port that delivers mail (default: keep mail in the outbox for admins) (env TRELLIS_SMTP_ADDR)")
	f.StringVar(&cfg.SMTP.From, "smtp-from", envOr("TRELLIS_SMTP_FROM", "trellis@localhost"), "sender address of Trellis's mail (env TRELLIS_SMTP_FROM)")
	f.StringVar(&cfg.SMTP.Username, "smtp-username", envOr("TRELLIS_SMTP_USERNAME", ""), "SMTP user name, if the server wants one (env TRELLIS_SMTP_USERNAME)")
	f.DurationVar(&cfg.MailBodyRetention, "mail-body-retention", 0, "how long a delivered mail's body stays in the outbox (mailed tokens never do); 0: only the record that it was sent stays")
	f.StringVar(&smtpPasswordFile, "smtp-password-file", envOr("TRELLIS_SMTP_PASSWORD_FILE", ""), "file holding the SMTP password (env TRELLIS_SMTP_PASSWORD_FILE)")
	f.StringVar(&logLevel, "log-level", envOr("TRELLIS_LOG_LEVEL", "info"), "debug logs every request; info, warn, error (env TRELLIS_LOG_LEVEL)")
	f.StringVar(&logFormat, "log-format", envOr("TRELLIS_LOG_FORMAT", "text"), "text or json (env TRELLIS_LOG_FORMAT)")
	f.StringVar(&authBackends, "auth-backends", envOr("TRELLIS_AUTH_BACKENDS", "local"), "authentication backends, comma-separated, asked in order (env TRELLIS_AUTH_BACKENDS): local (passwords, also HTTP Basic); oidc (log in through an institution's identity provider, see --oidc-*); null (development only: any caller may claim any uid with X-Trellis-User; loopback only)")
	f.StringVar(&cfg.OIDCBackend.Issuer, "oidc-issuer", envOr("TRELLIS_OIDC_ISSUER", ""), "oidc backend: the identity provider's issuer URL (env TRELLIS_OIDC_ISSUER)")
	f.StringVar(&cfg.OIDCBackend.ClientID, "oidc-client-id", envOr("TRELLIS_OIDC_CLIENT_ID", ""), "oidc backend: Trellis's client id at the provider, whose redirect URI is PUBLIC_URL/auth/oidc/callback (env TRELLIS_OIDC_CLIENT_ID)")
	f.StringVar(&cfg.OIDCBackend.ClientSecretFile, "oidc-client-secret-file", envOr("TRELLIS_OIDC_CLIENT_SECRET_FILE", ""), "oidc backend: file holding the client secret (env TRELLIS_OIDC_CLIENT_SECRET_FILE)")
	cmd.Long += environmentHelp(cmd)
	return cmd
}

// envInUsage finds the "(env NAME)" a flag's usage names.
var envInUsage = regexp.MustCompile(`\(env (TRELLIS_[A-Z0-9_]+)\)`)

// environmentHelp lists the environment variables cmd reads, from its
// flags' usage: each is the default of its flag, and the flag wins.
func environmentHelp(cmd *cobra.Command) string {
	var b strings.Builder
	b.WriteString("\n\nEnvironment (each sets the default of its flag; the flag wins):\n")
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if m := envInUsage.FindStringSubmatch(f.Usage); m != nil {
			fmt.Fprintf(&b, "  %-33s --%s\n", m[1], f.Name)
		}
	})
	return strings.TrimRight(b.String(), "\n")
}

// withService opens the store and builds the service for an operator
// command that works on the store directly.
func withService(ctx context.Context, c StoreConfig, fn func(*service.Service) error) error {
	st, err := OpenStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	// No server runs here: no keys, no change feed. Other replicas pick the
	// change up through the feed the service writes to.
	svc := service.New(service.Config{}, service.Deps{Store: st, Hasher: &password.Hasher{Params: password.DefaultParams()}})
	return fn(svc)
}

func bootstrapCommand() *cobra.Command {
	var (
		sc          StoreConfig
		uid, email  string
		passwordStd bool
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --uid UID --email EMAIL [--password-stdin]",
		Short: "Create the first administrator",
		Long: `Create the first administrator of an empty testbed; it refuses when an
administrator exists. Without --password-stdin it generates a strong password
and prints it once.

When a server runs on the store, bootstrap goes through it: a server that
starts without an administrator writes a one-time token to DATA-DIR/` + BootstrapFileName + `
(readable by its own account only), and bootstrap uses it. Otherwise it works
on the store directly. Either way it says which server or store it used; name
the store as for serve (--data-dir or --database): bootstrap does not create
a new embedded store in a directory you did not name.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pw string
			generated := false
			if passwordStd {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read password: %w", err)
				}
				pw = strings.TrimRight(line, "\r\n")
			} else {
				var b [18]byte
				if _, err := rand.Read(b[:]); err != nil {
					return err
				}
				pw, generated = base64.RawURLEncoding.EncodeToString(b[:]), true
			}
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			created := func(uid, email string) {
				fmt.Fprintf(out, "Created administrator %s <%s>.\n", uid, email)
				if generated {
					fmt.Fprintf(out, "Password (shown only this once): %s\n", pw)
				}
			}
			file := filepath.Join(dataDir(sc), BootstrapFileName)
			if _, err := os.Stat(file); err == nil {
				u, server, err := bootstrapThroughServer(ctx, file, uid, email, pw)
				switch {
				case err == nil:
					fmt.Fprintf(out, "Using the server at %s (one-time token from %s).\n", server, file)
					created(u.GetUid(), u.GetEmail())
					return nil
				case errors.Is(err, errServerGone):
					// Killed without removing its file: the store is free.
					fmt.Fprintf(cmd.ErrOrStderr(), "The server at %s named in %s does not answer; using the store directly.\n", server, file)
				default:
					return err
				}
			}
			dirNamed := cmd.Flags().Changed("data-dir") || os.Getenv("TRELLIS_DATA_DIR") != ""
			u, err := bootstrapDirect(ctx, out, sc, dirNamed, uid, email, pw)
			if err != nil {
				return err
			}
			created(u.UID, u.Email)
			return nil
		},
	}
	storeFlags(cmd, &sc)
	cmd.Flags().StringVar(&uid, "uid", "", "the administrator's uid")
	cmd.Flags().StringVar(&email, "email", "", "the administrator's e-mail address")
	cmd.Flags().BoolVar(&passwordStd, "password-stdin", false, "read the password from the first line of standard input")
	_ = cmd.MarkFlagRequired("uid")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}

func migrateCommand() *cobra.Command {
	var sc StoreConfig
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply store migrations (serve does it too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := OpenStore(cmd.Context(), sc)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "Store (%s) is up to date.\n", st.Kind())
			return nil
		},
	}
	storeFlags(cmd, &sc)
	return cmd
}

func rotateSigningKeyCommand() *cobra.Command {
	var (
		sc        StoreConfig
		kekFile   string
		revokeOld bool
	)
	cmd := &cobra.Command{
		Use:   "rotate-signing-key [--revoke-old]",
		Short: "Make a new token-signing key and retire the current one (works on the store directly)",
		Long: `Make a new token-signing key, which signs from now on, and retire the keys
that signed until now. It works on the store directly, with the same
--data-dir/--database and --kek-file as serve; running servers take the new
key up within a minute (a replica that meets its key id first reloads at once).

A retired key stays in the key set (JWKS) as long as the tokens it signed
live, so nobody is logged out. After a compromise of the key, --revoke-old
removes the retired keys from the set at once: every access token they signed
stops verifying, and clients refresh their sessions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if kekFile == "" {
				kekFile = DefaultKEKFile(sc)
			}
			kek, err := keys.LoadKEKFile(kekFile)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no key-encryption key at %s: give serve's --kek-file (serve makes it on first start)", kekFile)
			}
			if err != nil {
				return err
			}
			sealer, err := keys.NewAESGCM(kek)
			if err != nil {
				return err
			}
			st, err := OpenStore(ctx, sc)
			if err != nil {
				return err
			}
			defer st.Close()
			// This manager publishes nothing: it leaves deleting keys no
			// longer published to the servers, which know their token
			// lifetimes (--access-token-ttl).
			km := keys.NewManager(st, sealer, keys.Options{TokenTTL: 100 * 365 * 24 * time.Hour})
			if err := km.Rotate(ctx); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			id, _ := km.Signer()
			fmt.Fprintf(out, "New signing key %s.\n", id)
			if !revokeOld {
				fmt.Fprintln(out, "The retired keys stay published until the tokens they signed expire.")
				return nil
			}
			n, err := revokeRetiredKeys(ctx, st, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Revoked %d retired key(s): tokens they signed no longer verify once the servers reload (within a minute).\n", n)
			return nil
		},
	}
	storeFlags(cmd, &sc)
	cmd.Flags().StringVar(&kekFile, "kek-file", envOr("TRELLIS_KEK_FILE", ""), "the key-encryption key file serve uses (default DATA_DIR/trellis.kek)")
	cmd.Flags().BoolVar(&revokeOld, "revoke-old", false, "remove the retired keys from the key set now (after a compromise): the access tokens they signed stop verifying")
	return cmd
}

// revokeRetiredKeys deletes every signing key but keep.
func revokeRetiredKeys(ctx context.Context, st store.Store, keep string) (int, error) {
	var n int
	err := st.Update(ctx, func(tx store.Tx) error {
		n = 0
		list, err := tx.SigningKeys().List(ctx)
		if err != nil {
			return err
		}
		for _, k := range list {
			if k.ID == keep {
				continue
			}
			if err := tx.SigningKeys().Delete(ctx, k.ID); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
