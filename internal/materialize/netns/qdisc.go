//go:build linux

package netns

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// Constraints become queueing disciplines on the egress of every node's
// interface to the link (what the node sends onto it):
//
//	delay, jitter or loss only:  root netem (handle 1:)
//	rate only:                   root tbf   (handle 1:)
//	both:                        root netem (1:) with a tbf child (parent 1:1, handle 10:),
//	                             so packets are delayed, then paced
//
// as tc-netem(8) recommends for delay with a rate limit.

const (
	mtuFrame = 1514 // an Ethernet frame of a 1500-byte packet
	// tbfLatency bounds how long a packet may wait in tbf's queue: the
	// queue holds that much traffic at the rate, as tc's "latency 50ms".
	tbfLatencyUS = 50_000
	// burstUS sizes tbf's bucket: 5 ms of traffic at the rate (more than a
	// timer tick at HZ=250), never less than a few full frames.
	burstUS = 5_000
	// netemLimit is netem's queue, in packets, without a rate: enough for
	// 100 ms of delay at about 1 Gbit/s of full-size frames.
	netemLimit = 10_000
)

// wantQdiscs returns the qdiscs for c on the interface with index idx:
// none, one root, or a root and its child.
func wantQdiscs(idx int, c materialize.Constraints) []netlink.Qdisc {
	shape := c.Delay > 0 || c.Jitter > 0 || c.Loss > 0
	var out []netlink.Qdisc
	if shape {
		limit := uint32(netemLimit)
		if c.Rate > 0 {
			// The packets a full link holds while they wait the delay,
			// and half again for jitter and bursts.
			pkts := float64(c.Rate) / 8 / mtuFrame * (c.Delay + c.Jitter).Seconds() * 1.5
			limit = uint32(max(1000, min(pkts, 1e6)))
		}
		out = append(out, netlink.NewNetem(
			netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			netlink.NetemQdiscAttrs{
				Latency: uint32(c.Delay.Microseconds()),
				Jitter:  uint32(c.Jitter.Microseconds()),
				Loss:    float32(c.Loss * 100),
				Limit:   limit,
			}))
	}
	if c.Rate > 0 {
		bytesPerSec := c.Rate / 8
		burst := max(uint32(bytesPerSec*burstUS/1e6), 4*mtuFrame)
		attrs := netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
		if shape {
			attrs = netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0x10, 0), Parent: netlink.MakeHandle(1, 1)}
		}
		out = append(out, &netlink.Tbf{
			QdiscAttrs: attrs,
			Rate:       bytesPerSec,
			Buffer:     netlink.Xmittime(bytesPerSec, burst),
			Limit:      uint32(bytesPerSec*tbfLatencyUS/1e6) + burst,
		})
	}
	return out
}

// sameQdisc compares the settings the driver makes; the kernel reports
// them back exactly as given.
func sameQdisc(a, b netlink.Qdisc) bool {
	if a.Attrs().Handle != b.Attrs().Handle || a.Attrs().Parent != b.Attrs().Parent {
		return false
	}
	switch x := a.(type) {
	case *netlink.Netem:
		y, ok := b.(*netlink.Netem)
		return ok && x.Latency == y.Latency && x.Jitter == y.Jitter && x.Loss == y.Loss && x.Limit == y.Limit
	case *netlink.Tbf:
		y, ok := b.(*netlink.Tbf)
		return ok && x.Rate == y.Rate && x.Buffer == y.Buffer && x.Limit == y.Limit
	}
	return false
}

// ensureQdiscs makes link's egress qdiscs those of c, touching nothing
// when they already are.
func ensureQdiscs(h *netlink.Handle, link netlink.Link, c materialize.Constraints) error {
	want := wantQdiscs(link.Attrs().Index, c)
	have, err := retry(func() ([]netlink.Qdisc, error) { return h.QdiscList(link) })
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	var root, child netlink.Qdisc
	for _, q := range have {
		switch {
		case q.Attrs().Parent == netlink.HANDLE_ROOT:
			root = q
		case q.Attrs().Parent == netlink.MakeHandle(1, 1):
			child = q
		}
	}
	ours := root != nil && (root.Type() == "netem" || root.Type() == "tbf")
	switch {
	case len(want) == 0:
		if ours {
			if err := h.QdiscDel(root); err != nil {
				return fmt.Errorf("remove qdisc: %w", err)
			}
		}
		return nil
	case ours && sameQdisc(want[0], root) && (len(want) == 1 && child == nil || len(want) == 2 && child != nil && sameQdisc(want[1], child)):
		return nil
	}
	// Replacing the root drops its child; add the child afresh.
	if err := h.QdiscReplace(want[0]); err != nil {
		return fmt.Errorf("set %s qdisc (%s): %w", want[0].Type(), c, err)
	}
	if len(want) == 1 && child != nil && root.Type() == want[0].Type() {
		// A change of the root keeps its child: drop the rate limit
		// the constraints no longer have.
		if err := h.QdiscDel(child); err != nil {
			return fmt.Errorf("remove qdisc: %w", err)
		}
	}
	if len(want) == 2 {
		if err := h.QdiscReplace(want[1]); err != nil {
			return fmt.Errorf("set %s qdisc (%s): %w", want[1].Type(), c, err)
		}
	}
	return nil
}
