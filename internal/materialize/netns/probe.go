//go:build linux

package netns

import (
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
)

// Delay, jitter and loss need the kernel's netem qdisc, which some kernels
// lack (CONFIG_NET_SCH_NETEM unset, no modules: this project's own
// machines among them). The driver finds out once, by trying, and refuses
// plans that need it rather than make links that silently do not shape.

var netemProbe struct {
	once sync.Once
	ok   bool
	err  error
}

// CanDelay reports whether the kernel applies delay, jitter and loss
// (netem). Rate (tbf) is required of every kernel the driver runs on.
func CanDelay() (bool, error) {
	netemProbe.once.Do(func() { netemProbe.ok, netemProbe.err = probeNetem() })
	return netemProbe.ok, netemProbe.err
}

// probeNetem adds a netem qdisc to a veth in a namespace that exists only
// while a throwaway thread is in it: nothing is named, nothing can leak,
// even if the process dies half-way.
func probeNetem() (bool, error) {
	var ok bool
	err := onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("probe netem: unshare: %w", err)
		}
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}, PeerName: "probe1"}); err != nil {
			return fmt.Errorf("probe netem: veth: %w", err)
		}
		l, err := netlink.LinkByName("probe0")
		if err != nil {
			return fmt.Errorf("probe netem: %w", err)
		}
		q := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			netlink.NetemQdiscAttrs{Latency: 1000})
		ok = netlink.QdiscAdd(q) == nil
		return nil
	})
	return ok, err
}

// checkShaping refuses a plan whose constraints this kernel cannot apply.
func checkShaping(p materialize.Plan) error {
	for _, l := range p.Links {
		c := l.Constraints
		if c.Delay == 0 && c.Jitter == 0 && c.Loss == 0 {
			continue
		}
		ok, err := CanDelay()
		if err != nil {
			return domain.Internal(err, "find out whether the kernel has netem")
		}
		if !ok {
			return domain.FailedPrecondition("link %q: this machine's kernel has no netem queueing discipline (CONFIG_NET_SCH_NETEM), so it cannot apply delay, jitter or loss; only rate (tbf) is available here", l.Name)
		}
	}
	return nil
}
