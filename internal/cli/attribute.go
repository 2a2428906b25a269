package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// trellis admin attribute add|change|remove|list KIND …: the administered
// profile attributes of users, projects, circles, experiments and libraries.

func newAdminAttributeCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "attribute",
		Short: "Define the profile attributes of users, projects, circles, experiments and libraries",
		Long: `Define the profile attributes of each kind of object (user, project, circle,
experiment, library): name, type, whether required, users' access, a format
(a regular expression the whole value must match) with a description for
people, a length limit and the order and description forms show.

Required attributes and formats apply to objects created and values set
afterwards. Read-only attributes are set by administrators only. Removing an
attribute removes every object's value of it. System attributes (such as a
user's e-mail) can be re-described and re-formatted, not removed.`,
	})
	cmd.AddCommand(newAttributeListCmd(a), newAttributeAddCmd(a), newAttributeChangeCmd(a), newAttributeRemoveCmd(a))
	return cmd
}

func profileKind(cmd *cobra.Command, s string) (trellisv1.ProfileKind, error) {
	k, ok := trellisv1.ProfileKind_value["PROFILE_KIND_"+strings.ToUpper(s)]
	if !ok || k == 0 {
		return 0, usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("kind %q: want user, project, circle, experiment or library", s)}
	}
	return trellisv1.ProfileKind(k), nil
}

func attributeAccess(cmd *cobra.Command, s string) (trellisv1.AttributeAccess, error) {
	v, ok := trellisv1.AttributeAccess_value["ATTRIBUTE_ACCESS_"+strings.ToUpper(strings.ReplaceAll(s, "-", "_"))]
	if !ok || v == 0 {
		return 0, usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--access %q: want read-write, read-only, write-only or no-access", s)}
	}
	return trellisv1.AttributeAccess(v), nil
}

func attributeType(cmd *cobra.Command, s string) (trellisv1.AttributeDataType, error) {
	v, ok := trellisv1.AttributeDataType_value["ATTRIBUTE_DATA_TYPE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--type %q: want string, int, float, opaque or list", s)}
	}
	return trellisv1.AttributeDataType(v), nil
}

func newAttributeListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list KIND",
		Short:   "List the attribute definitions of a kind of profile",
		Example: `  trellis admin attribute list user`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := profileKind(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.ListAttributes(cmd.Context(), connect.NewRequest(&trellisv1.ListAttributesRequest{Kind: kind}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				t := newTable(w, "NAME", "TYPE", "ACCESS", "REQUIRED", "MAX", "ORDER", "SYSTEM", "FORMAT", "DESCRIPTION")
				for _, d := range resp.Msg.GetAttributes() {
					at := d.GetAttribute()
					t.row(at.GetName(), dataTypeName(at.GetDataType()), accessName(at.GetAccess()), yesNo(!at.GetOptional()),
						strconv.Itoa(int(d.GetMaxLength())), strconv.Itoa(int(at.GetOrderingHint())), yesNo(d.GetSystem()),
						at.GetFormat(), at.GetDescription())
				}
				return t.flush()
			})
		},
	}
}

// attributeFlags are the flags add and change share.
type attributeFlags struct {
	description, access, dataType, format, formatDescription string
	required, optional                                       bool
	lengthHint, order, maxLength                             int32
}

func (f *attributeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.description, "description", "", "what the attribute is, for forms")
	fs.StringVar(&f.access, "access", "", "users' access: read-write (default), read-only (set by admins), write-only, no-access")
	fs.StringVar(&f.dataType, "type", "", "string (default), int, float, opaque, or list (comma-separated; the format applies to each item)")
	fs.StringVar(&f.format, "format", "", "regular expression the whole value must match (empty: any)")
	fs.StringVar(&f.formatDescription, "format-description", "", "the format in words, shown when a value does not match")
	fs.BoolVar(&f.required, "required", false, "objects must have it")
	fs.BoolVar(&f.optional, "optional", false, "objects may lack it")
	fs.Int32Var(&f.lengthHint, "length-hint", 0, "suggested input width, in characters")
	fs.Int32Var(&f.order, "order", 0, "display order, ascending")
	fs.Int32Var(&f.maxLength, "max-length", 0, "longest value, in characters (0: 1024)")
}

func newAttributeAddCmd(a *app) *cobra.Command {
	var f attributeFlags
	cmd := &cobra.Command{
		Use:   "add KIND NAME",
		Short: "Define a new profile attribute (optional unless --required)",
		Example: `  trellis admin attribute add user orcid --required --format '[0-9]{4}(-[0-9]{4}){3}' \
      --format-description 'an ORCID iD: 0000-0002-1825-0097' --description 'ORCID iD' --max-length 19`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := profileKind(cmd, args[0])
			if err != nil {
				return err
			}
			if f.required && f.optional {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--required and --optional exclude each other")}
			}
			at := &trellisv1.AttributeDescription{
				Name: args[1], Description: f.description, Optional: !f.required,
				Format: f.format, FormatDescription: f.formatDescription, LengthHint: f.lengthHint, OrderingHint: f.order,
			}
			if f.access != "" {
				if at.Access, err = attributeAccess(cmd, f.access); err != nil {
					return err
				}
			}
			if f.dataType != "" {
				if at.DataType, err = attributeType(cmd, f.dataType); err != nil {
					return err
				}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.AddAttribute(cmd.Context(), connect.NewRequest(&trellisv1.AddAttributeRequest{Kind: kind, Attribute: at, MaxLength: f.maxLength}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Added %s attribute %s.\n", args[0], clean(resp.Msg.GetAttribute().GetAttribute().GetName()))
				return err
			})
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newAttributeChangeCmd(a *app) *cobra.Command {
	var f attributeFlags
	cmd := &cobra.Command{
		Use:   "change KIND NAME",
		Short: "Change a profile attribute's definition; flags not given keep their value",
		Example: `  trellis admin attribute change user email --format '[^@\s]+@example\.edu' \
      --format-description 'an example.edu address'`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := profileKind(cmd, args[0])
			if err != nil {
				return err
			}
			if f.required && f.optional {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--required and --optional exclude each other")}
			}
			r := &trellisv1.ChangeAttributeRequest{Kind: kind, Name: args[1]}
			fs := cmd.Flags()
			str := func(name, v string) *string {
				if fs.Changed(name) {
					return &v
				}
				return nil
			}
			num := func(name string, v int32) *int32 {
				if fs.Changed(name) {
					return &v
				}
				return nil
			}
			r.Description, r.Format, r.FormatDescription = str("description", f.description), str("format", f.format), str("format-description", f.formatDescription)
			r.LengthHint, r.OrderingHint, r.MaxLength = num("length-hint", f.lengthHint), num("order", f.order), num("max-length", f.maxLength)
			switch {
			case fs.Changed("required"):
				opt := !f.required
				r.Optional = &opt
			case fs.Changed("optional"):
				r.Optional = &f.optional
			}
			if f.access != "" {
				if r.Access, err = attributeAccess(cmd, f.access); err != nil {
					return err
				}
			}
			if f.dataType != "" {
				if r.DataType, err = attributeType(cmd, f.dataType); err != nil {
					return err
				}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.ChangeAttribute(cmd.Context(), connect.NewRequest(r))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Changed %s attribute %s.\n", args[0], clean(resp.Msg.GetAttribute().GetAttribute().GetName()))
				return err
			})
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func newAttributeRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove KIND NAME",
		Short: "Remove a profile attribute and every object's value of it",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := profileKind(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.RemoveAttribute(cmd.Context(), connect.NewRequest(&trellisv1.RemoveAttributeRequest{Kind: kind, Name: args[1]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed %s attribute %s and its values.\n", args[0], clean(args[1]))
				return err
			})
		},
	}
}
