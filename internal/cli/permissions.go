package cli

import (
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
)

func newPermissionsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "permissions KIND",
		Short: "List the rights that exist for a kind of object",
		Long: `List the rights that exist for KIND, as the server knows them, with what each
lets its holder do: the rights project and circle memberships carry, and
those circles are granted on experiments, libraries and realizations
(the RIGHTS of "trellis experiment access" and its kin). KIND is one of
` + strings.Join(domain.PermissionKinds, ", ") + `. Needs no login.`,
		Example:   "  trellis permissions experiment\n  trellis permissions project",
		Args:      exactArgs(1),
		ValidArgs: domain.PermissionKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.info.GetValidPermissions(cmd.Context(), connect.NewRequest(&trellisv1.GetValidPermissionsRequest{Kind: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				t := newTable(w, "RIGHT", "LETS ITS HOLDER")
				for _, p := range resp.Msg.GetPermissions() {
					t.row(p.GetName(), p.GetDescription())
				}
				return t.flush()
			})
		},
	}
}
