//go:build linux

package netns

import (
	"testing"

	"github.com/trellis-testbed/trellis/internal/materialize"
	"github.com/trellis-testbed/trellis/internal/materialize/drivertest"
)

func TestConformance(t *testing.T) {
	requireRoot(t)
	noLeaks(t)
	canDelay, err := CanDelay()
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T, obs materialize.Observer) materialize.Driver {
			return newDriver(t, obs)
		},
		Leftovers: func(t *testing.T, d materialize.Driver) []string { return leftovers(t, d.(*Driver)) },
		RateOnly:  !canDelay,
	})
}
