package cli

import (
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newAdminProviderDeliveriesCmd(a *app) *cobra.Command {
	var (
		all       bool
		pageToken string
		pageSize  int32
	)
	cmd := &cobra.Command{
		Use:   "deliveries [SITE]",
		Short: "Show the work the centre holds for sites, oldest first",
		Long: `Show the work queued for sites (all sites, or SITE's): pending deliveries
wait until their site takes them (retried with back-off while it is down);
--all shows delivered and failed ones too.`,
		Args: maximumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			req := &trellisv1.ListDeliveriesRequest{IncludeDone: all, PageSize: pageSize, PageToken: pageToken}
			if len(args) == 1 {
				req.Provider = args[0]
			}
			resp, err := c.providers.ListDeliveries(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				ds := resp.Msg.GetDeliveries()
				if len(ds) == 0 {
					_, err := fmt.Fprintln(w, "No deliveries.")
					return err
				}
				t := newTable(w, "ID", "SITE", "KIND", "STATE", "CREATED", "ATTEMPTS", "NEXT", "LAST ERROR")
				for _, d := range ds {
					next := ""
					if d.GetState() == "pending" {
						next = formatTS(d.GetNextAttemptAt())
					}
					t.row(d.GetId(), d.GetProvider(), d.GetKind(), d.GetState(), formatTS(d.GetCreatedAt()), fmt.Sprint(d.GetAttempts()), next, d.GetLastError())
				}
				if err := t.flush(); err != nil {
					return err
				}
				a.moreHint(resp.Msg.GetNextPageToken())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "include delivered and failed deliveries")
	f.Int32Var(&pageSize, "page-size", 0, "deliveries per page")
	f.StringVar(&pageToken, "page-token", "", "continue after a previous page")
	return cmd
}
