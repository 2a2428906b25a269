// Package cli implements the trellis command-line client: the command tree,
// the connection and credential plumbing every command shares, and the
// printers for text and JSON output.
package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// Streams are the standard streams a command tree reads and writes. Tests
// pass buffers; main passes os.Stdin, os.Stdout and os.Stderr.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Environment variables the client reads.
const (
	EnvServer    = "TRELLIS_SERVER"
	EnvConfigDir = "TRELLIS_CONFIG_DIR"
	EnvToken     = "TRELLIS_TOKEN"
	EnvCAFile    = "TRELLIS_CA_FILE"
)

// DefaultServer is where the client looks when nothing else says: the
// address `trellis serve` listens on by default.
const DefaultServer = "http://127.0.0.1:7700"

// app holds what every command shares: the streams and the global flags. It
// holds no connection state, so a command tree may be executed more than once
// (as tests do) without one run leaking into the next.
type app struct {
	streams Streams

	// Global flag values, as given; resolution against the environment and
	// the saved credentials happens in connect, when a command needs it.
	server    string
	output    outputFormat
	configDir string
	caFile    string

	now     func() time.Time
	timeout time.Duration
}

// NewRoot builds the trellis command tree with the client commands. Server-side
// commands (serve, admin bootstrap, ...) are added by their owners to the tree
// this returns; use AdminCommand to find the admin group.
func NewRoot(streams Streams) *cobra.Command {
	a := &app{
		streams: streams,
		output:  outputText,
		now:     time.Now,
		timeout: defaultRequestTimeout,
	}
	root := asGroup(&cobra.Command{
		Use:   "trellis",
		Short: "Trellis: the control plane of a research testbed",
		Long: `Trellis knows the testbed's users, projects and resources and issues the
credentials that prove them. This command is both its server and its client.`,
		// Execute prints errors in one format (with field violations) and
		// chooses the exit code; cobra's own printing would duplicate them and
		// bury them under usage text that says nothing about a server's refusal.
		SilenceErrors: true,
		SilenceUsage:  true,
	})
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	// --version answers from the binary alone ('trellis version' asks the
	// server too).
	version, revision := clientVersion()
	root.Version = version + revisionSuffix(revision)
	root.SetVersionTemplate("trellis {{.Version}}\n")
	// Flag errors are the caller's mistake: say so and point at the help,
	// which SilenceUsage otherwise suppresses.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{cmd: c.CommandPath(), err: err}
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "",
		"server URL (default $"+EnvServer+", else the server of the saved login, else "+DefaultServer+")")
	pf.Var(&a.output, "output", `output format: "text" or "json"`)
	pf.StringVar(&a.configDir, "config-dir", "",
		"directory of the saved credentials (default $"+EnvConfigDir+", else <user config dir>/trellis)")
	pf.StringVar(&a.caFile, "ca-file", "",
		"PEM file of the certificate authority to trust for the server, e.g. the Trellis CA of a server run with 'serve --tls-auto' (default $"+EnvCAFile+", else the system's)")

	root.AddCommand(
		newLoginCmd(a),
		newLogoutCmd(a),
		newWhoAmICmd(a),
		newUserCmd(a),
		newAdminCmd(a),
		newProjectCmd(a),
		newCircleCmd(a),
		newRequestCmd(a),
		newNotifyCmd(a),
		newPolicyCmd(a),
		newExperimentCmd(a),
		newLibraryCmd(a),
		newResourceCmd(a),
		newRealizeCmd(a),
		newRealizationCmd(a),
		newVersionCmd(a),
		newPermissionsCmd(a),
		newPingCmd(a),
		newSSHCmd(a),
		newTokenCmd(a),
		newIdentityCmd(a),
		newCertCmd(a),
		newProviderCmd(a),
	)
	return root
}

// AdminCommand returns the root's admin command group, creating it if the tree
// has none, so that server-side commands (admin bootstrap, admin migrate) can
// join the client's admin commands under one name.
func AdminCommand(root *cobra.Command) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == "admin" {
			return c
		}
	}
	c := newAdminGroup()
	root.AddCommand(c)
	return c
}

// outputFormat is the --output flag. Validating in Set makes a bad value a flag
// error at parse time, before any command runs or any request is sent.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "text|json" }

func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(s); f {
	case outputText, outputJSON:
		*o = f
		return nil
	}
	return fmt.Errorf(`must be "text" or "json"`)
}

// Positional-argument validators that report a usage error, so that Execute
// can point at the command's help.
func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{cmd: cmd.CommandPath(), err: err}
		}
		return nil
	}
}

func exactArgs(n int) cobra.PositionalArgs   { return wrapArgs(cobra.ExactArgs(n)) }
func maximumArgs(n int) cobra.PositionalArgs { return wrapArgs(cobra.MaximumNArgs(n)) }
func noArgs() cobra.PositionalArgs           { return wrapArgs(cobra.NoArgs) }

// asGroup makes a command that only groups others refuse an unknown
// subcommand. Left alone, cobra prints the group's help and exits 0 for
// `trellis user lsit`, and a script would never learn of its typo.
func asGroup(c *cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return usageError{cmd: cmd.CommandPath(), err: errors.New(msg)}
	}
	c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	return c
}
