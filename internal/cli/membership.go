package cli

import (
	"context"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// groupCalls are the membership calls of a kind of group (a project or a
// circle), so that one set of commands serves both.
type groupCalls struct {
	noun   string // "project", "circle"
	idName string // "NAME", "OWNER:NAME"
	invite func(ctx context.Context, c *conn, id string, uids, rights []string) (proto.Message, []*trellisv1.UserOutcome, error)
	join   func(ctx context.Context, c *conn, id, message string) (proto.Message, string, error)
	remove func(ctx context.Context, c *conn, id string, uids []string) (proto.Message, []*trellisv1.UserOutcome, error)
}

var projectCalls = groupCalls{
	noun: "project", idName: "NAME",
	invite: func(ctx context.Context, c *conn, id string, uids, rights []string) (proto.Message, []*trellisv1.UserOutcome, error) {
		resp, err := c.projects.AddUsers(ctx, connect.NewRequest(&trellisv1.ProjectsAddUsersRequest{Name: id, Uids: uids, Rights: rights}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetOutcomes(), nil
	},
	join: func(ctx context.Context, c *conn, id, message string) (proto.Message, string, error) {
		resp, err := c.projects.JoinProject(ctx, connect.NewRequest(&trellisv1.JoinProjectRequest{Name: id, Message: message}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg, resp.Msg.GetRequestId(), nil
	},
	remove: func(ctx context.Context, c *conn, id string, uids []string) (proto.Message, []*trellisv1.UserOutcome, error) {
		resp, err := c.projects.RemoveUsers(ctx, connect.NewRequest(&trellisv1.ProjectsRemoveUsersRequest{Name: id, Uids: uids}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetOutcomes(), nil
	},
}

var circleCalls = groupCalls{
	noun: "circle", idName: "OWNER:NAME",
	invite: func(ctx context.Context, c *conn, id string, uids, rights []string) (proto.Message, []*trellisv1.UserOutcome, error) {
		resp, err := c.circles.AddUsers(ctx, connect.NewRequest(&trellisv1.CirclesAddUsersRequest{Id: id, Uids: uids, Rights: rights}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetOutcomes(), nil
	},
	join: func(ctx context.Context, c *conn, id, message string) (proto.Message, string, error) {
		resp, err := c.circles.JoinCircle(ctx, connect.NewRequest(&trellisv1.JoinCircleRequest{Id: id, Message: message}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg, resp.Msg.GetRequestId(), nil
	},
	remove: func(ctx context.Context, c *conn, id string, uids []string) (proto.Message, []*trellisv1.UserOutcome, error) {
		resp, err := c.circles.RemoveUsers(ctx, connect.NewRequest(&trellisv1.CirclesRemoveUsersRequest{Id: id, Uids: uids}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetOutcomes(), nil
	},
}

func newInviteCmd(a *app, g groupCalls) *cobra.Command {
	var rights []string
	cmd := &cobra.Command{
		Use:   "add " + g.idName + " UID... [--rights RIGHT,...]",
		Short: "Invite users into a " + g.noun + " (each must consent)",
		Long: `Invite users into a ` + g.noun + `; needs add_user. Each user becomes a member
once it consents to the pending request it is notified of. One line per user
says what happened: requested (with the request id), added, or failed (with
the reason). The exit status is 1 if any failed.`,
		Args: wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			msg, outcomes, err := g.invite(cmd.Context(), c, args[0], args[1:], cleanRights(rights))
			if err != nil {
				return err
			}
			return a.emitOutcomes(msg, outcomes)
		},
	}
	addRightsFlag(cmd, &rights, "rights the new members get (default: none beyond membership)")
	return cmd
}

func newJoinCmd(a *app, g groupCalls) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "join " + g.idName + " [--message TEXT]",
		Short: "Ask to join a " + g.noun,
		Long:  "Ask to join a " + g.noun + ". Its members who may add users are notified and one of them decides.",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			msg, id, err := g.join(cmd.Context(), c, args[0], message)
			if err != nil {
				return err
			}
			return a.emit(msg, func(w io.Writer) error {
				return printJoinRequested(w, g.noun+" "+args[0], id)
			})
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "a note for the members who decide")
	return cmd
}

func newRemoveMembersCmd(a *app, g groupCalls) *cobra.Command {
	return &cobra.Command{
		Use:   "remove " + g.idName + " UID...",
		Short: "Remove members from a " + g.noun,
		Long: `Remove members from a ` + g.noun + `; needs remove_user, except to remove
yourself. The owner cannot be removed. One line per user says what happened;
the exit status is 1 if any failed.`,
		Args: wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			msg, outcomes, err := g.remove(cmd.Context(), c, args[0], args[1:])
			if err != nil {
				return err
			}
			return a.emitOutcomes(msg, outcomes)
		},
	}
}
