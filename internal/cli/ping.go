package cli

import (
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newPingCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "ping [MESSAGE]",
		Short: "Check that the server answers and accepts your credentials",
		Long: `Send MESSAGE (default "ping") to the server, which answers it with the uid
your credentials name: a test of connectivity and credentials together.`,
		Args: maximumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg := "ping"
			if len(args) == 1 {
				msg = args[0]
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.auth.Echo(cmd.Context(), connect.NewRequest(&trellisv1.EchoRequest{Message: msg}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s answered %s: %q\n", clean(c.server), clean(resp.Msg.GetUid()), resp.Msg.GetMessage())
				return err
			})
		},
	}
}
