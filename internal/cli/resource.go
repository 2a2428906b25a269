package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newResourceCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "resource",
		Short: "Register and inspect the testbed's resources",
		Long: `Resources are the inventory the sites (providers) offer: nodes, images,
networks and external access, with attributes such as cores, memory_gb and
arch that layouts constrain. Registering, removing and changing the state of
resources is for admins.`,
	})
	cmd.AddCommand(
		newResourceAddCmd(a),
		newResourceListCmd(a),
		newResourceShowCmd(a),
		newResourceRemoveCmd(a),
		newResourceStateCmd(a),
	)
	return cmd
}

func newResourceAddCmd(a *app) *cobra.Command {
	var (
		kind, provider string
		attrs          []string
	)
	cmd := &cobra.Command{
		Use:   "add NAME --provider P [--kind KIND] [--attr KEY=VALUE]...",
		Short: "Register a resource (admins)",
		Long: `Register a resource, available at once. KIND is node (the default), image,
network or external; attributes are KEY=VALUE, repeatable.`,
		Example: "  trellis resource add n001 --kind node --provider site1 --attr cores=8 --attr arch=x86_64",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := parseAssignments(attrs, "--attr")
			if err != nil {
				return usageError{cmd: cmd.CommandPath(), err: err}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.resources.RegisterResource(cmd.Context(), connect.NewRequest(&trellisv1.RegisterResourceRequest{
				Name:       args[0],
				Kind:       kind,
				Provider:   provider,
				Attributes: set,
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				r := resp.Msg.GetResource()
				_, err := fmt.Fprintf(w, "Registered %s %s at %s: %s.\n", clean(orArg(r.GetKind(), kind)),
					clean(orArg(r.GetName(), args[0])), clean(orArg(r.GetProvider(), provider)), clean(orDash(attributesText(r.GetAttributes()))))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "node", "node, image, network or external")
	f.StringVar(&provider, "provider", "", "the site that offers the resource: a registered provider (trellis admin provider add)")
	f.StringArrayVar(&attrs, "attr", nil, "an attribute, KEY=VALUE (repeatable)")
	return cmd
}

// attributesText is "arch=x86_64 cores=8": sorted, in the form filters take.
func attributesText(attrs map[string]string) string {
	parts := make([]string, 0, len(attrs))
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		parts = append(parts, k+"="+attrs[k])
	}
	return strings.Join(parts, " ")
}

func newResourceListCmd(a *app) *cobra.Command {
	var (
		kind, provider, state, pageToken string
		pageSize                         int32
		all                              bool
	)
	cmd := &cobra.Command{
		Use:   "list [FILTER...] [--kind K] [--provider P] [--state S] [--all]",
		Short: "List resources, filtered by attribute constraints",
		Long: `List resources. Each FILTER holds constraints on attributes that every
listed resource satisfies: KEY=VALUE, KEY!=VALUE, or a comparison of numbers
with >=, <=, > or < such as cores>=8 (quote it for the shell).`,
		Example: "  trellis resource list 'cores>=8' arch=x86_64 --state available",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			out := &trellisv1.ListResourcesResponse{}
			out.NextPageToken, err = fetchPages(all, pageToken, func(token string) (string, error) {
				resp, err := c.resources.ListResources(cmd.Context(), connect.NewRequest(&trellisv1.ListResourcesRequest{
					PageSize:  pageSize,
					PageToken: token,
					Filters:   args,
					Kind:      kind,
					Provider:  provider,
					State:     state,
				}))
				if err != nil {
					return "", err
				}
				out.Resources = append(out.Resources, resp.Msg.GetResources()...)
				return resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error {
				t := newTable(w, "NAME", "KIND", "PROVIDER", "STATE", "REALIZATION", "ATTRIBUTES")
				for _, r := range out.GetResources() {
					t.row(r.GetName(), r.GetKind(), r.GetProvider(), r.GetState(), r.GetRealization(), attributesText(r.GetAttributes()))
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
	f.StringVar(&kind, "kind", "", "only resources of this kind")
	f.StringVar(&provider, "provider", "", "only resources of this provider")
	f.StringVar(&state, "state", "", "only resources in this state: available, maintenance, down or suspect")
	f.Int32Var(&pageSize, "page-size", 0, "resources per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func newResourceShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a resource and the realization it is bound to",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.resources.GetResource(cmd.Context(), connect.NewRequest(&trellisv1.GetResourceRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printResource(w, resp.Msg.GetResource()) })
		},
	}
}

func printResource(w io.Writer, r *trellisv1.Resource) error {
	kv := []string{
		"name", r.GetName(),
		"kind", r.GetKind(),
		"provider", r.GetProvider(),
		"state", r.GetState(),
		"realization", r.GetRealization(),
		"created", formatTS(r.GetCreatedAt()),
	}
	for _, k := range slices.Sorted(maps.Keys(r.GetAttributes())) {
		kv = append(kv, "attribute "+k, r.GetAttributes()[k])
	}
	return printFields(w, kv...)
}

func newResourceRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a resource from the inventory (admins; refused while bound)",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.resources.RemoveResource(cmd.Context(), connect.NewRequest(&trellisv1.RemoveResourceRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed resource %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newResourceStateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "state NAME available|maintenance|down|suspect",
		Short:     "Take a resource out of service or put it back (admins)",
		Long:      "Set a resource's state. Only available resources are bound by new realizations.\nA resource is suspect when its site left a release unconfirmed; make it available once the site is known to have freed it.",
		Args:      exactArgs(2),
		ValidArgs: []string{"available", "maintenance", "down", "suspect"},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.resources.SetResourceState(cmd.Context(), connect.NewRequest(&trellisv1.SetResourceStateRequest{Name: args[0], State: args[1]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Resource %s is %s.\n", clean(args[0]), clean(orArg(resp.Msg.GetResource().GetState(), args[1])))
				return err
			})
		},
	}
}
