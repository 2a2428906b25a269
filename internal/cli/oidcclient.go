package cli

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newAdminOIDCClientCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "oidc-client",
		Short: "Register the web services that log users in through Trellis (OpenID Connect)",
		Long: `Trellis is an OpenID Connect provider: notebooks, dashboards and the testbed's
own tools log Trellis users in with the authorization code flow and PKCE.
Their issuer is the server's URL followed by /oidc, and the discovery
document is at SERVER/oidc/.well-known/openid-configuration.`,
	})
	cmd.AddCommand(newAdminOIDCClientAddCmd(a), newAdminOIDCClientListCmd(a), newAdminOIDCClientRmCmd(a))
	return cmd
}

func newAdminOIDCClientAddCmd(a *app) *cobra.Command {
	var (
		redirects []string
		public    bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --redirect-uri URI [--redirect-uri URI…] [--public]",
		Short: "Register a client; a confidential one's secret is printed once",
		Long: `Register an OpenID Connect client named NAME (its client_id). Redirect URIs
match exactly; they are https, or http on a loopback address. A confidential
client (a web application) gets a client secret, printed alone on standard
output this once: store it now. A --public client (a native or browser app,
which cannot keep a secret) proves itself by PKCE alone.`,
		Example: `  NOTEBOOKS_SECRET=$(trellis admin oidc-client add notebooks --redirect-uri https://jupyter.testbed.example.org/hub/oauth_callback)
  trellis admin oidc-client add desktop --public --redirect-uri http://127.0.0.1:8400/callback`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(redirects) == 0 {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("give at least one --redirect-uri")}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.oidcClients.AddClient(cmd.Context(), connect.NewRequest(&trellisv1.AddClientRequest{Name: args[0], RedirectUris: redirects, Public: public}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				name := clean(resp.Msg.GetClient().GetName())
				if sec := resp.Msg.GetClientSecret(); sec != "" {
					if _, err := fmt.Fprintln(w, sec); err != nil {
						return err
					}
					fmt.Fprintf(a.streams.Err, "Registered OpenID Connect client %s. Its client secret is shown this once.\n", name)
					return nil
				}
				_, err := fmt.Fprintf(w, "Registered public OpenID Connect client %s (PKCE, no secret).\n", name)
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&redirects, "redirect-uri", nil, "where the provider may send users back (repeat for several)")
	cmd.Flags().BoolVar(&public, "public", false, "a public client: no secret, PKCE alone")
	return cmd
}

func newAdminOIDCClientListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the OpenID Connect clients (never their secrets)",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.oidcClients.ListClients(cmd.Context(), connect.NewRequest(&trellisv1.ListClientsRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if len(resp.Msg.GetClients()) == 0 {
					_, err := fmt.Fprintln(w, "No OpenID Connect clients.")
					return err
				}
				t := newTable(w, "NAME", "TYPE", "REDIRECT URIS", "CREATED")
				for _, cl := range resp.Msg.GetClients() {
					kind := "confidential"
					if cl.GetPublic() {
						kind = "public"
					}
					t.row(cl.GetName(), kind, strings.Join(cl.GetRedirectUris(), " "), formatTS(cl.GetCreatedAt()))
				}
				return t.flush()
			})
		},
	}
}

func newAdminOIDCClientRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a client; its tokens stop working at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.oidcClients.RemoveClient(cmd.Context(), connect.NewRequest(&trellisv1.RemoveClientRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed OpenID Connect client %s.\n", clean(args[0]))
				return err
			})
		},
	}
}
