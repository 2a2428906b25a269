//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// routeProtocol marks the routes the driver installs (as bird or zebra
// mark theirs), so that reconciling a node's routes never touches others.
const routeProtocol netlink.RouteProtocol = 84

// aliasPrefix starts every interface's alias, so that `ip link` inside a
// node says which link an interface is.
const aliasPrefix = "trellis link "

type elemKey struct {
	kind materialize.Kind
	name string
}

// op is one reconciliation of a realization's namespaces with a plan. It
// keeps a netlink handle per namespace while it runs.
type op struct {
	d       *Driver
	ctx     context.Context
	plan    materialize.Plan
	handles map[string]*netlink.Handle
	fds     map[string]netns.NsHandle
	touched map[elemKey]bool // elements it started making (and reported creating)
}

func (d *Driver) newOp(ctx context.Context, p materialize.Plan) *op {
	return &op{d: d, ctx: ctx, plan: p, handles: map[string]*netlink.Handle{}, fds: map[string]netns.NsHandle{}, touched: map[elemKey]bool{}}
}

func (o *op) close() {
	for _, h := range o.handles {
		h.Close()
	}
	for ns := range o.fds {
		fd := o.fds[ns]
		fd.Close()
	}
}

// handle returns a netlink handle working in namespace ns, and the
// namespace's descriptor (to send a veth's peer there).
func (o *op) handle(ns string) (*netlink.Handle, netns.NsHandle, error) {
	if h, ok := o.handles[ns]; ok {
		return h, o.fds[ns], nil
	}
	fd, err := netns.GetFromPath(nsPath(ns))
	if err != nil {
		return nil, 0, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		fd.Close()
		return nil, 0, fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	o.handles[ns], o.fds[ns] = h, fd
	return h, fd, nil
}

// forget drops the handle of a namespace that is going away.
func (o *op) forget(ns string) {
	if h, ok := o.handles[ns]; ok {
		h.Close()
		fd := o.fds[ns]
		fd.Close()
		delete(o.handles, ns)
		delete(o.fds, ns)
	}
}

// start reports that an element is being made, once, and gives tests
// their chance to fail it.
func (o *op) start(k materialize.Kind, name string) error {
	key := elemKey{k, name}
	if !o.touched[key] {
		o.touched[key] = true
		o.d.emit(o.plan.Realization, k, name, materialize.StateCreating, "")
	}
	if err := o.ctx.Err(); err != nil {
		return err
	}
	if o.d.failpoint != nil {
		return o.d.failpoint(k, name)
	}
	return nil
}

// fail wraps err as the element's failure and reports it.
func (o *op) fail(k materialize.Kind, name string, err error) error {
	o.d.emit(o.plan.Realization, k, name, materialize.StateFailed, err.Error())
	return &materialize.ElementError{Kind: k, Name: name, Err: err}
}

// apply makes the namespaces of the realization what the plan says, and
// changes nothing that already is. old is the plan in force before (nil
// for a new realization), for reporting what goes away; what is removed
// is found by listing, so leftovers of a crash go too.
func (o *op) apply(old *materialize.Plan) error {
	id, x := o.plan.Realization, o.d.names
	var goneLinks, goneNodes []string
	if old != nil {
		for _, l := range old.Links {
			if _, keep := o.plan.Link(l.Name); !keep {
				goneLinks = append(goneLinks, l.Name)
			}
		}
		for _, n := range old.Nodes {
			if _, keep := o.plan.Node(n.Name); !keep {
				goneNodes = append(goneNodes, n.Name)
			}
		}
	}
	for _, l := range goneLinks {
		o.d.emit(id, materialize.KindLink, l, materialize.StateRemoving, "")
	}
	if err := o.prune(goneNodes); err != nil {
		return err
	}
	for _, l := range goneLinks {
		o.d.emit(id, materialize.KindLink, l, materialize.StateRemoved, "")
	}

	if err := createNS(x.fabricNS(id)); err != nil {
		return fmt.Errorf("fabric namespace: %w", err)
	}
	for _, n := range o.plan.Nodes {
		if err := o.ensureNode(n); err != nil {
			return o.fail(materialize.KindNode, n.Name, err)
		}
	}
	for _, l := range o.plan.Links {
		var err error
		if len(l.Endpoints) == 2 {
			err = o.ensurePair(l)
		} else {
			err = o.ensureLAN(l)
		}
		if err != nil {
			return o.fail(materialize.KindLink, l.Name, err)
		}
		if o.touched[elemKey{materialize.KindLink, l.Name}] {
			o.d.emit(id, materialize.KindLink, l.Name, materialize.StateReady, "")
		}
	}
	routes := materialize.Routes(o.plan)
	for _, n := range o.plan.Nodes {
		if err := o.ensureRoutes(n.Name, routes[n.Name]); err != nil {
			return o.fail(materialize.KindNode, n.Name, err)
		}
		if o.touched[elemKey{materialize.KindNode, n.Name}] {
			o.d.emit(id, materialize.KindNode, n.Name, materialize.StateReady, "")
		}
	}
	return nil
}

// prune removes what the plan does not have: interfaces of links it lacks
// inside the nodes it keeps, bridges and ports in the fabric, and the
// namespaces of nodes it lacks (gone: the old plan's, to report).
func (o *op) prune(gone []string) error {
	id, x := o.plan.Realization, o.d.names
	present, err := listNS(x.realmPrefix(id))
	if err != nil {
		return err
	}
	wantNS := map[string]bool{x.fabricNS(id): true}
	wantIf := map[string]map[string]bool{x.fabricNS(id): {}}
	for _, n := range o.plan.Nodes {
		ns := x.nodeNS(id, n.Name)
		wantNS[ns] = true
		wantIf[ns] = map[string]bool{}
	}
	for _, l := range o.plan.Links {
		for _, e := range l.Endpoints {
			wantIf[x.nodeNS(id, e.Node)][ifName(l.Name)] = true
			if len(l.Endpoints) > 2 {
				wantIf[x.fabricNS(id)][portName(l.Name, e.Node)] = true
			}
		}
		if len(l.Endpoints) > 2 {
			wantIf[x.fabricNS(id)][bridgeName(l.Name)] = true
		}
	}
	reported := map[string]bool{}
	for _, n := range gone {
		reported[x.nodeNS(id, n)] = true
		o.d.emit(id, materialize.KindNode, n, materialize.StateRemoving, "")
	}
	for _, ns := range present {
		if wantNS[ns] {
			continue
		}
		o.forget(ns)
		if err := deleteNS(ns); err != nil {
			return err
		}
	}
	for _, n := range gone {
		o.d.emit(id, materialize.KindNode, n, materialize.StateRemoved, "")
	}
	for _, ns := range present {
		if !wantNS[ns] || !nsExists(ns) {
			continue
		}
		h, _, err := o.handle(ns)
		if err != nil {
			return err
		}
		links, err := retry(h.LinkList)
		if err != nil {
			return fmt.Errorf("list interfaces in %s: %w", ns, err)
		}
		for _, l := range links {
			name := l.Attrs().Name
			if ours(name) && !wantIf[ns][name] {
				if err := h.LinkDel(l); err != nil && !notFound(err) {
					return fmt.Errorf("remove interface %s in %s: %w", name, ns, err)
				}
			}
		}
	}
	return nil
}

// ours reports whether an interface name is of the driver's making.
func ours(name string) bool {
	if len(name) != 11 || !strings.ContainsRune("tbp", rune(name[0])) {
		return false
	}
	for _, c := range name[1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// ensureNode makes the node's namespace and sets whether it forwards.
func (o *op) ensureNode(n materialize.Node) error {
	ns := o.d.names.nodeNS(o.plan.Realization, n.Name)
	if !nsExists(ns) {
		if err := o.start(materialize.KindNode, n.Name); err != nil {
			return err
		}
		if err := createNS(ns); err != nil {
			return err
		}
	}
	want := "0"
	if n.Router {
		want = "1"
	}
	// The forwarding switch is per namespace, read and written from a
	// thread inside it. A new namespace may inherit the host's value, so
	// it is always checked.
	return InNamespace(ns, func() error {
		const p = "/proc/sys/net/ipv4/ip_forward"
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read ip_forward: %w", err)
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
			return fmt.Errorf("set ip_forward: %w", err)
		}
		return nil
	})
}

// linkByName returns the interface, or nil when there is none.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if notFound(err) {
		return nil, nil
	}
	return l, err
}

// ensureVeth makes sure interface a in namespace nsA and b in nsB exist as
// the two ends of one veth; a lone end (its peer's namespace was removed,
// or is being destroyed by the kernel) is replaced.
func (o *op) ensureVeth(link string, nsA, a, nsB, b string) (netlink.Link, netlink.Link, error) {
	ha, _, err := o.handle(nsA)
	if err != nil {
		return nil, nil, err
	}
	hb, fdB, err := o.handle(nsB)
	if err != nil {
		return nil, nil, err
	}
	la, err := linkByName(ha, a)
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s in %s: %w", a, nsA, err)
	}
	lb, err := linkByName(hb, b)
	if err != nil {
		return nil, nil, fmt.Errorf("look up %s in %s: %w", b, nsB, err)
	}
	if la != nil && lb != nil {
		return la, lb, nil
	}
	if err := o.start(materialize.KindLink, link); err != nil {
		return nil, nil, err
	}
	for _, stale := range []struct {
		h *netlink.Handle
		l netlink.Link
	}{{ha, la}, {hb, lb}} {
		if stale.l != nil {
			if err := stale.h.LinkDel(stale.l); err != nil && !notFound(err) {
				return nil, nil, fmt.Errorf("remove lone veth end %s: %w", stale.l.Attrs().Name, err)
			}
		}
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b, PeerNamespace: netlink.NsFd(int(fdB))}
	if err := ha.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth %s (%s) - %s (%s): %w", a, nsA, b, nsB, err)
	}
	if la, err = ha.LinkByName(a); err != nil {
		return nil, nil, fmt.Errorf("look up new veth %s: %w", a, err)
	}
	if lb, err = hb.LinkByName(b); err != nil {
		return nil, nil, fmt.Errorf("look up new veth %s: %w", b, err)
	}
	return la, lb, nil
}

// ensurePair makes a point-to-point link: one veth between the nodes.
func (o *op) ensurePair(l materialize.Link) error {
	id, x := o.plan.Realization, o.d.names
	a, b := l.Endpoints[0], l.Endpoints[1]
	nsA, nsB := x.nodeNS(id, a.Node), x.nodeNS(id, b.Node)
	name := ifName(l.Name)
	la, lb, err := o.ensureVeth(l.Name, nsA, name, nsB, name)
	if err != nil {
		return err
	}
	if err := o.configure(nsA, la, a.Address, l); err != nil {
		return err
	}
	return o.configure(nsB, lb, b.Address, l)
}

// ensureLAN makes a LAN: a bridge in the fabric namespace and a veth from
// each member to a port of it.
func (o *op) ensureLAN(l materialize.Link) error {
	id, x := o.plan.Realization, o.d.names
	fabric := x.fabricNS(id)
	hf, _, err := o.handle(fabric)
	if err != nil {
		return err
	}
	brName := bridgeName(l.Name)
	br, err := linkByName(hf, brName)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", brName, err)
	}
	if br == nil {
		if err := o.start(materialize.KindLink, l.Name); err != nil {
			return err
		}
		if err := hf.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: brName}}); err != nil {
			return fmt.Errorf("create bridge %s: %w", brName, err)
		}
		if br, err = hf.LinkByName(brName); err != nil {
			return fmt.Errorf("look up new bridge %s: %w", brName, err)
		}
	}
	if err := setUp(hf, br); err != nil {
		return err
	}
	for _, e := range l.Endpoints {
		ns := x.nodeNS(id, e.Node)
		ln, port, err := o.ensureVeth(l.Name, ns, ifName(l.Name), fabric, portName(l.Name, e.Node))
		if err != nil {
			return err
		}
		if port.Attrs().MasterIndex != br.Attrs().Index {
			if err := hf.LinkSetMasterByIndex(port, br.Attrs().Index); err != nil {
				return fmt.Errorf("attach %s to bridge %s: %w", port.Attrs().Name, brName, err)
			}
		}
		if err := setUp(hf, port); err != nil {
			return err
		}
		if err := o.configure(ns, ln, e.Address, l); err != nil {
			return fmt.Errorf("node %s: %w", e.Node, err)
		}
	}
	return nil
}

func setUp(h *netlink.Handle, l netlink.Link) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
	}
	return nil
}

// configure gives a node's end of a link its alias, its one address, the
// up state and the link's constraints, changing only what differs.
func (o *op) configure(ns string, link netlink.Link, addr netip.Prefix, l materialize.Link) error {
	h, _, err := o.handle(ns)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	if alias := aliasPrefix + l.Name; link.Attrs().Alias != alias {
		if err := h.LinkSetAlias(link, alias); err != nil {
			return fmt.Errorf("set alias of %s: %w", name, err)
		}
	}
	have, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", name, err)
	}
	want := ifAddr(addr)
	found := false
	for _, a := range have {
		if a.IPNet.String() == want.String() {
			found = true
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove address %s of %s: %w", a.IPNet, name, err)
		}
	}
	if !found {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: want}); err != nil {
			return fmt.Errorf("add address %s to %s: %w", addr, name, err)
		}
	}
	if err := setUp(h, link); err != nil {
		return err
	}
	if err := ensureQdiscs(h, link, l.Constraints); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// ensureRoutes makes the node's routes of the driver's protocol exactly
// want.
func (o *op) ensureRoutes(node string, want []materialize.Route) error {
	ns := o.d.names.nodeNS(o.plan.Realization, node)
	h, _, err := o.handle(ns)
	if err != nil {
		return err
	}
	have, err := retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	key := func(dst *net.IPNet, gw net.IP) string { return dst.String() + " via " + gw.String() }
	wanted := make(map[string]materialize.Route, len(want))
	for _, r := range want {
		wanted[key(ipNet(r.Dst), r.Via.AsSlice())] = r
	}
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		k := key(r.Dst, r.Gw)
		if _, ok := wanted[k]; ok {
			delete(wanted, k)
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("remove route %s: %w", k, err)
		}
	}
	for _, r := range want {
		k := key(ipNet(r.Dst), r.Via.AsSlice())
		if _, missing := wanted[k]; !missing {
			continue
		}
		rt := &netlink.Route{Dst: ipNet(r.Dst), Gw: r.Via.AsSlice(), Protocol: routeProtocol}
		if err := h.RouteReplace(rt); err != nil {
			return fmt.Errorf("add route %s: %w", k, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// ifAddr is an interface address: the host's address with the subnet's mask.
func ifAddr(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}
