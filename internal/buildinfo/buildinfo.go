// Package buildinfo says which build of Trellis a binary is: what the
// server reports (ApiInfo/GetVersion), `trellis version` and
// `trellis --version` print, and the server logs when it starts.
package buildinfo

import "runtime/debug"

// version overrides the module version for release builds that want a name
// of their own:
//
//	-ldflags "-X github.com/trellis-testbed/trellis/internal/buildinfo.version=v1.2.3"
var version = ""

// Version is the build's module version as the Go toolchain recorded it
// (runtime/debug.ReadBuildInfo): the tag for `go install …@v1.2.3`, a
// pseudo-version for a build from a VCS checkout, "(devel)" when there is
// nothing to go by. A link-time override wins.
func Version() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// Revision is the VCS revision the binary was built from ("" when the build
// did not record one), with "+dirty" when the work tree had changes.
func Revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" && modified {
		rev += "+dirty"
	}
	return rev
}
