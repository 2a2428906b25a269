package cli

import (
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// realizationState is a realization's state with its materialization's:
// "allocated/ready", "releasing/dematerializing (suspect)".
func realizationState(rz *trellisv1.Realization) string {
	s := rz.GetState()
	if m := rz.GetMaterialization(); m != nil {
		s += "/" + m.GetState()
		if m.GetSuspect() {
			s += " (suspect)"
		}
	}
	return s
}

// printMaterialization prints where the realization stands at its sites:
// each node's and link's state and address.
func printMaterialization(w io.Writer, m *trellisv1.Materialization) error {
	state := m.GetState()
	if m.GetSuspect() {
		state += " (suspect: a site has not answered; its resources are not reused)"
	}
	fmt.Fprintf(w, "materialization: %s\n", clean(state))
	if m.GetReason() != "" {
		fmt.Fprintf(w, "reason:          %s\n", clean(m.GetReason()))
	}
	if len(m.GetElements()) == 0 {
		return nil
	}
	t := newTable(w, "KIND", "NAME", "SITE", "STATE", "ADDRESS", "REASON")
	for _, e := range m.GetElements() {
		t.row(e.GetKind(), e.GetName(), e.GetProvider(), e.GetState(), e.GetAddress(), e.GetReason())
	}
	return t.flush()
}

func newRealizationWatchCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a realization's materialization until it is released or fails",
		Long: `Print the realization's state now, then each change (its nodes' and links'
states and addresses at its sites), until it is released or its
materialization fails. With --output json, one JSON object a line.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			stream, err := c.realizationStream.Watch(cmd.Context(), connect.NewRequest(&trellisv1.RealizationsWatchRequest{Id: args[0]}))
			if err != nil {
				return err
			}
			defer stream.Close()
			var last *trellisv1.Realization
			for stream.Receive() {
				m := stream.Msg()
				last = m.GetRealization()
				if a.output == outputJSON {
					if err := printJSONLine(a.streams.Out, m); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(a.streams.Out, "%s %s\n", clean(last.GetId()), clean(realizationState(last)))
				if mat := last.GetMaterialization(); mat != nil {
					if err := printMaterialization(a.streams.Out, mat); err != nil {
						return err
					}
				}
				fmt.Fprintln(a.streams.Out)
			}
			if err := stream.Err(); err != nil {
				return err
			}
			if mat := last.GetMaterialization(); mat != nil && mat.GetState() == "failed" {
				return errors.New("the materialization failed: " + clean(mat.GetReason()))
			}
			return nil
		},
	}
}
