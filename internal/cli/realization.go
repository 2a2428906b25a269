package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// leaseFlag is --lease: a Go duration ("90m", "8h") or days ("2d"), parsed
// when the flag is, so that a bad value is a usage error before any request.
type leaseFlag struct {
	d   time.Duration
	set bool
}

func (l *leaseFlag) String() string {
	if !l.set {
		return ""
	}
	return l.d.String()
}

func (l *leaseFlag) Type() string { return "duration" }

func (l *leaseFlag) Set(s string) error {
	d, err := parseLease(s)
	if err != nil {
		return err
	}
	l.d, l.set = d, true
	return nil
}

// proto is the lease to send: nil leaves it to the server's default.
func (l *leaseFlag) proto() *durationpb.Duration {
	if !l.set {
		return nil
	}
	return durationpb.New(l.d)
}

func parseLease(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as 90m, 8h or 2d")
		}
		d = time.Duration(n * float64(24*time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("want a duration such as 90m, 8h or 2d")
		}
	}
	if d <= 0 {
		return 0, errors.New("a lease must be longer than zero")
	}
	return d, nil
}

func addLeaseFlag(cmd *cobra.Command, l *leaseFlag, usage string) {
	cmd.Flags().Var(l, "lease", usage)
}

func newRealizeCmd(a *app) *cobra.Command {
	var (
		project string
		lease   leaseFlag
	)
	cmd := &cobra.Command{
		Use:   "realize OWNER:NAME --project P [--lease DURATION]",
		Short: "Bind resources to an experiment's layout",
		Long: `Bind a distinct available resource to every node of the experiment's layout,
all at once or not at all, under a project where you have
realize_experiment (you also need realize on the experiment). The lease
expires unless renewed ('trellis realization renew'); without --lease the
server's default applies.

The first line printed is the realization's id, alone, for scripts; the
bindings (element -> resource) follow.`,
		Example: "  id=$(trellis realize alice:ping --project lab --lease 8h | head -n 1)",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.Realize(cmd.Context(), connect.NewRequest(&trellisv1.RealizeRequest{
				Experiment: args[0],
				Project:    project,
				Lease:      lease.proto(),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				rz := resp.Msg.GetRealization()
				if _, err := fmt.Fprintln(w, clean(rz.GetId())); err != nil {
					return err
				}
				if err := printBindings(w, rz.GetBindings()); err != nil {
					return err
				}
				// For people, out of a script's way.
				fmt.Fprintf(a.streams.Err, "Realized %s under project %s (%s), lease until %s.\n",
					clean(orArg(rz.GetExperiment(), args[0])), clean(orArg(rz.GetProject(), project)),
					clean(rz.GetState()), formatTS(rz.GetLeaseExpiresAt()))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "the project the realization is made under (required)")
	_ = cmd.MarkFlagRequired("project")
	addLeaseFlag(cmd, &lease, "how long the resources stay bound: 90m, 8h, 2d (default: the server's)")
	return cmd
}

func printBindings(w io.Writer, bindings []*trellisv1.Binding) error {
	if len(bindings) == 0 {
		_, err := fmt.Fprintln(w, "No bindings.")
		return err
	}
	t := newTable(w, "ELEMENT", "RESOURCE")
	for _, b := range bindings {
		t.row(b.GetElement(), b.GetResource())
	}
	return t.flush()
}

func newRealizationCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "realization",
		Short: "Inspect, renew, change and release realizations",
		Long: `A realization binds resources to an experiment ('trellis realize'). It has a
state (pending, allocated, active, releasing, released, failed), a lease
that expires unless renewed, and bindings from the layout's elements to
resources. It may be shared with circles, with rights drawn from read,
modify, release and modify_access.`,
	})
	cmd.AddCommand(
		newRealizationShowCmd(a),
		newRealizationListCmd(a),
		newRealizationRenewCmd(a),
		newRealizationReleaseCmd(a),
		newRealizationBindCmd(a),
		newRealizationAccessCmd(a),
		newRealizationWatchCmd(a),
	)
	return cmd
}

func newRealizationShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a realization with its bindings",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.GetRealization(cmd.Context(), connect.NewRequest(&trellisv1.GetRealizationRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printRealization(w, resp.Msg.GetRealization()) })
		},
	}
}

func printRealization(w io.Writer, rz *trellisv1.Realization) error {
	if err := printFields(w,
		"id", rz.GetId(),
		"experiment", rz.GetExperiment(),
		"project", rz.GetProject(),
		"owner", rz.GetOwner(),
		"state", rz.GetState(),
		"lease until", formatTS(rz.GetLeaseExpiresAt()),
		"created", formatTS(rz.GetCreatedAt()),
		"released", formatTS(rz.GetReleasedAt()),
	); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printBindings(w, rz.GetBindings()); err != nil {
		return err
	}
	if m := rz.GetMaterialization(); m != nil {
		fmt.Fprintln(w)
		if err := printMaterialization(w, m); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	return printGrants(w, rz.GetGrants())
}

// printRealizations is the table of 'realization list' and 'admin
// realizations'.
func printRealizations(w io.Writer, rzs []*trellisv1.Realization) error {
	t := newTable(w, "ID", "EXPERIMENT", "PROJECT", "OWNER", "STATE", "LEASE UNTIL", "RESOURCES")
	for _, rz := range rzs {
		resources := make([]string, 0, len(rz.GetBindings()))
		for _, b := range rz.GetBindings() {
			resources = append(resources, b.GetResource())
		}
		t.row(rz.GetId(), rz.GetExperiment(), rz.GetProject(), rz.GetOwner(), realizationState(rz),
			formatTS(rz.GetLeaseExpiresAt()), strings.Join(resources, ","))
	}
	return t.flush()
}

// realizationLister is one page of a listing of realizations.
type realizationLister func(cmd *cobra.Command, c *conn, pageSize int32, token string, ended bool) ([]*trellisv1.Realization, string, error)

// listRealizationsCmd builds 'realization list' and 'admin realizations':
// the same flags and table over a different call; wrap makes the call's own
// response of what was fetched, for --output json.
func listRealizationsCmd(a *app, use, short string, list realizationLister,
	wrap func(rzs []*trellisv1.Realization, next string) proto.Message,
) *cobra.Command {
	var (
		pageToken string
		pageSize  int32
		ended     bool
		all       bool
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var rzs []*trellisv1.Realization
			next, err := fetchPages(all, pageToken, func(token string) (string, error) {
				page, next, err := list(cmd, c, pageSize, token, ended)
				if err != nil {
					return "", err
				}
				rzs = append(rzs, page...)
				return next, nil
			})
			if err != nil {
				return err
			}
			return a.emit(wrap(rzs, next), func(w io.Writer) error {
				if err := printRealizations(w, rzs); err != nil {
					return err
				}
				a.moreHint(next)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&ended, "ended", false, "include released and failed realizations")
	f.Int32Var(&pageSize, "page-size", 0, "realizations per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func newRealizationListCmd(a *app) *cobra.Command {
	return listRealizationsCmd(a, "list [--ended] [--all]", "List the realizations you may read",
		func(cmd *cobra.Command, c *conn, pageSize int32, token string, ended bool) ([]*trellisv1.Realization, string, error) {
			resp, err := c.realizations.ListRealizations(cmd.Context(), connect.NewRequest(&trellisv1.ListRealizationsRequest{
				PageSize:     pageSize,
				PageToken:    token,
				IncludeEnded: ended,
			}))
			if err != nil {
				return nil, "", err
			}
			return resp.Msg.GetRealizations(), resp.Msg.GetNextPageToken(), nil
		},
		func(rzs []*trellisv1.Realization, next string) proto.Message {
			return &trellisv1.ListRealizationsResponse{Realizations: rzs, NextPageToken: next}
		})
}

func newAdminRealizationsCmd(a *app) *cobra.Command {
	return listRealizationsCmd(a, "realizations [--ended] [--all]", "List every live realization, with its owner, project and resources",
		func(cmd *cobra.Command, c *conn, pageSize int32, token string, ended bool) ([]*trellisv1.Realization, string, error) {
			resp, err := c.realizations.ListAllRealizations(cmd.Context(), connect.NewRequest(&trellisv1.ListAllRealizationsRequest{
				PageSize:     pageSize,
				PageToken:    token,
				IncludeEnded: ended,
			}))
			if err != nil {
				return nil, "", err
			}
			return resp.Msg.GetRealizations(), resp.Msg.GetNextPageToken(), nil
		},
		func(rzs []*trellisv1.Realization, next string) proto.Message {
			return &trellisv1.ListAllRealizationsResponse{Realizations: rzs, NextPageToken: next}
		})
}

func newRealizationRenewCmd(a *app) *cobra.Command {
	var lease leaseFlag
	cmd := &cobra.Command{
		Use:   "renew ID [--lease DURATION]",
		Short: "Extend a realization's lease",
		Long:  "Extend a realization's lease to DURATION from now, up to the server's maximum (default: the server's default lease).",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.Renew(cmd.Context(), connect.NewRequest(&trellisv1.RenewRequest{Id: args[0], Lease: lease.proto()}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Renewed realization %s: lease until %s.\n", clean(args[0]),
					orDash(formatTS(resp.Msg.GetRealization().GetLeaseExpiresAt())))
				return err
			})
		},
	}
	addLeaseFlag(cmd, &lease, "the new lease, from now: 90m, 8h, 2d (default: the server's)")
	return cmd
}

func newRealizationReleaseCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "release ID",
		Short: "Release a realization: its resources are free again",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.Release(cmd.Context(), connect.NewRequest(&trellisv1.ReleaseRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printReleased(w, resp.Msg.GetRealization(), args[0]) })
		},
	}
}

func printReleased(w io.Writer, rz *trellisv1.Realization, id string) error {
	_, err := fmt.Fprintf(w, "Released realization %s (%s).\n", clean(orArg(rz.GetId(), id)), clean(orArg(rz.GetState(), "released")))
	return err
}

func newAdminReleaseCmd(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "release ID [--reason TEXT]",
		Short: "Release anyone's realization; its owner is told",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.ForceRelease(cmd.Context(), connect.NewRequest(&trellisv1.ForceReleaseRequest{Id: args[0], Reason: reason}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printReleased(w, resp.Msg.GetRealization(), args[0]) })
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the realization's owner")
	return cmd
}

func newRealizationBindCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "bind ID ELEMENT RESOURCE",
		Short: "Bind a layout element to another (or one more) resource",
		Long: `Bind ELEMENT of the realization's layout to RESOURCE, an available node bound
to no other realization.`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.ChangeBindings(cmd.Context(), connect.NewRequest(&trellisv1.ChangeBindingsRequest{
				Id:       args[0],
				Bindings: []*trellisv1.Binding{{Element: args[1], Resource: args[2]}},
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if _, err := fmt.Fprintf(w, "Bound %s of realization %s to %s.\n", clean(args[1]), clean(args[0]), clean(args[2])); err != nil {
					return err
				}
				fmt.Fprintln(w)
				return printBindings(w, resp.Msg.GetRealization().GetBindings())
			})
		},
	}
}

func newRealizationAccessCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "access ID CIRCLE RIGHTS",
		Short: `Set the rights a circle holds on a realization ("" revokes)`,
		Long: `Set the rights a circle holds on a realization, replacing those it had.
RIGHTS is a comma-separated list drawn from read, modify, release and
modify_access, or "" to revoke the circle's access. "trellis permissions
realization" says what each right allows.`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.realizations.ChangeAccess(cmd.Context(), connect.NewRequest(&trellisv1.RealizationsChangeAccessRequest{
				Id:     args[0],
				Circle: args[1],
				Rights: parseRights(args[2]),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printAccessChanged(w, resp.Msg.GetGrants(), args[1], "realization "+args[0])
			})
		},
	}
}
