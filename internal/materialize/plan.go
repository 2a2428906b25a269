package materialize

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Plan is what a driver makes for one realization: its nodes and the links
// between them. FromLayout derives one from the layout aspect and the
// bindings; a caller may also build one directly. Plans are values: drivers
// copy what they keep.
type Plan struct {
	Realization string
	Nodes       []Node
	Links       []Link
	// Pool is the private IPv4 range from which links without addresses
	// get a /24 subnet each. The zero value means DefaultPool. Realizations
	// are isolated from each other, so they may all use the same pool.
	Pool netip.Prefix
}

// Node is one element of the environment: a computer or a router.
type Node struct {
	Name string
	// Resource is the inventory resource bound to the node, for drivers
	// that place nodes on real machines; the netns driver records it only.
	Resource string
	// Router nodes forward packets between their links; the others only
	// send and receive. Every node gets routes to every subnet it can
	// reach through routers (see Routes).
	Router bool
}

// Link joins two nodes (a point-to-point link) or more (a LAN).
type Link struct {
	Name        string
	Endpoints   []Endpoint
	Constraints Constraints
}

// Endpoint is one node's end of a link. Address is the node's IPv4 address
// on the link with the subnet's length (10.0.3.2/24); either every endpoint
// of a link has one, all in one subnet, or none has, and Assign picks them.
type Endpoint struct {
	Node    string
	Address netip.Prefix
}

// Constraints shape the traffic on a link. Each applies to what every
// endpoint sends onto the link, so between two endpoints a one-way trip
// gets Delay once and a round trip twice (a ping over a link with a Delay
// of 50 ms takes about 100 ms), as in Emulab's link model.
type Constraints struct {
	Delay  time.Duration // added to every packet, one way
	Jitter time.Duration // random variation of Delay, at most Delay
	Loss   float64       // probability in [0, 1] that a packet is dropped, one way
	Rate   uint64        // bits per second an endpoint may send; 0 is unlimited
}

// IsZero reports whether c shapes nothing.
func (c Constraints) IsZero() bool { return c == Constraints{} }

func (c Constraints) String() string {
	if c.IsZero() {
		return "unshaped"
	}
	s := ""
	add := func(part string) {
		if s != "" {
			s += " "
		}
		s += part
	}
	if c.Delay > 0 {
		add("delay " + c.Delay.String())
	}
	if c.Jitter > 0 {
		add("jitter " + c.Jitter.String())
	}
	if c.Loss > 0 {
		add("loss " + strconv.FormatFloat(c.Loss*100, 'g', -1, 64) + "%")
	}
	if c.Rate > 0 {
		add("rate " + strconv.FormatUint(c.Rate, 10) + "bit/s")
	}
	return s
}

// Limits of the constraints. They are what netem and tbf do faithfully:
// beyond a few seconds of delay the queues that hold the packets grow past
// any sensible size, and below 8 kbit/s a full-size packet waits seconds.
const (
	MaxDelay = 10 * time.Second
	MinRate  = 8_000           // bit/s
	MaxRate  = 100_000_000_000 // bit/s: 100 Gbit/s
)

// DefaultPool is the range addresses are assigned from when a plan names
// none.
var DefaultPool = netip.MustParsePrefix("10.0.0.0/8")

var (
	nodeName  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	linkName  = regexp.MustCompile(`^[a-z0-9]([a-z0-9~._-]{0,126}[a-z0-9])?$`)
	realmName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:~-]{0,127}$`)
)

// Validate checks everything that can be checked before anything is made,
// and reports every problem at once, each on its field and naming the
// element: names, endpoints that name no node, addresses (family, subnet,
// clashes between endpoints, overlaps between links) and constraints out
// of range.
func (p Plan) Validate() error {
	var vs domain.Violations
	if !realmName.MatchString(p.Realization) {
		vs.Add("plan.realization", "materialize.realization",
			fmt.Sprintf("realization id %q is not valid; it is 1 to 128 letters, digits or . _ : ~ -", clip(p.Realization)))
	}
	if p.Pool.IsValid() {
		switch {
		case !p.Pool.Addr().Is4():
			vs.Add("plan.pool", "materialize.pool", fmt.Sprintf("pool %s is not an IPv4 range; links are IPv4", p.Pool))
		case p.Pool.Bits() > linkBits:
			vs.Add("plan.pool", "materialize.pool", fmt.Sprintf("pool %s is smaller than one /%d link subnet", p.Pool, linkBits))
		case p.Pool.Masked() != p.Pool:
			vs.Add("plan.pool", "materialize.pool", fmt.Sprintf("pool %s has host bits set; write %s", p.Pool, p.Pool.Masked()))
		}
	}
	if len(p.Nodes) == 0 {
		vs.Add("plan.nodes", "materialize.required", "a plan needs at least one node")
	}
	nodes := make(map[string]int, len(p.Nodes))
	for i, n := range p.Nodes {
		f := "plan.nodes[" + strconv.Itoa(i) + "].name"
		switch {
		case !nodeName.MatchString(n.Name):
			vs.Add(f, "materialize.node.name", fmt.Sprintf("node name %q is not valid; it is a DNS label of 1 to 63 lower-case letters, digits or '-'", clip(n.Name)))
		case nodes[n.Name] > 0:
			vs.Add(f, "materialize.node.duplicate", fmt.Sprintf("node %q is already plan.nodes[%d]", n.Name, nodes[n.Name]-1))
		default:
			nodes[n.Name] = i + 1
		}
	}
	links := make(map[string]int, len(p.Links))
	addrs := make(map[netip.Addr]string, 2*len(p.Links)) // address -> "link x, node y"
	subnets := make([]struct {
		net  netip.Prefix
		link string
	}, 0, len(p.Links))
	for i, l := range p.Links {
		lf := "plan.links[" + strconv.Itoa(i) + "]"
		switch {
		case !linkName.MatchString(l.Name):
			vs.Add(lf+".name", "materialize.link.name", fmt.Sprintf("link name %q is not valid; it is 1 to 128 lower-case letters, digits or ~ . _ -", clip(l.Name)))
		case links[l.Name] > 0:
			vs.Add(lf+".name", "materialize.link.duplicate", fmt.Sprintf("link %q is already plan.links[%d]", l.Name, links[l.Name]-1))
		default:
			links[l.Name] = i + 1
		}
		if len(l.Endpoints) < 2 {
			vs.Add(lf+".endpoints", "materialize.link.endpoints", fmt.Sprintf("link %q has %d endpoints; a link joins at least two nodes", l.Name, len(l.Endpoints)))
		}
		if len(l.Endpoints) > MaxEndpoints {
			vs.Add(lf+".endpoints", "materialize.link.endpoints", fmt.Sprintf("link %q has %d endpoints; a LAN has at most %d", l.Name, len(l.Endpoints), MaxEndpoints))
		}
		seen := make(map[string]bool, len(l.Endpoints))
		given := 0
		var subnet netip.Prefix
		for j, e := range l.Endpoints {
			ef := lf + ".endpoints[" + strconv.Itoa(j) + "]"
			switch {
			case nodes[e.Node] == 0:
				vs.Add(ef+".node", "materialize.link.missing_node", fmt.Sprintf("link %q: no node is named %q", l.Name, clip(e.Node)))
			case seen[e.Node]:
				vs.Add(ef+".node", "materialize.link.node_twice", fmt.Sprintf("link %q: node %q is already an endpoint", l.Name, e.Node))
			}
			seen[e.Node] = true
			if !e.Address.IsValid() {
				continue
			}
			given++
			if msg := checkAddress(e.Address); msg != "" {
				vs.Add(ef+".address", "materialize.address.invalid", fmt.Sprintf("link %q, node %q: %s", l.Name, e.Node, msg))
				continue
			}
			if !subnet.IsValid() {
				subnet = e.Address.Masked()
			} else if e.Address.Masked() != subnet {
				vs.Add(ef+".address", "materialize.address.subnet", fmt.Sprintf("link %q, node %q: %s is not in the link's subnet %s", l.Name, e.Node, e.Address, subnet))
			}
			if other, dup := addrs[e.Address.Addr()]; dup {
				vs.Add(ef+".address", "materialize.address.clash", fmt.Sprintf("link %q, node %q: address %s is already %s's", l.Name, e.Node, e.Address.Addr(), other))
			} else {
				addrs[e.Address.Addr()] = fmt.Sprintf("link %q, node %q", l.Name, e.Node)
			}
		}
		if given > 0 && given < len(l.Endpoints) {
			vs.Add(lf+".endpoints", "materialize.address.partial", fmt.Sprintf("link %q: %d of its %d endpoints have addresses; give every endpoint one, or none to have them assigned", l.Name, given, len(l.Endpoints)))
		}
		if subnet.IsValid() {
			for _, s := range subnets {
				if s.net.Overlaps(subnet) {
					vs.Add(lf+".endpoints", "materialize.address.overlap", fmt.Sprintf("link %q: subnet %s overlaps link %q's %s", l.Name, subnet, s.link, s.net))
				}
			}
			subnets = append(subnets, struct {
				net  netip.Prefix
				link string
			}{subnet, l.Name})
		}
		checkConstraints(&vs, lf+".constraints", l.Name, l.Constraints)
	}
	return vs.Err()
}

// MaxEndpoints bounds a LAN: an assigned /24 holds 253 hosts besides the
// network and broadcast addresses (and .0 is not used).
const MaxEndpoints = 253

// linkBits is the length of the subnets Assign gives links.
const linkBits = 24

func checkAddress(a netip.Prefix) string {
	ip := a.Addr()
	switch {
	case !ip.Is4():
		return fmt.Sprintf("%s is not an IPv4 address; links are IPv4", a)
	case a.Bits() < 8 || a.Bits() > 30:
		return fmt.Sprintf("%s: the subnet length must be 8 to 30", a)
	case ip.IsLoopback() || ip.IsMulticast() || ip.IsUnspecified() || ip.IsLinkLocalUnicast():
		return fmt.Sprintf("%s is not a unicast address a link may use", a)
	case ip == a.Masked().Addr():
		return fmt.Sprintf("%s is the subnet's network address", a)
	case ip == broadcast(a):
		return fmt.Sprintf("%s is the subnet's broadcast address", a)
	}
	return ""
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func checkConstraints(vs *domain.Violations, f, link string, c Constraints) {
	if c.Delay < 0 || c.Delay > MaxDelay {
		vs.Add(f+".delay", "materialize.constraint.range", fmt.Sprintf("link %q: delay %s is out of range; it is 0 to %s", link, c.Delay, MaxDelay))
	}
	if c.Jitter < 0 || c.Jitter > max(c.Delay, 0) {
		vs.Add(f+".jitter", "materialize.constraint.range", fmt.Sprintf("link %q: jitter %s is out of range; it is 0 to the delay (%s)", link, c.Jitter, max(c.Delay, 0)))
	}
	if math.IsNaN(c.Loss) || c.Loss < 0 || c.Loss > 1 {
		vs.Add(f+".loss", "materialize.constraint.range", fmt.Sprintf("link %q: loss %g is out of range; it is a probability, 0 to 1", link, c.Loss))
	}
	if c.Rate != 0 && (c.Rate < MinRate || c.Rate > MaxRate) {
		vs.Add(f+".rate", "materialize.constraint.range", fmt.Sprintf("link %q: rate %d bit/s is out of range; it is %d to %d bit/s, or 0 for unlimited", link, c.Rate, MinRate, uint64(MaxRate)))
	}
}

// clip bounds a user's string in an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Clone returns a deep copy of p, so a driver may keep it.
func (p Plan) Clone() Plan {
	q := p
	q.Nodes = append([]Node(nil), p.Nodes...)
	q.Links = make([]Link, len(p.Links))
	for i, l := range p.Links {
		l.Endpoints = append([]Endpoint(nil), l.Endpoints...)
		q.Links[i] = l
	}
	return q
}

// Node returns the node called name.
func (p Plan) Node(name string) (Node, bool) {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Link returns the link called name.
func (p Plan) Link(name string) (Link, bool) {
	for _, l := range p.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Equal reports whether p and q plan the same environment, element for
// element and in the same order.
func (p Plan) Equal(q Plan) bool {
	return p.Realization == q.Realization && p.Pool == q.Pool &&
		slices.Equal(p.Nodes, q.Nodes) &&
		slices.EqualFunc(p.Links, q.Links, func(x, y Link) bool {
			return x.Name == y.Name && x.Constraints == y.Constraints && slices.Equal(x.Endpoints, y.Endpoints)
		})
}
