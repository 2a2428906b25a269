package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/buildinfo"
)

// clientVersion returns the module version and the VCS revision the binary
// was built from, when known.
func clientVersion() (version, revision string) {
	return buildinfo.Version(), buildinfo.Revision()
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client's and the server's versions",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			version, revision := clientVersion()
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, serr := c.info.GetVersion(cmd.Context(), connect.NewRequest(&trellisv1.GetVersionRequest{}))

			if a.output == outputJSON {
				// Two parties, so an object with one member each; the server
				// member is the API's own message in its JSON form.
				out := struct {
					Client map[string]string `json:"client"`
					Server json.RawMessage   `json:"server,omitempty"`
				}{Client: map[string]string{"version": version, "goVersion": runtime.Version()}}
				if revision != "" {
					out.Client["revision"] = revision
				}
				if serr == nil {
					var b bytes.Buffer
					if err := printJSON(&b, resp.Msg); err != nil {
						return err
					}
					out.Server = b.Bytes()
				}
				b, err := json.MarshalIndent(out, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "%s\n", b)
				return serr
			}

			// The client's version is worth printing even when the server is
			// unreachable: it is often why one asks.
			kv := []string{
				"client version", version + revisionSuffix(revision),
				"client go", runtime.Version(),
				"server", c.server,
			}
			if serr == nil {
				m := resp.Msg
				kv = append(kv,
					"server version", m.GetVersion()+revisionSuffix(m.GetRevision()),
					"server api", m.GetApiVersion(),
					"server go", m.GetGoVersion(),
					"server time", formatTS(m.GetServerTime()),
				)
			}
			if err := printFields(a.streams.Out, kv...); err != nil {
				return err
			}
			return serr
		},
	}
}

func revisionSuffix(rev string) string {
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return " (" + rev + ")"
}
