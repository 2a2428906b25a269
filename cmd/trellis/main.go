// Command trellis is the whole of Trellis in one binary: the server
// (trellis serve), the operator's tools (trellis admin …) and the user's
// client (trellis login, trellis user …).
package main

import (
	"os"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/cli"
	"github.com/trellis-testbed/trellis/internal/provider"
)

func main() {
	streams := cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	root := cli.NewRoot(streams)
	app.AddCommands(root, cli.AdminCommand(root))
	provider.AddCommands(cli.ProviderCommand(root))
	os.Exit(cli.Execute(root, streams))
}
