package cli

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newRequestCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "request",
		Short: "List, accept and decline pending requests",
		Long: `Requests that widen someone's rights (an invitation into a project or circle,
asking to join one, asking for a vetting project) wait for the other side's
consent. The notification that asks for it names the request's id.`,
	})
	cmd.AddCommand(
		newRequestListCmd(a),
		newRequestAcceptCmd(a),
		newRequestDeclineCmd(a),
	)
	return cmd
}

func newRequestListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the pending requests you can answer or made",
		Long: `List the pending requests you can answer or made. ANSWER says whether you may
accept or decline the request.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.notifications.ListRequests(cmd.Context(), connect.NewRequest(&trellisv1.ListRequestsRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				reqs := resp.Msg.GetRequests()
				if len(reqs) == 0 {
					_, err := fmt.Fprintln(w, "No pending requests.")
					return err
				}
				t := newTable(w, "ID", "KIND", "OBJECT", "SUBJECT", "REQUESTER", "RIGHTS", "ANSWER", "EXPIRES", "MESSAGE")
				for _, r := range reqs {
					t.row(r.GetId(), requestKindName(r.GetKind()), r.GetObject(), r.GetSubject(), r.GetRequester(),
						strings.Join(r.GetRights(), ","), yesNo(r.GetActionable()), formatTS(r.GetExpiresAt()), r.GetMessage())
				}
				return t.flush()
			})
		},
	}
}

func requestKindName(k trellisv1.RequestKind) string {
	return enumName(k.String(), "REQUEST_KIND_")
}

func newRequestAcceptCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "accept ID",
		Short: "Consent to a pending request",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.notifications.AcceptRequest(cmd.Context(), connect.NewRequest(&trellisv1.AcceptRequestRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Accepted request %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newRequestDeclineCmd(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "decline ID [--reason TEXT]",
		Short: "Refuse a pending request",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.notifications.DeclineRequest(cmd.Context(), connect.NewRequest(&trellisv1.DeclineRequestRequest{Id: args[0], Reason: reason}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Declined request %s.\n", clean(args[0]))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the requester")
	return cmd
}
