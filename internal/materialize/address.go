package materialize

import (
	"net/netip"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Assign returns a copy of the valid plan p in which every endpoint has an
// address. Links that name their addresses keep them. Every other link gets
// a /24 from the plan's pool, with hosts .1, .2, ... in endpoint order; but
// when prev (the plan in force, already assigned) has the link, the link
// keeps its subnet and each endpoint it had keeps its address, so that a
// Change never renumbers what it does not touch.
func Assign(p Plan, prev *Plan) (Plan, error) {
	q := p.Clone()
	pool := q.Pool
	if !pool.IsValid() {
		pool = DefaultPool
	}
	var used []netip.Prefix
	for _, l := range q.Links {
		if s, ok := linkSubnet(l); ok {
			used = append(used, s)
		}
	}
	prevLinks := map[string]Link{}
	if prev != nil {
		for _, l := range prev.Links {
			prevLinks[l.Name] = l
		}
	}
	overlaps := func(s netip.Prefix) bool {
		for _, u := range used {
			if u.Overlaps(s) {
				return true
			}
		}
		return false
	}
	// First the links the previous plan had, so that no new link takes
	// their subnets; then the new ones.
	pending := make([]int, 0, len(q.Links))
	for i, l := range q.Links {
		if _, ok := linkSubnet(l); ok {
			continue
		}
		old, had := prevLinks[l.Name]
		s, ok := linkSubnet(old)
		if !had || !ok || overlaps(s) || hosts(s) < len(l.Endpoints) {
			pending = append(pending, i)
			continue
		}
		used = append(used, s)
		fillHosts(q.Links[i], s, old)
	}
	next := pool.Masked().Addr()
	for _, i := range pending {
		var s netip.Prefix
		for {
			cand := netip.PrefixFrom(next, linkBits)
			if !pool.Contains(next) {
				return Plan{}, exhausted(q.Links[i].Name, pool)
			}
			next = nextSubnet(next)
			if !overlaps(cand) {
				s = cand
				break
			}
		}
		used = append(used, s)
		fillHosts(q.Links[i], s, Link{})
	}
	return q, nil
}

// linkSubnet is the subnet of a link whose endpoints have addresses.
func linkSubnet(l Link) (netip.Prefix, bool) {
	if len(l.Endpoints) == 0 || !l.Endpoints[0].Address.IsValid() {
		return netip.Prefix{}, false
	}
	return l.Endpoints[0].Address.Masked(), true
}

// fillHosts gives l's endpoints addresses in subnet s: each the address it
// had in old, the others the lowest free host addresses. A valid plan's
// LAN fits (MaxEndpoints), and s is at least as large as when old had the
// link with as many endpoints, or a fresh /24.
func fillHosts(l Link, s netip.Prefix, old Link) {
	had := make(map[string]netip.Prefix, len(old.Endpoints))
	for _, e := range old.Endpoints {
		had[e.Node] = e.Address
	}
	taken := make(map[netip.Addr]bool, len(l.Endpoints))
	for j, e := range l.Endpoints {
		if a, ok := had[e.Node]; ok && a.IsValid() && s.Contains(a.Addr()) && !taken[a.Addr()] {
			l.Endpoints[j].Address = a
			taken[a.Addr()] = true
		}
	}
	host := s.Masked().Addr().Next()
	last := broadcast(s)
	for j, e := range l.Endpoints {
		if e.Address.IsValid() {
			continue
		}
		for taken[host] {
			host = host.Next()
		}
		if host == last {
			// Cannot happen for a valid plan (see MaxEndpoints); leave
			// the endpoint without an address rather than a wrong one.
			return
		}
		l.Endpoints[j].Address = netip.PrefixFrom(host, s.Bits())
		taken[host] = true
	}
}

// nextSubnet is the first address of the /24 after a's, or the zero Addr
// past 255.255.255.0.
func nextSubnet(a netip.Addr) netip.Addr {
	b := a.As4()
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8) + 1<<8
	if v < 1<<8 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0})
}

// hosts is how many host addresses s has, besides its network and broadcast
// addresses.
func hosts(s netip.Prefix) int { return 1<<(32-s.Bits()) - 2 }

func exhausted(link string, pool netip.Prefix) error {
	return &ElementError{Kind: KindLink, Name: link, Err: domain.ResourceExhausted(
		"pool %s has no free /%d subnet left for link %q; give the plan a larger pool", pool, linkBits, link)}
}
