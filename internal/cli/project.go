package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newProjectCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "project",
		Short: "Request, inspect and manage projects and their members",
		Long: `Projects vouch for their members: membership in an approved project is what
lets a user do anything beyond its own profile. Member rights are drawn from
add_user, remove_user, create_circle, create_experiment, create_library and
realize_experiment; the server says which it accepts, and 'trellis
permissions project' what each allows.`,
	})
	cmd.AddCommand(
		newProjectRequestCmd(a),
		newProjectApproveCmd(a),
		newProjectRejectCmd(a),
		newProjectShowCmd(a),
		newProjectListCmd(a),
		newProjectDeleteCmd(a),
		newProjectMembersCmd(a),
		newProjectAddCmd(a),
		newProjectJoinCmd(a),
		newProjectRemoveCmd(a),
		newProjectRightsCmd(a),
		newProjectOwnerCmd(a),
		newProjectNestCmd(a),
		newProjectUnnestCmd(a),
		newProjectProfileCmd(a),
		newProjectDescribeProfileCmd(a),
	)
	return cmd
}

func newProjectRequestCmd(a *app) *cobra.Command {
	var (
		description string
		vetting     bool
		profile     []string
	)
	cmd := &cobra.Command{
		Use:   "request NAME --description TEXT [--vetting]",
		Short: "Ask for a new project, with you as its owner",
		Long: `Ask for a new project with you as its owner. A member of an approved project
gets it at once, unless the server vets every project; otherwise (or with
--vetting) it waits for an admin's approval, and the command prints the id of
the pending request.`,
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
			resp, err := c.projects.RequestProject(cmd.Context(), connect.NewRequest(&trellisv1.RequestProjectRequest{
				Name:        args[0],
				Description: description,
				Vetting:     vetting,
				Profile:     attrs,
			}))
			if err != nil {
				return err
			}
			p := resp.Msg.GetProject()
			name := p.GetName()
			if name == "" {
				name = args[0]
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if id := resp.Msg.GetRequestId(); id != "" || p.GetState() == trellisv1.ProjectState_PROJECT_STATE_PENDING {
					if id == "" {
						_, err := fmt.Fprintf(w, "Requested project %s: it waits for an admin's approval.\n", clean(name))
						return err
					}
					_, err := fmt.Fprintf(w, "Requested project %s: it waits for an admin's approval (request %s).\n", clean(name), clean(id))
					return err
				}
				_, err := fmt.Fprintf(w, "Created project %s: it exists now, owned by %s.\n", clean(name), clean(p.GetOwner()))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&description, "description", "", "what the project is for (required)")
	f.BoolVar(&vetting, "vetting", false, "ask for an admin's approval even where it is not required")
	f.StringArrayVar(&profile, "profile", nil, "profile attribute KEY=VALUE (repeatable; see describe-profile)")
	_ = cmd.MarkFlagRequired("description")
	return cmd
}

func newProjectApproveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve a project waiting for approval (admins)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.ApproveProject(cmd.Context(), connect.NewRequest(&trellisv1.ApproveProjectRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Approved project %s (owner %s).\n", clean(args[0]), clean(resp.Msg.GetProject().GetOwner()))
				return err
			})
		},
	}
}

func newProjectRejectCmd(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "reject NAME [--reason TEXT]",
		Short: "Reject a project waiting for approval (admins)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.RejectProject(cmd.Context(), connect.NewRequest(&trellisv1.RejectProjectRequest{Name: args[0], Reason: reason}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Rejected project %s.\n", clean(args[0]))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the requester")
	return cmd
}

func newProjectShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a project",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.GetProject(cmd.Context(), connect.NewRequest(&trellisv1.GetProjectRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printProject(w, resp.Msg.GetProject()) })
		},
	}
}

func printProject(w io.Writer, p *trellisv1.Project) error {
	children := make([]string, 0, len(p.GetChildren()))
	for _, ch := range p.GetChildren() {
		children = append(children, fmt.Sprintf("%s (rights: %s)", ch.GetName(), rightsText(ch.GetRights())))
	}
	return printFields(w,
		"name", p.GetName(),
		"owner", p.GetOwner(),
		"state", projectStateName(p.GetState()),
		"vetting", yesNo(p.GetVetting()),
		"description", p.GetDescription(),
		"parents", strings.Join(p.GetParents(), ", "),
		"children", strings.Join(children, ", "),
		"created", formatTS(p.GetCreatedAt()),
		"approved", formatTS(p.GetApprovedAt()),
	)
}

func projectStateName(s trellisv1.ProjectState) string {
	return enumName(s.String(), "PROJECT_STATE_")
}

func newProjectListCmd(a *app) *cobra.Command {
	var (
		prefix, member, pageToken string
		pageSize                  int32
		pending, all              bool
	)
	cmd := &cobra.Command{
		Use:   "list [--prefix P] [--member UID] [--pending] [--all]",
		Short: "List the projects you may see",
		Long: `List the projects you may see: your own and those you belong to, directly or
through nesting (admins: all). --pending includes projects waiting for approval.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			out := &trellisv1.ListProjectsResponse{}
			out.NextPageToken, err = fetchPages(all, pageToken, func(token string) (string, error) {
				resp, err := c.projects.ListProjects(cmd.Context(), connect.NewRequest(&trellisv1.ListProjectsRequest{
					PageSize:       pageSize,
					PageToken:      token,
					NamePrefix:     prefix,
					Member:         member,
					IncludePending: pending,
				}))
				if err != nil {
					return "", err
				}
				out.Projects = append(out.Projects, resp.Msg.GetProjects()...)
				return resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error {
				t := newTable(w, "NAME", "OWNER", "STATE", "VETTING", "CREATED", "DESCRIPTION")
				for _, p := range out.GetProjects() {
					t.row(p.GetName(), p.GetOwner(), projectStateName(p.GetState()), yesNo(p.GetVetting()),
						formatTS(p.GetCreatedAt()), p.GetDescription())
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
	f.StringVar(&prefix, "prefix", "", "only projects whose name starts with this")
	f.StringVar(&member, "member", "", "only projects this user owns or belongs to")
	f.BoolVar(&pending, "pending", false, "include projects waiting for approval")
	f.Int32Var(&pageSize, "page-size", 0, "projects per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func newProjectDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a project with its memberships and circles (owner or admin)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.RemoveProject(cmd.Context(), connect.NewRequest(&trellisv1.RemoveProjectRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted project %s with its memberships and circles.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newProjectMembersCmd(a *app) *cobra.Command {
	var effective bool
	cmd := &cobra.Command{
		Use:   "members NAME [--effective]",
		Short: "List a project's members and their rights",
		Long: `List a project's members and their rights. With --effective, members through
nested projects too; VIA names the nested project they come through.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.ListMembers(cmd.Context(), connect.NewRequest(&trellisv1.ListMembersRequest{Name: args[0], Effective: effective}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printMembers(w, resp.Msg.GetMembers()) })
		},
	}
	cmd.Flags().BoolVar(&effective, "effective", false, "include members through nested projects")
	return cmd
}

func newProjectAddCmd(a *app) *cobra.Command { return newInviteCmd(a, projectCalls) }

func newProjectJoinCmd(a *app) *cobra.Command { return newJoinCmd(a, projectCalls) }

func printJoinRequested(w io.Writer, what, id string) error {
	_, err := fmt.Fprintf(w, "Asked to join %s (request %s); the members who may add users decide.\n", clean(what), clean(orDash(id)))
	return err
}

func newProjectRemoveCmd(a *app) *cobra.Command { return newRemoveMembersCmd(a, projectCalls) }

func newProjectRightsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rights NAME UID RIGHTS",
		Short: `Set a member's rights (comma-separated; "" for none)`,
		Long: `Set a member's rights, replacing those it had; needs add_user. RIGHTS is a
comma-separated list such as add_user,realize_experiment, or "" for none.`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.ChangeRights(cmd.Context(), connect.NewRequest(&trellisv1.ProjectsChangeRightsRequest{
				Name:   args[0],
				Uid:    args[1],
				Rights: parseRights(args[2]),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printRightsChanged(w, resp.Msg.GetMember(), args[1], "project "+args[0])
			})
		},
	}
}

func printRightsChanged(w io.Writer, m *trellisv1.Member, uid, where string) error {
	if m.GetUid() != "" {
		uid = m.GetUid()
	}
	_, err := fmt.Fprintf(w, "Rights of %s in %s: %s.\n", clean(uid), clean(where), clean(rightsText(m.GetRights())))
	return err
}

func newProjectOwnerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "owner NAME UID",
		Short: "Hand a project over to another member (owner only)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.SetOwner(cmd.Context(), connect.NewRequest(&trellisv1.ProjectsSetOwnerRequest{Name: args[0], Uid: args[1]}))
			if err != nil {
				return err
			}
			owner := resp.Msg.GetProject().GetOwner()
			if owner == "" {
				owner = args[1]
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Project %s is now owned by %s.\n", clean(args[0]), clean(owner))
				return err
			})
		},
	}
}

func newProjectNestCmd(a *app) *cobra.Command {
	var rights []string
	cmd := &cobra.Command{
		Use:   "nest PARENT CHILD [--rights RIGHT,...]",
		Short: "Nest a project in another: its members get rights in the parent",
		Long: `Nest CHILD in PARENT: CHILD's members become members of PARENT with the given
rights. Needs add_user in PARENT and ownership of CHILD; cycles are refused.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			rs := cleanRights(rights)
			resp, err := c.projects.AddChildProject(cmd.Context(), connect.NewRequest(&trellisv1.AddChildProjectRequest{
				Parent: args[0],
				Child:  args[1],
				Rights: rs,
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Nested project %s in %s; its members' rights there: %s.\n",
					clean(args[1]), clean(args[0]), clean(rightsText(rs)))
				return err
			})
		},
	}
	addRightsFlag(cmd, &rights, "rights the child's members get in the parent (default: none beyond membership)")
	return cmd
}

func newProjectUnnestCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unnest PARENT CHILD",
		Short: "Take a nested project out of its parent",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.RemoveChildProject(cmd.Context(), connect.NewRequest(&trellisv1.RemoveChildProjectRequest{Parent: args[0], Child: args[1]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Project %s is no longer nested in %s.\n", clean(args[1]), clean(args[0]))
				return err
			})
		},
	}
}

func newProjectProfileCmd(a *app) *cobra.Command {
	return newProfileCmd(a, "project", "NAME", profileOps{
		get: func(ctx context.Context, c *conn, name string) (proto.Message, []*trellisv1.ProfileAttribute, error) {
			resp, err := c.projects.GetProjectProfile(ctx, connect.NewRequest(&trellisv1.GetProjectProfileRequest{Name: name}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetAttributes(), nil
		},
		set: func(ctx context.Context, c *conn, name string, set map[string]string, clear []string) (proto.Message, []*trellisv1.AttributeChange, error) {
			resp, err := c.projects.SetProjectProfile(ctx, connect.NewRequest(&trellisv1.SetProjectProfileRequest{Name: name, Set: set, Clear: clear}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetChanges(), nil
		},
	})
}

func newProjectDescribeProfileCmd(a *app) *cobra.Command {
	return newDescribeProfileCmd(a, "project", func(ctx context.Context, c *conn) (proto.Message, []*trellisv1.AttributeDescription, error) {
		resp, err := c.projects.GetProfileDescription(ctx, connect.NewRequest(&trellisv1.ProjectsGetProfileDescriptionRequest{}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetAttributes(), nil
	})
}

// What projects and circles share: members with rights, batches of users
// with one outcome each, and profiles.

// addRightsFlag adds --rights: comma-separated and repeatable. The names go
// to the server as given; it knows the vocabulary and says which it refuses.
func addRightsFlag(cmd *cobra.Command, p *[]string, usage string) {
	cmd.Flags().StringSliceVar(p, "rights", nil, usage+"; comma-separated, repeatable")
}

// parseRights reads a comma-separated list of rights; "" is none. Blanks
// around names and empty items ("a,,b", a trailing comma) are dropped.
func parseRights(s string) []string {
	return cleanRights(strings.Split(s, ","))
}

func cleanRights(in []string) []string {
	out := []string{}
	for _, r := range in {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func rightsText(rights []string) string {
	if len(rights) == 0 {
		return "none"
	}
	return strings.Join(rights, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printMembers(w io.Writer, members []*trellisv1.Member) error {
	t := newTable(w, "UID", "RIGHTS", "OWNER", "VIA")
	for _, m := range members {
		t.row(m.GetUid(), strings.Join(m.GetRights(), ","), yesNo(m.GetOwner()), m.GetVia())
	}
	return t.flush()
}

// emitOutcomes prints one line per user of a batch (add, remove) and makes the
// exit status 1 if any failed, once every user has been reported.
func (a *app) emitOutcomes(m proto.Message, outcomes []*trellisv1.UserOutcome) error {
	err := a.emit(m, func(w io.Writer) error {
		for _, o := range outcomes {
			if _, err := fmt.Fprintf(w, "%s: %s\n", clean(o.GetUid()), clean(outcomeText(o))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if slices.ContainsFunc(outcomes, outcomeFailed) {
		return ExitError{Code: 1}
	}
	return nil
}

func outcomeFailed(o *trellisv1.UserOutcome) bool { return o.GetOutcome() == "failed" }

func outcomeText(o *trellisv1.UserOutcome) string {
	s := o.GetOutcome()
	if s == "" {
		s = "unknown"
	}
	if o.GetRequestId() != "" {
		s += " (request " + o.GetRequestId() + ")"
	}
	if o.GetReason() != "" {
		s += ": " + o.GetReason()
	}
	return s
}

// profileOps are the calls behind a profile command for one kind of object.
type profileOps struct {
	get func(ctx context.Context, c *conn, id string) (proto.Message, []*trellisv1.ProfileAttribute, error)
	set func(ctx context.Context, c *conn, id string, set map[string]string, clear []string) (proto.Message, []*trellisv1.AttributeChange, error)
}

// newProfileCmd is "KIND profile ID" (show) and "KIND profile ID set
// KEY=VALUE... [--clear KEY]..." (change). The object comes first, so that a
// profile of an object named "set" can still be shown.
func newProfileCmd(a *app, kind, idName string, ops profileOps) *cobra.Command {
	var clear []string
	cmd := &cobra.Command{
		Use:   "profile " + idName + " [set KEY=VALUE... [--clear KEY]...]",
		Short: "Show a " + kind + "'s profile; with 'set', change it",
		Long: `Without 'set': show the ` + kind + `'s profile attributes.
With 'set': set attributes to values and clear optional ones with --clear.
The server applies what it can and reports every attribute: "changed",
"unchanged", or "failed" with the reason and rule. The exit status is 1 if
any attribute failed.`,
		Example: "  trellis " + kind + " profile " + idName + "\n" +
			"  trellis " + kind + " profile " + idName + " set URL=https://example.org --clear funding",
		Args: wrapArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, rest := args[0], args[1:]
			if len(rest) == 0 {
				if len(clear) > 0 {
					return usageError{cmd: cmd.CommandPath(), err: errors.New("--clear goes with 'set': " + idName + " set [KEY=VALUE...] --clear KEY")}
				}
				c, err := a.connect()
				if err != nil {
					return err
				}
				msg, attrs, err := ops.get(cmd.Context(), c, id)
				if err != nil {
					return err
				}
				return a.emit(msg, func(w io.Writer) error { return printProfile(w, attrs) })
			}
			if rest[0] != "set" {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("unexpected argument %q: want '%s' alone or '%s set KEY=VALUE...'", rest[0], idName, idName)}
			}
			set, err := parseAssignments(rest[1:], "argument")
			if err != nil {
				return usageError{cmd: cmd.CommandPath(), err: err}
			}
			if len(set) == 0 && len(clear) == 0 {
				return usageError{cmd: cmd.CommandPath(), err: errors.New("nothing to do: give KEY=VALUE arguments or --clear KEY")}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			msg, changes, err := ops.set(cmd.Context(), c, id, set, clear)
			if err != nil {
				return err
			}
			return a.emitChanges(msg, changes)
		},
	}
	cmd.Flags().StringArrayVar(&clear, "clear", nil, "with 'set': optional attribute to clear (repeatable)")
	return cmd
}

func printProfile(w io.Writer, attrs []*trellisv1.ProfileAttribute) error {
	t := newTable(w, "ATTRIBUTE", "VALUE", "ACCESS")
	for _, at := range attrs {
		t.row(at.GetName(), at.GetValue(), accessName(at.GetAccess()))
	}
	return t.flush()
}

// emitChanges reports every attribute of a profile change, like 'user profile
// set', and makes the exit status 1 if any failed.
func (a *app) emitChanges(m proto.Message, changes []*trellisv1.AttributeChange) error {
	err := a.emit(m, func(w io.Writer) error {
		for _, ch := range changes {
			status := "unchanged"
			switch {
			case changeFailed(ch):
				status = fmt.Sprintf("failed: %s (%s)", ch.GetReason(), ch.GetRule())
			case ch.GetChanged():
				status = "changed"
			}
			if _, err := fmt.Fprintf(w, "%s: %s\n", clean(ch.GetName()), clean(status)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if slices.ContainsFunc(changes, changeFailed) {
		return ExitError{Code: 1}
	}
	return nil
}

func changeFailed(ch *trellisv1.AttributeChange) bool {
	return ch.GetRule() != "" || ch.GetReason() != ""
}

// newDescribeProfileCmd describes the profile of a kind of object; fetch
// asks the server.
func newDescribeProfileCmd(a *app, noun string, fetch func(ctx context.Context, c *conn) (proto.Message, []*trellisv1.AttributeDescription, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "describe-profile",
		Short: "Describe the attributes of a " + noun + " profile",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			msg, attrs, err := fetch(cmd.Context(), c)
			if err != nil {
				return err
			}
			return a.emit(msg, func(w io.Writer) error { return printAttributeDescriptions(w, attrs) })
		},
	}
}

func printAttributeDescriptions(w io.Writer, in []*trellisv1.AttributeDescription) error {
	attrs := slices.Clone(in)
	slices.SortStableFunc(attrs, func(x, y *trellisv1.AttributeDescription) int {
		return int(x.GetOrderingHint()) - int(y.GetOrderingHint())
	})
	t := newTable(w, "NAME", "DESCRIPTION", "ACCESS", "REQUIRED", "TYPE", "FORMAT")
	for _, at := range attrs {
		format := at.GetFormatDescription()
		if format == "" {
			format = at.GetFormat()
		}
		t.row(at.GetName(), at.GetDescription(), accessName(at.GetAccess()),
			yesNo(!at.GetOptional()), dataTypeName(at.GetDataType()), format)
	}
	return t.flush()
}

// fetchPages calls fetch with token and, with all, again with each next page
// token until the last page. It returns the token of the page after those
// fetched: empty when there is none or all were fetched.
func fetchPages(all bool, token string, fetch func(token string) (next string, err error)) (string, error) {
	seen := map[string]bool{}
	for {
		next, err := fetch(token)
		if err != nil {
			return "", err
		}
		if !all {
			return next, nil
		}
		// A token seen before would loop forever.
		if next == "" || seen[next] {
			return "", nil
		}
		seen[next] = true
		token = next
	}
}
