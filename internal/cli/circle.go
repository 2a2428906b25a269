package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newCircleCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "circle",
		Short: "Create and manage circles: groups of users for sharing",
		Long: `Circles are groups of users for sharing, named OWNER:NAME where OWNER is a user
or a project. Every user has the circle UID:UID and every project the circle
PROJECT:PROJECT of its members; those follow their owner and cannot be
changed directly. Member rights are drawn from add_user, remove_user and
realize_experiment; the server says which it accepts, and 'trellis
permissions circle' what each allows.`,
	})
	cmd.AddCommand(
		newCircleCreateCmd(a),
		newCircleShowCmd(a),
		newCircleListCmd(a),
		newCircleDeleteCmd(a),
		newCircleAddCmd(a),
		newCircleJoinCmd(a),
		newCircleRemoveCmd(a),
		newCircleRightsCmd(a),
		newCircleOwnerCmd(a),
		newCircleProfileCmd(a),
		newCircleDescribeProfileCmd(a),
	)
	return cmd
}

func newCircleCreateCmd(a *app) *cobra.Command {
	var description string
	var profile []string
	cmd := &cobra.Command{
		Use:   "create OWNER:NAME [--description TEXT]",
		Short: "Create a circle owned by you or by a project",
		Long: `Create a circle. OWNER is your uid, or a project where you have
create_circle.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			attrs, err := parseAssignments(profile, "--profile")
			if err != nil {
				return usageError{cmd: cmd.CommandPath(), err: err}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.circles.CreateCircle(cmd.Context(), connect.NewRequest(&trellisv1.CreateCircleRequest{Id: args[0], Description: description, Profile: attrs}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				id := resp.Msg.GetCircle().GetId()
				if id == "" {
					id = args[0]
				}
				_, err := fmt.Fprintf(w, "Created circle %s.\n", clean(id))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the circle is for")
	cmd.Flags().StringArrayVar(&profile, "profile", nil, "profile attribute KEY=VALUE (repeatable; see describe-profile)")
	return cmd
}

func newCircleShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show OWNER:NAME",
		Short: "Show a circle and its members",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.circles.GetCircle(cmd.Context(), connect.NewRequest(&trellisv1.GetCircleRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printCircle(w, resp.Msg.GetCircle()) })
		},
	}
}

func printCircle(w io.Writer, ci *trellisv1.Circle) error {
	if err := printFields(w,
		"id", ci.GetId(),
		"owner", ci.GetOwner(),
		"automatic", yesNo(ci.GetAutomatic()),
		"created", formatTS(ci.GetCreatedAt()),
	); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return printMembers(w, ci.GetMembers())
}

func newCircleListCmd(a *app) *cobra.Command {
	var (
		owner, pageToken string
		pageSize         int32
		all              bool
	)
	cmd := &cobra.Command{
		Use:   "list [--owner OWNER]",
		Short: "List the circles you belong to or administer",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			out := &trellisv1.ListCirclesResponse{}
			out.NextPageToken, err = fetchPages(all, pageToken, func(token string) (string, error) {
				resp, err := c.circles.ListCircles(cmd.Context(), connect.NewRequest(&trellisv1.ListCirclesRequest{
					PageSize:  pageSize,
					PageToken: token,
					Owner:     owner,
				}))
				if err != nil {
					return "", err
				}
				out.Circles = append(out.Circles, resp.Msg.GetCircles()...)
				return resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error {
				t := newTable(w, "ID", "OWNER", "AUTOMATIC", "MEMBERS", "CREATED")
				for _, ci := range out.GetCircles() {
					t.row(ci.GetId(), ci.GetOwner(), yesNo(ci.GetAutomatic()),
						strconv.Itoa(len(ci.GetMembers())), formatTS(ci.GetCreatedAt()))
				}
				if err := t.flush(); err != nil {
					return err
				}
				a.moreHint(out.GetNextPageToken())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&owner, "owner", "", "only circles owned by this user or project")
	f.Int32Var(&pageSize, "page-size", 0, "circles per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func newCircleDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete OWNER:NAME",
		Short: "Delete a circle",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.circles.RemoveCircle(cmd.Context(), connect.NewRequest(&trellisv1.RemoveCircleRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted circle %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newCircleAddCmd(a *app) *cobra.Command { return newInviteCmd(a, circleCalls) }

func newCircleJoinCmd(a *app) *cobra.Command { return newJoinCmd(a, circleCalls) }

func newCircleRemoveCmd(a *app) *cobra.Command { return newRemoveMembersCmd(a, circleCalls) }

func newCircleRightsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rights OWNER:NAME UID RIGHTS",
		Short: `Set a member's rights (comma-separated; "" for none)`,
		Long: `Set a member's rights, replacing those it had. RIGHTS is a comma-separated
list such as add_user,remove_user, or "" for none.`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.circles.ChangeRights(cmd.Context(), connect.NewRequest(&trellisv1.CirclesChangeRightsRequest{
				Id:     args[0],
				Uid:    args[1],
				Rights: parseRights(args[2]),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printRightsChanged(w, resp.Msg.GetMember(), args[1], "circle "+args[0])
			})
		},
	}
}

func newCircleOwnerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "owner OWNER:NAME UID",
		Short: "Hand a circle over to another member",
		Long:  "Hand a circle over to another member. The circle keeps its name.",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.circles.SetOwner(cmd.Context(), connect.NewRequest(&trellisv1.CirclesSetOwnerRequest{Id: args[0], Uid: args[1]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Circle %s is now owned by %s.\n", clean(args[0]), clean(args[1]))
				return err
			})
		},
	}
}

func newCircleProfileCmd(a *app) *cobra.Command {
	return newProfileCmd(a, "circle", "OWNER:NAME", profileOps{
		get: func(ctx context.Context, c *conn, id string) (proto.Message, []*trellisv1.ProfileAttribute, error) {
			resp, err := c.circles.GetCircleProfile(ctx, connect.NewRequest(&trellisv1.GetCircleProfileRequest{Id: id}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetAttributes(), nil
		},
		set: func(ctx context.Context, c *conn, id string, set map[string]string, clear []string) (proto.Message, []*trellisv1.AttributeChange, error) {
			resp, err := c.circles.SetCircleProfile(ctx, connect.NewRequest(&trellisv1.SetCircleProfileRequest{Id: id, Set: set, Clear: clear}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetChanges(), nil
		},
	})
}

func newCircleDescribeProfileCmd(a *app) *cobra.Command {
	return newDescribeProfileCmd(a, "circle", func(ctx context.Context, c *conn) (proto.Message, []*trellisv1.AttributeDescription, error) {
		resp, err := c.circles.GetProfileDescription(ctx, connect.NewRequest(&trellisv1.CirclesGetProfileDescriptionRequest{}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetAttributes(), nil
	})
}
