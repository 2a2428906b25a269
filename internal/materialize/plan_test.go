package materialize

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// line is a - r - b with r routing.
func line() Plan {
	return Plan{
		Realization: "r-test",
		Nodes:       []Node{{Name: "a"}, {Name: "r", Router: true}, {Name: "b"}},
		Links: []Link{
			{Name: "a~r", Endpoints: []Endpoint{{Node: "a"}, {Node: "r"}}},
			{Name: "b~r", Endpoints: []Endpoint{{Node: "r"}, {Node: "b"}}},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *Plan)
		field  string // "" means valid
		rule   string
		says   string // in the description: the element's name
	}{
		{"valid", func(p *Plan) {}, "", "", ""},
		{"valid LAN with addresses and constraints", func(p *Plan) {
			p.Links = append(p.Links, Link{Name: "lan0", Endpoints: []Endpoint{
				{Node: "a", Address: pfx("192.168.5.1/24")}, {Node: "r", Address: pfx("192.168.5.2/24")}, {Node: "b", Address: pfx("192.168.5.3/24")},
			}, Constraints: Constraints{Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, Rate: 10_000_000}})
		}, "", "", ""},
		{"bad realization", func(p *Plan) { p.Realization = "a b" }, "plan.realization", "materialize.realization", `"a b"`},
		{"no nodes", func(p *Plan) { p.Nodes, p.Links = nil, nil }, "plan.nodes", "materialize.required", "at least one node"},
		{"bad node name", func(p *Plan) { p.Nodes[0].Name = "A_1" }, "plan.nodes[0].name", "materialize.node.name", `"A_1"`},
		{"duplicate node", func(p *Plan) { p.Nodes[2].Name = "a" }, "plan.nodes[2].name", "materialize.node.duplicate", `node "a"`},
		{"bad link name", func(p *Plan) { p.Links[0].Name = "A R" }, "plan.links[0].name", "materialize.link.name", `"A R"`},
		{"duplicate link", func(p *Plan) { p.Links[1].Name = "a~r" }, "plan.links[1].name", "materialize.link.duplicate", `link "a~r"`},
		{"one endpoint", func(p *Plan) { p.Links[0].Endpoints = p.Links[0].Endpoints[:1] }, "plan.links[0].endpoints", "materialize.link.endpoints", `link "a~r" has 1`},
		{"unknown node", func(p *Plan) { p.Links[1].Endpoints[1].Node = "c" }, "plan.links[1].endpoints[1].node", "materialize.link.missing_node", `link "b~r": no node is named "c"`},
		{"node twice", func(p *Plan) { p.Links[0].Endpoints[1].Node = "a" }, "plan.links[0].endpoints[1].node", "materialize.link.node_twice", `link "a~r": node "a"`},
		{"IPv6", func(p *Plan) {
			p.Links[0].Endpoints[0].Address = pfx("fd00::1/64")
			p.Links[0].Endpoints[1].Address = pfx("fd00::2/64")
		}, "plan.links[0].endpoints[0].address", "materialize.address.invalid", `link "a~r", node "a": fd00::1/64 is not an IPv4`},
		{"network address", func(p *Plan) {
			p.Links[0].Endpoints[0].Address = pfx("10.9.0.0/24")
			p.Links[0].Endpoints[1].Address = pfx("10.9.0.2/24")
		}, "plan.links[0].endpoints[0].address", "materialize.address.invalid", "network address"},
		{"broadcast address", func(p *Plan) {
			p.Links[0].Endpoints[0].Address = pfx("10.9.0.1/24")
			p.Links[0].Endpoints[1].Address = pfx("10.9.0.255/24")
		}, "plan.links[0].endpoints[1].address", "materialize.address.invalid", "broadcast address"},
		{"two subnets on one link", func(p *Plan) {
			p.Links[0].Endpoints[0].Address = pfx("10.9.0.1/24")
			p.Links[0].Endpoints[1].Address = pfx("10.9.1.2/24")
		}, "plan.links[0].endpoints[1].address", "materialize.address.subnet", `node "r": 10.9.1.2/24 is not in the link's subnet 10.9.0.0/24`},
		{"partial addresses", func(p *Plan) { p.Links[0].Endpoints[0].Address = pfx("10.9.0.1/24") }, "plan.links[0].endpoints", "materialize.address.partial", `link "a~r": 1 of its 2`},
		{"address clash", func(p *Plan) {
			p.Links[0].Endpoints[0].Address = pfx("10.9.0.1/24")
			p.Links[0].Endpoints[1].Address = pfx("10.9.0.1/24")
		}, "plan.links[0].endpoints[1].address", "materialize.address.clash", `address 10.9.0.1 is already link "a~r", node "a"'s`},
		{"subnets overlap", func(p *Plan) {
			p.Links[0].Endpoints[0].Address = pfx("10.9.0.1/24")
			p.Links[0].Endpoints[1].Address = pfx("10.9.0.2/24")
			p.Links[1].Endpoints[0].Address = pfx("10.9.0.5/16")
			p.Links[1].Endpoints[1].Address = pfx("10.9.0.6/16")
		}, "plan.links[1].endpoints", "materialize.address.overlap", `link "b~r": subnet 10.9.0.0/16 overlaps link "a~r"'s 10.9.0.0/24`},
		{"delay too long", func(p *Plan) { p.Links[0].Constraints.Delay = 11 * time.Second }, "plan.links[0].constraints.delay", "materialize.constraint.range", `link "a~r": delay 11s`},
		{"negative delay", func(p *Plan) { p.Links[0].Constraints.Delay = -time.Millisecond }, "plan.links[0].constraints.delay", "materialize.constraint.range", "delay -1ms"},
		{"jitter above delay", func(p *Plan) {
			p.Links[1].Constraints = Constraints{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}
		}, "plan.links[1].constraints.jitter", "materialize.constraint.range", `link "b~r": jitter 2ms`},
		{"loss above 1", func(p *Plan) { p.Links[0].Constraints.Loss = 1.5 }, "plan.links[0].constraints.loss", "materialize.constraint.range", "loss 1.5"},
		{"loss NaN", func(p *Plan) { p.Links[0].Constraints.Loss = math.NaN() }, "plan.links[0].constraints.loss", "materialize.constraint.range", "loss NaN"},
		{"rate too low", func(p *Plan) { p.Links[0].Constraints.Rate = 100 }, "plan.links[0].constraints.rate", "materialize.constraint.range", "rate 100 bit/s"},
		{"IPv6 pool", func(p *Plan) { p.Pool = pfx("fd00::/48") }, "plan.pool", "materialize.pool", "not an IPv4 range"},
		{"pool too small", func(p *Plan) { p.Pool = pfx("10.0.0.0/25") }, "plan.pool", "materialize.pool", "smaller than one /24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := line()
			tt.change(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalidArgument {
				t.Fatalf("Validate = %v, want an invalid-argument error", err)
			}
			for _, v := range de.Violations {
				if v.Field == tt.field && v.Rule == tt.rule {
					if !strings.Contains(v.Description, tt.says) {
						t.Errorf("description %q does not say %q", v.Description, tt.says)
					}
					return
				}
			}
			t.Errorf("violations %+v lack field %s rule %s", de.Violations, tt.field, tt.rule)
		})
	}
}

// TestValidateReportsAll checks that one round trip names every problem.
func TestValidateReportsAll(t *testing.T) {
	p := line()
	p.Nodes[0].Name = "Bad"
	p.Links[1].Endpoints[1].Node = "zz"
	p.Links[1].Constraints.Loss = 2
	var de *domain.Error
	if !errors.As(p.Validate(), &de) || len(de.Violations) < 4 {
		t.Fatalf("want at least 4 violations (bad name, a~r's unknown a, zz, loss), got %v", de)
	}
}
