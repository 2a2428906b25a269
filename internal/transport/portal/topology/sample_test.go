package topology_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trellis-testbed/trellis/internal/transport/portal/topology"
)

// TestWriteSamples writes the test shapes' drawings for a reviewer to look
// at, when TOPOLOGY_SAMPLES names a folder:
//
//	TOPOLOGY_SAMPLES=/tmp/topo go test -run WriteSamples ./internal/transport/portal/topology/
func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("TOPOLOGY_SAMPLES")
	if dir == "" {
		t.Skip("TOPOLOGY_SAMPLES is not set")
	}
	for name, g := range shapes() {
		if err := os.WriteFile(filepath.Join(dir, name+".svg"), topology.Draw(g), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
