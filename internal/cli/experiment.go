package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// The aspect `experiment create --layout` makes: the experiment's topology,
// which realizations bind resources to.
const (
	layoutAspectType = "layout"
	layoutAspectName = "main"
)

func newExperimentCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "experiment",
		Short: "Create, share, export and import experiments and their aspects",
		Long: `Experiments describe research activities. They are named OWNER:NAME, where
OWNER is a user or a project (one made in a project is its creator's), and
made of aspects: typed documents such as
the layout (the topology that 'trellis realize' binds resources to), a
procedure or data. Access is granted to circles with rights drawn from read,
modify, realize and modify_access; the owner always has all of them.`,
	})
	cmd.AddCommand(
		newExperimentCreateCmd(a),
		newExperimentShowCmd(a),
		newExperimentListCmd(a),
		newExperimentRemoveCmd(a),
		newOwnedOwnerCmd(a, "experiment", func(ctx context.Context, c *conn, id, uid string) (proto.Message, string, error) {
			resp, err := c.experiments.SetOwner(ctx, connect.NewRequest(&trellisv1.ExperimentsSetOwnerRequest{Id: id, Uid: uid}))
			if err != nil {
				return nil, "", err
			}
			return resp.Msg, resp.Msg.GetRequestId(), nil
		}),
		newExperimentExportCmd(a),
		newExperimentImportCmd(a),
		newExperimentAspectCmd(a),
		newExperimentAccessCmd(a),
		newExperimentProfileCmd(a),
		newExperimentDescribeProfileCmd(a),
	)
	return cmd
}

func newExperimentCreateCmd(a *app) *cobra.Command {
	var layout, description string
	var profile []string
	cmd := &cobra.Command{
		Use:   "create OWNER:NAME [--layout FILE] [--description TEXT]",
		Short: "Create an experiment named under you or a project (yours either way)",
		Long: `Create an experiment. OWNER is your uid, or a project where you have
create_experiment. With --layout, FILE (YAML or JSON; "-" for standard
input) becomes the aspect layout/main, the topology realizations bind.`,
		Example: "  trellis experiment create alice:ping --layout ping.yaml --description 'latency study'",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			attrs, err := parseAssignments(profile, "--profile")
			if err != nil {
				return usageError{cmd: cmd.CommandPath(), err: err}
			}
			req := &trellisv1.CreateExperimentRequest{Id: args[0], Description: description, Profile: attrs}
			if layout != "" {
				content, err := a.readInput(layout)
				if err != nil {
					return err
				}
				req.Aspects = []*trellisv1.AspectInput{{Type: layoutAspectType, Name: layoutAspectName, Content: content}}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.CreateExperiment(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				x := resp.Msg.GetExperiment()
				_, err := fmt.Fprintf(w, "Created experiment %s%s.\n", clean(orArg(x.GetId(), args[0])), aspectsNote(x.GetAspects()))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&layout, "layout", "", `layout file (YAML or JSON; "-" for standard input), stored as the aspect layout/main`)
	f.StringVar(&description, "description", "", "what the experiment is for")
	f.StringArrayVar(&profile, "profile", nil, "profile attribute KEY=VALUE (repeatable; see describe-profile)")
	return cmd
}

// aspectsNote is ", with aspects layout/main (2 nodes, 1 link)" or nothing.
func aspectsNote(aspects []*trellisv1.Aspect) string {
	if len(aspects) == 0 {
		return ""
	}
	names := make([]string, 0, len(aspects))
	for _, as := range aspects {
		if as.GetDerivedFrom() != "" {
			continue // follows its parent; `experiment show` lists it
		}
		n := as.GetType() + "/" + as.GetName()
		if as.GetSummary() != "" {
			n += " (" + as.GetSummary() + ")"
		}
		names = append(names, n)
	}
	return ", with " + plural(len(names), "aspect", "aspects") + " " + clean(strings.Join(names, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orArg(got, given string) string {
	if got == "" {
		return given
	}
	return got
}

func newExperimentShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show OWNER:NAME",
		Short: "Show an experiment: its aspects and the circles it is shared with",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.GetExperiment(cmd.Context(), connect.NewRequest(&trellisv1.GetExperimentRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printExperiment(w, resp.Msg.GetExperiment()) })
		},
	}
}

func printExperiment(w io.Writer, x *trellisv1.Experiment) error {
	if err := printFields(w,
		"id", x.GetId(),
		"owner", x.GetOwner(),
		"creator", x.GetCreator(),
		"description", x.GetDescription(),
		"created", formatTS(x.GetCreatedAt()),
	); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printAspects(w, x.GetAspects()); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printGrants(w, x.GetGrants())
}

func printAspects(w io.Writer, aspects []*trellisv1.Aspect) error {
	if len(aspects) == 0 {
		_, err := fmt.Fprintln(w, "No aspects.")
		return err
	}
	t := newTable(w, "TYPE", "NAME", "REVISION", "SIZE", "SUMMARY", "UPDATED")
	var derived []string
	for _, as := range aspects {
		if as.GetDerivedFrom() != "" {
			derived = append(derived, as.GetType()+"/"+as.GetName()+" ("+as.GetSummary()+")")
			continue
		}
		t.row(as.GetType(), as.GetName(), strconv.FormatInt(as.GetRevision(), 10),
			strconv.FormatInt(as.GetSize(), 10), as.GetSummary(), formatTS(as.GetUpdatedAt()))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(derived) > 0 {
		// Read-only views the layouts derive, in step with them.
		_, err := fmt.Fprintln(w, "Derived: "+clean(strings.Join(derived, ", ")))
		return err
	}
	return nil
}

// printGrants prints the circles an experiment, library or realization is
// shared with.
func printGrants(w io.Writer, grants []*trellisv1.Grant) error {
	if len(grants) == 0 {
		_, err := fmt.Fprintln(w, "Shared with no circle.")
		return err
	}
	t := newTable(w, "CIRCLE", "RIGHTS")
	for _, g := range grants {
		t.row(g.GetCircle(), rightsText(g.GetRights()))
	}
	return t.flush()
}

func newExperimentListCmd(a *app) *cobra.Command {
	return newOwnedListCmd(a, ownedList[*trellisv1.Experiment]{
		plural: "experiments",
		text:   true,
		fetch: func(ctx context.Context, c *conn, q ownedQuery) ([]*trellisv1.Experiment, string, error) {
			resp, err := c.experiments.ListExperiments(ctx, connect.NewRequest(&trellisv1.ListExperimentsRequest{
				PageSize: q.size, PageToken: q.token, Owner: q.owner, Text: q.text,
			}))
			if err != nil {
				return nil, "", err
			}
			return resp.Msg.GetExperiments(), resp.Msg.GetNextPageToken(), nil
		},
		message: func(items []*trellisv1.Experiment, next string) proto.Message {
			return &trellisv1.ListExperimentsResponse{Experiments: items, NextPageToken: next}
		},
	})
}

func newExperimentRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm OWNER:NAME",
		Aliases: []string{"delete"},
		Short:   "Remove an experiment with its aspects and grants",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.RemoveExperiment(cmd.Context(), connect.NewRequest(&trellisv1.RemoveExperimentRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed experiment %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newExperimentExportCmd(a *app) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export OWNER:NAME [--file FILE]",
		Short: "Write an experiment as one JSON document, for 'experiment import'",
		Long: `Write the experiment (its description and its aspects with their content) as
one JSON document: to standard output, which is the document itself in
either output format, or to FILE with --file.`,
		Example: "  trellis experiment export alice:ping --file ping.json\n" +
			"  trellis experiment import ping.json --id bob:ping",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.ExportExperiment(cmd.Context(), connect.NewRequest(&trellisv1.ExportExperimentRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			doc := resp.Msg.GetDocument()
			if len(doc) > 0 && doc[len(doc)-1] != '\n' {
				doc = append(doc, '\n')
			}
			if file == "" || file == "-" {
				// The document is JSON already: it is the output in
				// either format.
				_, err := a.streams.Out.Write(doc)
				return err
			}
			if err := writeFileAtomic(file, doc, 0o644); err != nil {
				return fmt.Errorf("writing the experiment: %w", err)
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Exported experiment %s to %s (%d bytes).\n", clean(args[0]), clean(file), len(doc))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "write the document to this file instead of standard output")
	return cmd
}

func newExperimentImportCmd(a *app) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "import FILE [--id OWNER:NAME]",
		Short: "Create an experiment from a document 'experiment export' wrote",
		Long: `Create an experiment from a document 'experiment export' wrote ("-" reads
standard input). It is created under --id, by default under the id the
document names.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			if id == "" {
				var named struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(doc, &named); err != nil {
					return fmt.Errorf("%s is not an exported experiment: %w", args[0], err)
				}
				if named.ID == "" {
					return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s names no experiment id: give --id OWNER:NAME", args[0])}
				}
				id = named.ID
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.ImportExperiment(cmd.Context(), connect.NewRequest(&trellisv1.ImportExperimentRequest{Document: doc, Id: id}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				x := resp.Msg.GetExperiment()
				_, err := fmt.Fprintf(w, "Imported experiment %s%s.\n", clean(orArg(x.GetId(), id)), aspectsNote(x.GetAspects()))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "create the experiment under this id (default: the document's)")
	return cmd
}

func newExperimentAspectCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "aspect",
		Short: "Add, change and remove an experiment's aspects",
		Long: `Aspects are an experiment's typed documents, addressed by TYPE and NAME
(layout main, procedure run, data traces). The server validates each type's
content; FILE is "-" for standard input.`,
	})
	cmd.AddCommand(
		newAspectAddCmd(a),
		newAspectSetCmd(a),
		newAspectRemoveCmd(a),
	)
	return cmd
}

func newAspectAddCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "add OWNER:NAME TYPE NAME FILE",
		Short: "Add a new aspect with FILE's content",
		Args:  exactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			content, err := a.readInput(args[3])
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.AddAspects(cmd.Context(), connect.NewRequest(&trellisv1.AddAspectsRequest{
				Id:      args[0],
				Aspects: []*trellisv1.AspectInput{{Type: args[1], Name: args[2], Content: content}},
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printAspectOutcome(w, "Added", resp.Msg.GetExperiment(), args)
			})
		},
	}
}

func newAspectSetCmd(a *app) *cobra.Command {
	var revision int64
	cmd := &cobra.Command{
		Use:   "set OWNER:NAME TYPE NAME FILE [--revision N]",
		Short: "Replace an aspect's content with FILE's",
		Long: `Replace an aspect's content with FILE's. The change is based on the aspect's
current revision, read first, or on --revision N (the revision you read and
edited): if someone changed the aspect since, the server refuses the change
and nothing is lost; read it again, merge and retry.`,
		Args: exactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			content, err := a.readInput(args[3])
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("revision") {
				revision, err = currentRevision(cmd.Context(), c, args[0], args[1], args[2])
				if err != nil {
					return err
				}
			}
			resp, err := c.experiments.ChangeAspects(cmd.Context(), connect.NewRequest(&trellisv1.ChangeAspectsRequest{
				Id:      args[0],
				Changes: []*trellisv1.AspectChange{{Type: args[1], Name: args[2], Revision: revision, Content: content}},
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printAspectOutcome(w, "Changed", resp.Msg.GetExperiment(), args)
			})
		},
	}
	cmd.Flags().Int64Var(&revision, "revision", 0, "the revision the new content is based on (default: the current one)")
	return cmd
}

// currentRevision reads the revision of an experiment's aspect.
func currentRevision(ctx context.Context, c *conn, id, typ, name string) (int64, error) {
	resp, err := c.experiments.GetExperiment(ctx, connect.NewRequest(&trellisv1.GetExperimentRequest{Id: id}))
	if err != nil {
		return 0, err
	}
	if as := findAspect(resp.Msg.GetExperiment(), typ, name); as != nil {
		return as.GetRevision(), nil
	}
	return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf(
		"experiment %s has no aspect %s %s: add it with 'trellis experiment aspect add'", id, typ, name))
}

func findAspect(x *trellisv1.Experiment, typ, name string) *trellisv1.Aspect {
	for _, as := range x.GetAspects() {
		if as.GetType() == typ && as.GetName() == name {
			return as
		}
	}
	return nil
}

// printAspectOutcome says what became of the aspect args[1] args[2] of the
// experiment args[0].
func printAspectOutcome(w io.Writer, verb string, x *trellisv1.Experiment, args []string) error {
	what := fmt.Sprintf("%s aspect %s %s of %s", verb, clean(args[1]), clean(args[2]), clean(orArg(x.GetId(), args[0])))
	as := findAspect(x, args[1], args[2])
	if as == nil {
		_, err := fmt.Fprintf(w, "%s.\n", what)
		return err
	}
	// The type's summary says more than the size, when there is one.
	summary := as.GetSummary()
	if summary == "" {
		summary = fmt.Sprintf("%d bytes", as.GetSize())
	}
	detail := fmt.Sprintf("revision %d, %s", as.GetRevision(), summary)
	_, err := fmt.Fprintf(w, "%s: %s.\n", what, clean(detail))
	return err
}

func newAspectRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm OWNER:NAME TYPE NAME",
		Aliases: []string{"remove"},
		Short:   "Remove an aspect",
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.RemoveAspects(cmd.Context(), connect.NewRequest(&trellisv1.RemoveAspectsRequest{
				Id:      args[0],
				Aspects: []*trellisv1.AspectRef{{Type: args[1], Name: args[2]}},
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed aspect %s %s of %s.\n", clean(args[1]), clean(args[2]), clean(args[0]))
				return err
			})
		},
	}
}

func newExperimentAccessCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "access OWNER:NAME CIRCLE RIGHTS",
		Short: `Set the rights a circle holds on an experiment ("" revokes)`,
		Long: `Set the rights a circle holds on an experiment, replacing those it had; needs
modify_access. RIGHTS is a comma-separated list drawn from read, modify,
realize and modify_access, or "" to revoke the circle's access. "trellis permissions
experiment" says what each right allows.`,
		Example: "  trellis experiment access alice:ping lab:lab read,realize\n" +
			`  trellis experiment access alice:ping lab:lab ""`,
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.experiments.ChangeAccess(cmd.Context(), connect.NewRequest(&trellisv1.ExperimentsChangeAccessRequest{
				Id:     args[0],
				Circle: args[1],
				Rights: parseRights(args[2]),
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				return printAccessChanged(w, resp.Msg.GetGrants(), args[1], "experiment "+args[0])
			})
		},
	}
}

// printAccessChanged says which rights circle now holds on an object, then
// every circle's.
func printAccessChanged(w io.Writer, grants []*trellisv1.Grant, circle, what string) error {
	var rights []string
	for _, g := range grants {
		if g.GetCircle() == circle {
			rights = g.GetRights()
		}
	}
	if len(rights) == 0 {
		if _, err := fmt.Fprintf(w, "Circle %s has no access to %s.\n", clean(circle), clean(what)); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintf(w, "Rights of circle %s on %s: %s.\n", clean(circle), clean(what), clean(rightsText(rights))); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printGrants(w, grants)
}

func newExperimentProfileCmd(a *app) *cobra.Command {
	return newProfileCmd(a, "experiment", "OWNER:NAME", profileOps{
		get: func(ctx context.Context, c *conn, id string) (proto.Message, []*trellisv1.ProfileAttribute, error) {
			resp, err := c.experiments.GetExperimentProfile(ctx, connect.NewRequest(&trellisv1.GetExperimentProfileRequest{Id: id}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetAttributes(), nil
		},
		set: func(ctx context.Context, c *conn, id string, set map[string]string, clear []string) (proto.Message, []*trellisv1.AttributeChange, error) {
			resp, err := c.experiments.SetExperimentProfile(ctx, connect.NewRequest(&trellisv1.SetExperimentProfileRequest{Id: id, Set: set, Clear: clear}))
			if err != nil {
				return nil, nil, err
			}
			return resp.Msg, resp.Msg.GetChanges(), nil
		},
	})
}

func newExperimentDescribeProfileCmd(a *app) *cobra.Command {
	return newDescribeProfileCmd(a, "experiment", func(ctx context.Context, c *conn) (proto.Message, []*trellisv1.AttributeDescription, error) {
		resp, err := c.experiments.GetProfileDescription(ctx, connect.NewRequest(&trellisv1.ExperimentsGetProfileDescriptionRequest{}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetAttributes(), nil
	})
}

// readInput reads a file a command sends, "-" meaning standard input. The
// error names the file: the server never saw it.
func (a *app) readInput(path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(a.streams.In)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("reading %s: %w", path, pe.Err)
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}
