package materialize

import "net/netip"

// Route sends packets for Dst through the neighbour Via, an address on one
// of the node's own links.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Routes computes static routes for an assigned plan: for every node, a
// route to each subnet it is not on, through the neighbour that starts a
// shortest path (in hops) to a router on that subnet. Paths cross routers
// only, since other nodes do not forward. Subnets no router reaches get no
// route. Ties go to the link and endpoint that come first in the plan, so
// the result is the same for the same plan.
func Routes(p Plan) map[string][]Route {
	router := make(map[string]bool, len(p.Nodes))
	for _, n := range p.Nodes {
		router[n.Name] = n.Router
	}
	linksOf := make(map[string][]int, len(p.Nodes))
	for i, l := range p.Links {
		for _, e := range l.Endpoints {
			linksOf[e.Node] = append(linksOf[e.Node], i)
		}
	}
	out := make(map[string][]Route, len(p.Nodes))
	for _, src := range p.Nodes {
		// Breadth-first from src: dist in hops and the first hop's address.
		dist := map[string]int{src.Name: 0}
		first := map[string]netip.Addr{}
		queue := []string{src.Name}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			if u != src.Name && !router[u] {
				continue
			}
			for _, li := range linksOf[u] {
				for _, e := range p.Links[li].Endpoints {
					if _, seen := dist[e.Node]; seen {
						continue
					}
					dist[e.Node] = dist[u] + 1
					if u == src.Name {
						first[e.Node] = e.Address.Addr()
					} else {
						first[e.Node] = first[u]
					}
					queue = append(queue, e.Node)
				}
			}
		}
		attached := make(map[int]bool, len(linksOf[src.Name]))
		for _, li := range linksOf[src.Name] {
			attached[li] = true
		}
		var routes []Route
		for li, l := range p.Links {
			if attached[li] {
				continue
			}
			best, bestDist := "", -1
			for _, e := range l.Endpoints {
				d, seen := dist[e.Node]
				if seen && router[e.Node] && (bestDist < 0 || d < bestDist) {
					best, bestDist = e.Node, d
				}
			}
			if best == "" {
				continue
			}
			s, _ := linkSubnet(l)
			routes = append(routes, Route{Dst: s, Via: first[best]})
		}
		out[src.Name] = routes
	}
	return out
}
