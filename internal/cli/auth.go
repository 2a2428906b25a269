package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newLoginCmd(a *app) *cobra.Command {
	var fromStdin, challenge, oidc, paste bool
	cmd := &cobra.Command{
		Use:   "login (UID | --oidc)",
		Short: "Log in and save the session's credentials",
		Long: `Log in with a password and save the session's tokens in the config directory,
so that later commands run as this user. The access token is renewed
automatically until the session expires (24 hours) or you log out.

With --challenge the password never leaves this machine: the client answers
a scram-argon2id challenge with a proof of it, and checks the server's proof
that it holds the account's verifier. An account whose password was set
before the server offered challenge logins needs one password login first.

With --oidc (servers running the oidc authentication backend) you log in
through your institution's identity provider in a browser: the command
prints the address to open and waits for the browser to hand the login
back to it on a loopback address (with --paste, you paste the code the
browser shows). The first time, the browser asks once for your Trellis uid
and password, to link the two.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if oidc {
				return noArgs()(cmd, args)
			}
			return exactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if oidc {
				if challenge || fromStdin {
					return usageError{cmd: cmd.CommandPath(), err: errors.New("--oidc takes no password: it excludes --challenge and --password-stdin")}
				}
				return oidcLogin(cmd, a, paste)
			}
			uid := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			password, err := a.secrets(fromStdin).read("Password for " + uid + ": ")
			if err != nil {
				return err
			}
			var tokens *trellisv1.Tokens
			if challenge {
				if tokens, err = challengeLogin(cmd.Context(), c, uid, password); err != nil {
					return err
				}
			} else {
				a.warnInsecure(c)
				resp, err := c.anonAuth.Login(cmd.Context(), connect.NewRequest(&trellisv1.LoginRequest{Uid: uid, Password: password}))
				if err != nil {
					return err
				}
				tokens = resp.Msg.GetTokens()
			}
			if tokens.GetAccessToken() == "" {
				return errors.New("the server returned no access token")
			}
			return saveLogin(a, c, uid, tokens)
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.Flags().BoolVar(&challenge, "challenge", false, "log in with a scram-argon2id challenge: the password never crosses the wire")
	cmd.Flags().BoolVar(&oidc, "oidc", false, "log in through the institution's identity provider, in a browser")
	cmd.Flags().BoolVar(&paste, "paste", false, "with --oidc: paste the code the browser shows instead of receiving it on a loopback address (a browser on another machine)")
	return cmd
}

func newLogoutCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session and delete the saved credentials",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			// Logout ends the saved session; a TRELLIS_TOKEN in the
			// environment is someone else's to revoke.
			c.tokens.envToken = ""
			if c.tokens.loadErr != nil {
				// An unreadable file holds nothing to revoke the session
				// with; removing it is all logout can do.
				if _, err := c.store.remove(); err != nil {
					return err
				}
				fmt.Fprintln(a.streams.Out, "Removed unreadable credentials.")
				return nil
			}
			if c.tokens.creds == nil {
				if !c.tokens.clientCert {
					fmt.Fprintln(a.streams.Out, "Not logged in.")
					return nil
				}
				// No token, but a saved client certificate may stand for
				// a session over mutual TLS: end that one.
				_, err := c.auth.Logout(cmd.Context(), connect.NewRequest(&trellisv1.LogoutRequest{}))
				switch code := connect.CodeOf(err); {
				case err == nil:
					fmt.Fprintln(a.streams.Out, "Logged out the session of the saved client certificate.")
				case code == connect.CodeUnauthenticated:
					fmt.Fprintln(a.streams.Out, "Not logged in (the saved client certificate stands for no session).")
				default:
					return err
				}
				return nil
			}
			saved, err := c.tokens.saved()
			if err != nil {
				return err
			}
			sessionOver := !saved.SessionExpiresAt.IsZero() && !a.now().Before(saved.SessionExpiresAt)
			if !sessionOver {
				_, err := c.auth.Logout(cmd.Context(), connect.NewRequest(&trellisv1.LogoutRequest{}))
				// A session already gone (expired, revoked, logged out
				// elsewhere) is what logout wants; anything else, such as
				// an unreachable server, leaves the session open, so the
				// credentials stay for another try.
				if err != nil && connect.CodeOf(err) != connect.CodeUnauthenticated {
					return err
				}
			}
			if _, err := c.store.remove(); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "Logged out %s.\n", clean(saved.UID))
			return nil
		},
	}
}

func newWhoAmICmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the credentials name",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.auth.WhoAmI(cmd.Context(), connect.NewRequest(&trellisv1.WhoAmIRequest{}))
			if err != nil {
				return err
			}
			m := resp.Msg
			return a.emit(m, func(w io.Writer) error {
				kv := []string{
					"uid", m.GetUid(),
					"admin", yesNo(m.GetAdmin()),
					"session", m.GetSessionId(),
					"session expires", formatTS(m.GetSessionExpiresAt()),
					"token expires", formatTS(m.GetTokenExpiresAt()),
				}
				// What narrows or stands behind the credential, when it is
				// not a plain login.
				if m.GetApiTokenName() != "" {
					kv = append(kv, "api token", m.GetApiTokenName(), "scopes", strings.Join(m.GetScopes(), " "))
				}
				if m.GetActor() != "" {
					kv = append(kv, "acting service", m.GetActor())
				}
				if m.GetBackend() != "" {
					kv = append(kv, "backend", m.GetBackend())
				}
				return printFields(w, append(kv, "server", c.server)...)
			})
		},
	}
}
