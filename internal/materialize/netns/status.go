//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// status reports the op's plan after the op: everything ready when it
// succeeded; after a failure, the failed element failed, the elements of
// prev (the plan the realization is back to) ready, the rest pending.
func (o *op) status(failure error, prev *materialize.Plan) materialize.Status {
	var fe *materialize.ElementError
	errors.As(failure, &fe)
	state := func(k materialize.Kind, name string, inPrev bool) (materialize.State, string) {
		switch {
		case fe != nil && fe.Kind == k && fe.Name == name:
			return materialize.StateFailed, fe.Err.Error()
		case failure == nil || inPrev:
			return materialize.StateReady, ""
		}
		return materialize.StatePending, ""
	}
	return o.d.report(o.plan, func(n materialize.Node) (materialize.State, string) {
		var in bool
		if prev != nil {
			_, in = prev.Node(n.Name)
		}
		return state(materialize.KindNode, n.Name, in)
	}, func(l materialize.Link) (materialize.State, string) {
		var in bool
		if prev != nil {
			_, in = prev.Link(l.Name)
		}
		return state(materialize.KindLink, l.Name, in)
	})
}

// report builds a Status for plan p with the states the functions give.
func (d *Driver) report(p materialize.Plan, node func(materialize.Node) (materialize.State, string), link func(materialize.Link) (materialize.State, string)) materialize.Status {
	st := materialize.Status{Realization: p.Realization}
	for _, n := range p.Nodes {
		s, why := node(n)
		st.Nodes = append(st.Nodes, materialize.NodeStatus{
			Name: n.Name, State: s, Reason: why, Router: n.Router,
			Location: "netns:" + d.names.nodeNS(p.Realization, n.Name),
		})
	}
	for _, l := range p.Links {
		s, why := link(l)
		ls := materialize.LinkStatus{Name: l.Name, State: s, Reason: why, Constraints: l.Constraints}
		if len(l.Endpoints) > 0 {
			ls.Subnet = l.Endpoints[0].Address.Masked()
		}
		for _, e := range l.Endpoints {
			ls.Attachments = append(ls.Attachments, materialize.Attachment{Node: e.Node, Interface: ifName(l.Name), Address: e.Address})
		}
		st.Links = append(st.Links, ls)
	}
	return st
}

// inspect reports a realization as the kernel has it: a node is ready when
// its namespace exists, a link when every member's interface is there, up
// and addressed (and, for a LAN, plugged into its bridge). What is missing
// is pending while the journal says the realization is being made,
// removing while it is being removed, and failed (with what is missing)
// when it should be ready.
func (d *Driver) inspect(rec *record) materialize.Status {
	o := d.newOp(context.Background(), rec.Plan)
	defer o.close()
	id := rec.Plan.Realization
	missing := func(why string) (materialize.State, string) {
		switch rec.Phase {
		case phaseApplying:
			return materialize.StatePending, ""
		case phaseRemoving:
			return materialize.StateRemoving, ""
		}
		return materialize.StateFailed, why
	}
	return d.report(rec.Plan, func(n materialize.Node) (materialize.State, string) {
		ns := d.names.nodeNS(id, n.Name)
		if !nsExists(ns) {
			return missing("namespace " + ns + " is missing")
		}
		return materialize.StateReady, ""
	}, func(l materialize.Link) (materialize.State, string) {
		if why := o.check(l); why != "" {
			return missing(why)
		}
		return materialize.StateReady, ""
	})
}

// check says what is wrong with a link, or "".
func (o *op) check(l materialize.Link) string {
	id, x := o.plan.Realization, o.d.names
	brIndex := 0
	if len(l.Endpoints) > 2 {
		fabric := x.fabricNS(id)
		if !nsExists(fabric) {
			return "namespace " + fabric + " is missing"
		}
		hf, _, err := o.handle(fabric)
		if err != nil {
			return err.Error()
		}
		br, err := linkByName(hf, bridgeName(l.Name))
		if err != nil || br == nil {
			return "bridge " + bridgeName(l.Name) + " is missing"
		}
		brIndex = br.Attrs().Index
		for _, e := range l.Endpoints {
			port, err := linkByName(hf, portName(l.Name, e.Node))
			if err != nil || port == nil || port.Attrs().MasterIndex != brIndex {
				return fmt.Sprintf("node %s's port %s is not on bridge %s", e.Node, portName(l.Name, e.Node), bridgeName(l.Name))
			}
		}
	}
	for _, e := range l.Endpoints {
		ns := x.nodeNS(id, e.Node)
		if !nsExists(ns) {
			return "node " + e.Node + " is missing"
		}
		h, _, err := o.handle(ns)
		if err != nil {
			return err.Error()
		}
		link, err := linkByName(h, ifName(l.Name))
		if err != nil || link == nil {
			return fmt.Sprintf("interface %s of node %s is missing", ifName(l.Name), e.Node)
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Sprintf("interface %s of node %s is down", ifName(l.Name), e.Node)
		}
		addrs, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
		if err != nil {
			return err.Error()
		}
		ok := false
		for _, a := range addrs {
			if a.IPNet.String() == ifAddr(e.Address).String() {
				ok = true
			}
		}
		if !ok {
			return fmt.Sprintf("interface %s of node %s lacks address %s", ifName(l.Name), e.Node, e.Address)
		}
	}
	return ""
}
