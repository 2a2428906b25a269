package materialize

import (
	"fmt"
	"reflect"
	"testing"
)

func routeStrings(rs []Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s via %s", r.Dst, r.Via))
	}
	return out
}

func TestRoutes(t *testing.T) {
	// a - r1 - r2 - b, plus a LAN {r2, c, d} and a leaf e behind the
	// non-router c, which nobody can reach through c.
	p := Plan{
		Realization: "r",
		Nodes:       []Node{{Name: "a"}, {Name: "r1", Router: true}, {Name: "r2", Router: true}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e"}},
		Links: []Link{
			{Name: "a~r1", Endpoints: []Endpoint{{Node: "a"}, {Node: "r1"}}},
			{Name: "r1~r2", Endpoints: []Endpoint{{Node: "r1"}, {Node: "r2"}}},
			{Name: "b~r2", Endpoints: []Endpoint{{Node: "r2"}, {Node: "b"}}},
			{Name: "lan", Endpoints: []Endpoint{{Node: "r2"}, {Node: "c"}, {Node: "d"}}},
			{Name: "c~e", Endpoints: []Endpoint{{Node: "c"}, {Node: "e"}}},
		},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := Assign(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Subnets: a~r1 10.0.0, r1~r2 10.0.1, b~r2 10.0.2, lan 10.0.3, c~e 10.0.4.
	want := map[string][]string{
		"a":  {"10.0.1.0/24 via 10.0.0.2", "10.0.2.0/24 via 10.0.0.2", "10.0.3.0/24 via 10.0.0.2"},
		"r1": {"10.0.2.0/24 via 10.0.1.2", "10.0.3.0/24 via 10.0.1.2"},
		"r2": {"10.0.0.0/24 via 10.0.1.1"},
		"b":  {"10.0.0.0/24 via 10.0.2.1", "10.0.1.0/24 via 10.0.2.1", "10.0.3.0/24 via 10.0.2.1"},
		"c":  {"10.0.0.0/24 via 10.0.3.1", "10.0.1.0/24 via 10.0.3.1", "10.0.2.0/24 via 10.0.3.1"},
		"d":  {"10.0.0.0/24 via 10.0.3.1", "10.0.1.0/24 via 10.0.3.1", "10.0.2.0/24 via 10.0.3.1"},
		"e":  nil,
	}
	got := Routes(p)
	for node, w := range want {
		if g := routeStrings(got[node]); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: routes %v, want %v", node, g, w)
		}
	}
}
