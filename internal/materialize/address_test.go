package materialize

import (
	"net/netip"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func addrs(p Plan) map[string]string {
	m := map[string]string{}
	for _, l := range p.Links {
		for _, e := range l.Endpoints {
			m[l.Name+"/"+e.Node] = e.Address.String()
		}
	}
	return m
}

func TestAssign(t *testing.T) {
	p := line()
	p.Links = append(p.Links, Link{Name: "fixed", Endpoints: []Endpoint{{Node: "a", Address: pfx("10.0.0.9/24")}, {Node: "b", Address: pfx("10.0.0.10/24")}}})
	got, err := Assign(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 10.0.0.0/24 is taken by the link that names its addresses.
	want := map[string]string{
		"a~r/a": "10.0.1.1/24", "a~r/r": "10.0.1.2/24",
		"b~r/r": "10.0.2.1/24", "b~r/b": "10.0.2.2/24",
		"fixed/a": "10.0.0.9/24", "fixed/b": "10.0.0.10/24",
	}
	for k, v := range want {
		if addrs(got)[k] != v {
			t.Errorf("%s = %s, want %s", k, addrs(got)[k], v)
		}
	}
	if p.Links[0].Endpoints[0].Address.IsValid() {
		t.Error("Assign changed its argument")
	}
}

// TestAssignKeepsAddresses: a change keeps the subnets and addresses of
// what stays, and new links do not take a removed link's place while the
// old one stays.
func TestAssignKeepsAddresses(t *testing.T) {
	first, err := Assign(line(), nil)
	if err != nil {
		t.Fatal(err)
	}
	next := line()
	next.Links = next.Links[1:] // a~r goes
	next.Nodes = append(next.Nodes, Node{Name: "c"})
	next.Links = append([]Link{{Name: "b~c", Endpoints: []Endpoint{{Node: "b"}, {Node: "c"}}}}, next.Links...)
	next.Links[1].Endpoints = append(next.Links[1].Endpoints, Endpoint{Node: "c"}) // b~r becomes a 3-node LAN
	got, err := Assign(next, &first)
	if err != nil {
		t.Fatal(err)
	}
	a := addrs(got)
	if a["b~r/r"] != "10.0.1.1/24" || a["b~r/b"] != "10.0.1.2/24" {
		t.Errorf("b~r renumbered: %v", a)
	}
	if a["b~r/c"] != "10.0.1.3/24" {
		t.Errorf("new endpoint b~r/c = %s, want the next host 10.0.1.3/24", a["b~r/c"])
	}
	// The removed a~r's subnet is free again; the new link takes it.
	if a["b~c/b"] != "10.0.0.1/24" {
		t.Errorf("b~c/b = %s, want 10.0.0.1/24", a["b~c/b"])
	}
}

func TestAssignPoolExhausted(t *testing.T) {
	p := line()
	p.Pool = netip.MustParsePrefix("192.168.7.0/24")
	_, err := Assign(p, nil)
	if !domain.HasCode(err, domain.CodeResourceExhausted) {
		t.Fatalf("err = %v, want resource exhausted", err)
	}
}
