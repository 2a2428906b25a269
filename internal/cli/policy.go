package cli

import (
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// exitDenied is the exit status of a policy question answered "denied", so
// that scripts can tell a denial (3) from a failure to ask (1).
const exitDenied = 3

func newPolicyCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "policy",
		Short: "Ask Trellis's authorization decisions",
		Long: `Ask the authorization decisions Trellis makes, as other testbed services do.
Admins and registered services may ask about any user; a user about itself
(UID "" means you). ACTION is e.g. project.add_user, circle.remove_user or
project.read; OBJECT is e.g. project:lab or circle:alice:friends.

check and explain exit 0 when the action is allowed, 3 when it is denied, and
1 when the question could not be answered.`,
	})
	cmd.AddCommand(
		newPolicyCheckCmd(a),
		newPolicyExplainCmd(a),
		newPolicyListCmd(a),
	)
	return cmd
}

func decision(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// decided makes a denial the command's exit status, after the answer was
// printed.
func decided(allowed bool) error {
	if allowed {
		return nil
	}
	return ExitError{Code: exitDenied}
}

func newPolicyCheckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "check UID ACTION OBJECT",
		Short: "Say whether a user may act on an object (exit 0 allowed, 3 denied)",
		Example: `  trellis policy check alice project.add_user project:lab
  trellis policy check "" circle.remove_user circle:alice:friends`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.policy.Check(cmd.Context(), connect.NewRequest(&trellisv1.CheckRequest{Uid: args[0], Action: args[1], Object: args[2]}))
			if err != nil {
				return err
			}
			if err := a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, decision(resp.Msg.GetAllowed()))
				return err
			}); err != nil {
				return err
			}
			return decided(resp.Msg.GetAllowed())
		},
	}
}

func newPolicyExplainCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "explain UID ACTION OBJECT",
		Short: "Say whether a user may act on an object, and why (exit 0 allowed, 3 denied)",
		Long: `Print the decision, then the reasons, one per line: the chain of memberships
and grants that allowed the action, or what was missing.`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.policy.Explain(cmd.Context(), connect.NewRequest(&trellisv1.ExplainRequest{Uid: args[0], Action: args[1], Object: args[2]}))
			if err != nil {
				return err
			}
			if err := a.emit(resp.Msg, func(w io.Writer) error {
				if _, err := fmt.Fprintln(w, decision(resp.Msg.GetAllowed())); err != nil {
					return err
				}
				for _, r := range resp.Msg.GetReasons() {
					if _, err := fmt.Fprintf(w, "  %s\n", clean(r)); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			return decided(resp.Msg.GetAllowed())
		},
	}
}

func newPolicyListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list UID ACTION KIND",
		Short:   "List the objects of a kind (project, circle) a user may act on",
		Long:    "List the objects of a kind (project or circle) on which a user may take ACTION, one per line.",
		Example: `  trellis policy list alice project.add_user project`,
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.policy.ListAllowed(cmd.Context(), connect.NewRequest(&trellisv1.ListAllowedRequest{Uid: args[0], Action: args[1], Kind: args[2]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				for _, o := range resp.Msg.GetObjects() {
					if _, err := fmt.Fprintln(w, clean(o)); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}
