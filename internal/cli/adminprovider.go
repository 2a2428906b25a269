package cli

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newAdminProviderCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "provider",
		Short: "Register and manage sites (providers)",
		Long: `A site registers its own Ed25519 key with the one-time token 'add' prints
(trellis provider init --token at the site); afterwards it reports with
requests signed by that key, and users connect to it.`,
	})
	cmd.AddCommand(newAdminProviderAddCmd(a), newAdminProviderListCmd(a), newAdminProviderShowCmd(a),
		newAdminProviderStateCmd(a, "disable", trellisv1.ProviderState_PROVIDER_STATE_DISABLED),
		newAdminProviderStateCmd(a, "enable", trellisv1.ProviderState_PROVIDER_STATE_ACTIVE),
		newAdminProviderRemoveCmd(a), newAdminProviderDeliveriesCmd(a))
	return cmd
}

func providerState(s trellisv1.ProviderState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "PROVIDER_STATE_"))
}

func newAdminProviderAddCmd(a *app) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "add SITE --url URL",
		Short: "Add a site; prints its one-time registration token (valid 1 hour) alone on standard output",
		Example: `  TOKEN=$(trellis admin provider add site1 --url https://site1.example.org:7800)
  # at the site: trellis provider init --central https://trellis.example.org --token "$TOKEN" --data-dir /var/lib/trellis-provider`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.AddProvider(cmd.Context(), connect.NewRequest(&trellisv1.AddProviderRequest{Name: args[0], Url: url}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if _, err := fmt.Fprintln(w, resp.Msg.GetRegistrationToken()); err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Err, "Added site %s. The registration token is shown this once and works once, until %s.\n",
					clean(resp.Msg.GetProvider().GetName()), formatTS(resp.Msg.GetExpiresAt()))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "where users reach the site (https://host:port)")
	return cmd
}

func newAdminProviderListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the sites",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.ListProviders(cmd.Context(), connect.NewRequest(&trellisv1.ListProvidersRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if len(resp.Msg.GetProviders()) == 0 {
					_, err := fmt.Fprintln(w, "No sites.")
					return err
				}
				t := newTable(w, "NAME", "STATE", "URL", "KEY", "REGISTERED")
				for _, p := range resp.Msg.GetProviders() {
					key := p.GetFingerprint()
					if key == "" {
						key = "(not registered)"
					}
					t.row(p.GetName(), providerState(p.GetState()), p.GetUrl(), key, formatTS(p.GetRegisteredAt()))
				}
				return t.flush()
			})
		},
	}
}

func newAdminProviderShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show SITE",
		Short: "Show a site",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.GetProvider(cmd.Context(), connect.NewRequest(&trellisv1.GetProviderRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				p := resp.Msg.GetProvider()
				key := p.GetFingerprint()
				if key == "" {
					key = "(not registered yet)"
				}
				_, err := fmt.Fprintf(w, "Name:       %s\nState:      %s\nURL:        %s\nKey:        %s\nRegistered: %s\nCreated:    %s\n",
					clean(p.GetName()), providerState(p.GetState()), clean(p.GetUrl()), key, formatTS(p.GetRegisteredAt()), formatTS(p.GetCreatedAt()))
				return err
			})
		},
	}
}

func newAdminProviderStateCmd(a *app, verb string, state trellisv1.ProviderState) *cobra.Command {
	short := "Disable a site: its reports are refused and no tickets are issued for it"
	if state == trellisv1.ProviderState_PROVIDER_STATE_ACTIVE {
		short = "Enable a disabled site again"
	}
	return &cobra.Command{
		Use:   verb + " SITE",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.SetProviderState(cmd.Context(), connect.NewRequest(&trellisv1.SetProviderStateRequest{Name: args[0], State: state}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Site %s is %s.\n", clean(args[0]), providerState(resp.Msg.GetProvider().GetState()))
				return err
			})
		},
	}
}

func newAdminProviderRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove SITE",
		Short: "Remove a site and its users' connections",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.providers.RemoveProvider(cmd.Context(), connect.NewRequest(&trellisv1.RemoveProviderRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed site %s.\n", clean(args[0]))
				return err
			})
		},
	}
}
