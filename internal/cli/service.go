package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newAdminServiceCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "service",
		Short: "Register the services that act for users",
		Long: `A registered service trades a user's access token for a short-lived token that
names both (Auth.ExchangeToken), proving itself with a JWT signed by its
Ed25519 key or with a client secret that Trellis generates.`,
	})
	cmd.AddCommand(newAdminServiceAddCmd(a), newAdminServiceListCmd(a), newAdminServiceRmCmd(a),
		newAdminServiceStateCmd(a, "disable", trellisv1.ServiceState_SERVICE_STATE_DISABLED),
		newAdminServiceStateCmd(a, "enable", trellisv1.ServiceState_SERVICE_STATE_ACTIVE))
	return cmd
}

func newAdminServiceAddCmd(a *app) *cobra.Command {
	var (
		keyFile string
		secret  bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME (--public-key FILE | --secret)",
		Short: "Register a service with its Ed25519 public key, or with a generated secret",
		Long: `Register a service. With --public-key, the service signs its assertions with
the matching Ed25519 private key (FILE holds a PEM public key or the 32 raw
bytes in base64). With --secret, Trellis generates a client secret and prints
it alone on standard output, this once: store it now.`,
		Example: `  trellis admin service add runner --public-key runner.pub
  RUNNER_SECRET=$(trellis admin service add archiver --secret)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (keyFile == "") == !secret {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("give exactly one of --public-key FILE and --secret")}
			}
			m := &trellisv1.RegisterServiceRequest{Name: args[0]}
			if secret {
				m.Credential = &trellisv1.RegisterServiceRequest_GenerateSecret{GenerateSecret: true}
			} else {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return err
				}
				m.Credential = &trellisv1.RegisterServiceRequest_PublicKey{PublicKey: string(b)}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.services.RegisterService(cmd.Context(), connect.NewRequest(m))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				s := resp.Msg.GetService()
				if sec := resp.Msg.GetClientSecret(); sec != "" {
					if _, err := fmt.Fprintln(w, sec); err != nil {
						return err
					}
					fmt.Fprintf(a.streams.Err, "Registered service %s with a client secret. It is shown this once.\n", clean(s.GetName()))
					return nil
				}
				_, err := fmt.Fprintf(w, "Registered service %s with public key %s.\n", clean(s.GetName()), clean(s.GetFingerprint()))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "public-key", "", "file holding the service's Ed25519 public key (PEM or base64)")
	cmd.Flags().BoolVar(&secret, "secret", false, "generate a client secret, printed once")
	return cmd
}

func newAdminServiceListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the registered services (never their secrets)",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.services.ListServices(cmd.Context(), connect.NewRequest(&trellisv1.ListServicesRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if len(resp.Msg.GetServices()) == 0 {
					_, err := fmt.Fprintln(w, "No services.")
					return err
				}
				t := newTable(w, "NAME", "STATE", "CREDENTIAL", "CREATED")
				for _, s := range resp.Msg.GetServices() {
					cred := s.GetCredential()
					if s.GetFingerprint() != "" {
						cred += " " + s.GetFingerprint()
					}
					state := strings.ToLower(strings.TrimPrefix(s.GetState().String(), "SERVICE_STATE_"))
					t.row(s.GetName(), state, cred, formatTS(s.GetCreatedAt()))
				}
				return t.flush()
			})
		},
	}
}

func newAdminServiceRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a service; the tokens it obtained stop working",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.services.RemoveService(cmd.Context(), connect.NewRequest(&trellisv1.RemoveServiceRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed service %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newAdminServiceStateCmd(a *app, verb string, state trellisv1.ServiceState) *cobra.Command {
	short := "Disable a service: its exchanges and the tokens it obtained are refused"
	if state == trellisv1.ServiceState_SERVICE_STATE_ACTIVE {
		short = "Enable a disabled service again"
	}
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.services.SetServiceState(cmd.Context(), connect.NewRequest(&trellisv1.SetServiceStateRequest{Name: args[0], State: state}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Service %s is %s.\n", clean(args[0]), strings.ToLower(strings.TrimPrefix(resp.Msg.GetService().GetState().String(), "SERVICE_STATE_")))
				return err
			})
		},
	}
}
