package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newLibraryCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "library",
		Short: "Create and share libraries: named collections of experiments",
		Long: `Libraries are named collections of experiments (OWNER:NAME), shared with
circles like experiments, with rights drawn from read, add_experiment,
remove_experiment and modify_access. A library shows only the experiments
its reader may read.`,
	})
	cmd.AddCommand(
		newLibraryCreateCmd(a),
		newLibraryShowCmd(a),
		newLibraryListCmd(a),
		newLibraryRemoveCmd(a),
		newOwnedOwnerCmd(a, "library", func(ctx context.Context, c *conn, id, uid string) (proto.Message, string, error) {
			resp, err := c.libraries.SetOwner(ctx, connect.NewRequest(&trellisv1.LibrariesSetOwnerRequest{Id: id, Uid: uid}))
			if err != nil {
				return nil, "", err
			}
			return resp.Msg, resp.Msg.GetRequestId(), nil
		}),
		newLibraryAddCmd(a),
		newLibraryExperimentsCmd(a),
		newLibraryRemoveExperimentsCmd(a),
		newLibraryAccessCmd(a),
		newLibraryProfileCmd(a),
		newLibraryDescribeProfileCmd(a),
	)
	return cmd
}

func newLibraryCreateCmd(a *app) *cobra.Command {
	var description string
	var profile []string
	cmd := &cobra.Command{
		Use:   "create OWNER:NAME [--description TEXT]",
		Short: "Create a library named under you or a project (yours either way)",
		Long: `Create a library. OWNER is your uid, or a project where you have
create_library.`,
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
			resp, err := c.libraries.CreateLibrary(cmd.Context(), connect.NewRequest(&trellisv1.CreateLibraryRequest{Id: args[0], Description: description, Profile: attrs}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Created library %s.\n", clean(orArg(resp.Msg.GetLibrary().GetId(), args[0])))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the library is for")
	cmd.Flags().StringArrayVar(&profile, "profile", nil, "profile attribute KEY=VALUE (repeatable; see describe-profile)")
	return cmd
}

func newLibraryShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show OWNER:NAME",
		Short: "Show a library: its experiments and the circles it is shared with",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.libraries.GetLibrary(cmd.Context(), connect.NewRequest(&trellisv1.GetLibraryRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printLibrary(w, resp.Msg.GetLibrary()) })
		},
	}
}

func printLibrary(w io.Writer, l *trellisv1.Library) error {
	if err := printFields(w,
		"id", l.GetId(),
		"owner", l.GetOwner(),
		"creator", l.GetCreator(),
		"description", l.GetDescription(),
		"created", formatTS(l.GetCreatedAt()),
		"experiments", strings.Join(l.GetExperiments(), ", "),
	); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printGrants(w, l.GetGrants())
}

func newLibraryListCmd(a *app) *cobra.Command {
	return newOwnedListCmd(a, ownedList[*trellisv1.Library]{
		plural: "libraries",
		text:   true,
		fetch: func(ctx context.Context, c *conn, q ownedQuery) ([]*trellisv1.Library, string, error) {
			resp, err := c.libraries.ListLibraries(ctx, connect.NewRequest(&trellisv1.ListLibrariesRequest{
				PageSize: q.size, PageToken: q.token, Owner: q.owner, Text: q.text,
			}))
			if err != nil {
				return nil, "", err
			}
			return resp.Msg.GetLibraries(), resp.Msg.GetNextPageToken(), nil
		},
		message: func(items []*trellisv1.Library, next string) proto.Message {
			return &trellisv1.ListLibrariesResponse{Libraries: items, NextPageToken: next}
		},
	})
}

func newLibraryRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm OWNER:NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a library (its experiments stay)",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.libraries.RemoveLibrary(cmd.Context(), connect.NewRequest(&trellisv1.RemoveLibraryRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed library %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newLibraryAddCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "add LIBRARY EXPERIMENT...",
		Short: "Add experiments to a library",
		Long:  "Add experiments to a library; needs add_experiment on the library and read on each experiment.",
		Args:  wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.libraries.AddExperiments(cmd.Context(), connect.NewRequest(&trellisv1.AddExperimentsRequest{Id: args[0], Experiments: args[1:]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printLibraryHolds(w, resp.Msg.GetLibrary(), args[0]) })
		},
	}
}

func newLibraryRemoveExperimentsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove LIBRARY EXPERIMENT...",
		Short: "Take experiments out of a library (they are not removed)",
		Long:  "Take experiments out of a library; needs remove_experiment on the library. The experiments themselves stay.",
		Args:  wrapArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.libraries.RemoveExperiments(cmd.Context(), connect.NewRequest(&trellisv1.RemoveExperimentsRequest{Id: args[0], Experiments: args[1:]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printLibraryHolds(w, resp.Msg.GetLibrary(), args[0]) })
		},
	}
}

func printLibraryHolds(w io.Writer, l *trellisv1.Library, id string) error {
	holds := "no experiment you may read"
	if xs := l.GetExperiments(); len(xs) > 0 {
		holds = strings.Join(xs, ", ")
	}
	_, err := fmt.Fprintf(w, "Library %s holds %s.\n", clean(orArg(l.GetId(), id)), clean(holds))
	return err
}

func newLibraryAccessCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "access LIBRARY CIRCLE RIGHTS",
		Short: `Set the rights a circle holds on a library ("" revokes)`,
		Long: `Set the rights a circle holds on a library, replacing those it had; needs
modify_access. RIGHTS is a comma-separated list drawn from read,
add_experiment, remove_experiment and modify_access ("modify" stands for
both experiment rights), or "" to revoke the circle's access. "trellis permissions library"
says what each right allows.`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.libraries.ChangeAccess(cmd.Context(), connect.NewRequest(&trellisv1.LibrariesChangeAccessRequest{
				Id:     args[0],
				Circle: args[1],
				Rights: parseRights(args[2]),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printAccessChanged(w, resp.Msg.GetGrants(), args[1], "library "+args[0])
			})
		},
	}
}

func newLibraryProfileCmd(a *app) *cobra.Command {
	return newProfileCmd(a, "library", "OWNER:NAME", profileOps{
		get: func(ctx context.Context, c *conn, id string) (proto.Message, []*trellisv1.ProfileAttribute, error) {
			resp, err := c.libraries.GetLibraryProfile(ctx, connect.NewRequest(&trellisv1.GetLibraryProfileRequest{Id: id}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetAttributes(), nil
		},
		set: func(ctx context.Context, c *conn, id string, set map[string]string, clear []string) (proto.Message, []*trellisv1.AttributeChange, error) {
			resp, err := c.libraries.SetLibraryProfile(ctx, connect.NewRequest(&trellisv1.SetLibraryProfileRequest{Id: id, Set: set, Clear: clear}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetChanges(), nil
		},
	})
}

func newLibraryDescribeProfileCmd(a *app) *cobra.Command {
	return newDescribeProfileCmd(a, "library", func(ctx context.Context, c *conn) (proto.Message, []*trellisv1.AttributeDescription, error) {
		resp, err := c.libraries.GetProfileDescription(ctx, connect.NewRequest(&trellisv1.LibrariesGetProfileDescriptionRequest{}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetAttributes(), nil
	})
}

func newLibraryExperimentsCmd(a *app) *cobra.Command {
	var (
		pageToken string
		pageSize  int32
		all       bool
	)
	cmd := &cobra.Command{
		Use:   "experiments OWNER:NAME [--all]",
		Short: "List the experiments in a library that you may read",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			out := &trellisv1.ListLibraryExperimentsResponse{}
			out.NextPageToken, err = fetchPages(all, pageToken, func(token string) (string, error) {
				resp, err := c.libraries.ListLibraryExperiments(cmd.Context(), connect.NewRequest(&trellisv1.ListLibraryExperimentsRequest{
					Id: args[0], PageSize: pageSize, PageToken: token,
				}))
				if err != nil {
					return "", err
				}
				out.Experiments = append(out.Experiments, resp.Msg.GetExperiments()...)
				return resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error {
				t := newTable(w, "ID", "OWNER", "CREATOR", "CREATED", "DESCRIPTION")
				for _, x := range out.GetExperiments() {
					t.row(x.GetId(), x.GetOwner(), x.GetCreator(), formatTS(x.GetCreatedAt()), x.GetDescription())
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
	f.Int32Var(&pageSize, "page-size", 0, "experiments per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}
