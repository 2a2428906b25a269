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

func newTokenCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens for automation",
		Long: `API tokens let scripts and services act as you without your password. Each
has a name, scopes and an expiry; send it as "Authorization: Bearer TOKEN",
or set ` + EnvToken + `=TOKEN for this command. The server keeps only a hash:
a token is shown once, when it is created.`,
	})
	cmd.AddCommand(newTokenCreateCmd(a), newTokenListCmd(a), newTokenRevokeCmd(a))
	return cmd
}

// expiresFlag is --expires: a Go duration ("12h") or days ("30d").
type expiresFlag struct{ leaseFlag }

func (e *expiresFlag) Set(s string) error {
	d, err := parseLease(s)
	if err != nil {
		return errors.New("want a positive duration such as 12h, 30d or 365d")
	}
	e.d, e.set = d, true
	return nil
}

func newTokenCreateCmd(a *app) *cobra.Command {
	var (
		scopes  []string
		expires expiresFlag
	)
	cmd := &cobra.Command{
		Use:   "create NAME --scope SCOPE [--scope SCOPE...] [--expires DURATION]",
		Short: "Create an API token; it is printed once, alone on standard output",
		Long: `Create an API token named NAME (unique among yours). Scopes narrow what it
may do, never beyond what you may:

  read                                  operations without side effects
  all                                   everything you may do
  trellis.v1.Experiments/*              every operation of a service
  trellis.v1.Realizations/Realize       one operation

Only a token scoped "all" may create further tokens. Without --expires the
token lives 30 days; at most 365 days. The token is printed alone on standard
output, and never again: store it now.`,
		Example: `  export TRELLIS_TOKEN=$(trellis token create ci --scope read --expires 30d)`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.auth.CreateAPIToken(cmd.Context(), connect.NewRequest(&trellisv1.CreateAPITokenRequest{
				Name: args[0], Scopes: scopes, Expires: expires.proto(),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if _, err := fmt.Fprintln(w, resp.Msg.GetToken()); err != nil {
					return err
				}
				t := resp.Msg.GetApiToken()
				// For people, out of a script's way.
				fmt.Fprintf(a.streams.Err, "Created API token %s (scopes %s), valid until %s. It is shown this once.\n",
					clean(t.GetName()), clean(strings.Join(t.GetScopes(), ", ")), formatTS(t.GetExpiresAt()))
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, `what the token may do: read, all, or trellis.v1.SERVICE/* or trellis.v1.SERVICE/OPERATION (repeatable; required)`)
	_ = cmd.MarkFlagRequired("scope")
	cmd.Flags().Var(&expires, "expires", "how long the token is valid: 12h, 30d, 365d (default 30d)")
	return cmd
}

func newTokenListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your API tokens (never their secrets)",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.auth.ListAPITokens(cmd.Context(), connect.NewRequest(&trellisv1.ListAPITokensRequest{}))
			if err != nil {
				return err
			}
			now := a.now()
			return a.emit(resp.Msg, func(w io.Writer) error {
				if len(resp.Msg.GetApiTokens()) == 0 {
					_, err := fmt.Fprintln(w, "No API tokens.")
					return err
				}
				t := newTable(w, "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE")
				for _, k := range resp.Msg.GetApiTokens() {
					state := "active"
					switch {
					case k.GetRevokedAt() != nil:
						state = "revoked " + formatTS(k.GetRevokedAt())
					case !k.GetExpiresAt().AsTime().After(now):
						state = "expired"
					}
					used := "never"
					if k.GetLastUsedAt() != nil {
						used = formatTS(k.GetLastUsedAt())
					}
					t.row(k.GetName(), strings.Join(k.GetScopes(), ","), formatTS(k.GetCreatedAt()), formatTS(k.GetExpiresAt()), used, state)
				}
				return t.flush()
			})
		},
	}
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke one of your API tokens; it stops working at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.auth.RevokeAPIToken(cmd.Context(), connect.NewRequest(&trellisv1.RevokeAPITokenRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Revoked API token %s.\n", clean(args[0]))
				return err
			})
		},
	}
}
