package materialize

import (
	"os"
	"reflect"
	"testing"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/domain"
)

func parse(t *testing.T, doc string) *aspect.Layout {
	t.Helper()
	l, err := aspect.ParseLayout([]byte(doc))
	if err != nil {
		t.Fatalf("ParseLayout: %v", err)
	}
	return l
}

func TestFromLayoutExample(t *testing.T) {
	doc, err := os.ReadFile("../aspect/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := parse(t, string(doc))
	p, err := FromLayout("r-ex", l, []domain.Binding{{Element: "a", Resource: "node001"}, {Element: "b", Resource: "node002"}})
	if err != nil {
		t.Fatalf("FromLayout: %v", err)
	}
	want := Plan{
		Realization: "r-ex",
		Nodes:       []Node{{Name: "a", Resource: "node001"}, {Name: "b", Resource: "node002"}},
		Links:       []Link{{Name: "a~b", Endpoints: []Endpoint{{Node: "a"}, {Node: "b"}}}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("plan = %+v\nwant   %+v", p, want)
	}
}

func TestFromLayoutBindings(t *testing.T) {
	l := parse(t, "nodes: [{name: a}, {name: r}, {name: b}]\nlinks: [[a, r], [r, b]]\n")
	tests := []struct {
		name     string
		bindings []domain.Binding
		nodes    []Node
		links    []string
		rule     string // the error's rule, if any
	}{
		{"all bound", []domain.Binding{{Element: "a", Resource: "n1"}, {Element: "r", Resource: "n2"}, {Element: "b", Resource: "n3"}},
			[]Node{{Name: "a", Resource: "n1"}, {Name: "r", Resource: "n2", Router: true}, {Name: "b", Resource: "n3"}}, []string{"a~r", "b~r"}, ""},
		// r keeps its role while b is not bound yet: the layout decides.
		{"b not bound yet", []domain.Binding{{Element: "r", Resource: "n2"}, {Element: "a", Resource: "n1"}},
			[]Node{{Name: "a", Resource: "n1"}, {Name: "r", Resource: "n2", Router: true}}, []string{"a~r"}, ""},
		{"only b", []domain.Binding{{Element: "b", Resource: "n3"}}, []Node{{Name: "b", Resource: "n3"}}, nil, ""},
		{"nothing bound", nil, nil, nil, "materialize.required"},
		{"unknown element", []domain.Binding{{Element: "c", Resource: "n1"}}, nil, nil, "materialize.binding.unknown_node"},
		{"bound twice", []domain.Binding{{Element: "a", Resource: "n1"}, {Element: "a", Resource: "n2"}}, nil, nil, "materialize.binding.duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromLayout("r-1", l, tt.bindings)
			if tt.rule != "" {
				de, ok := err.(*domain.Error)
				if !ok || len(de.Violations) == 0 || de.Violations[0].Rule != tt.rule {
					t.Fatalf("err = %v, want rule %s", err, tt.rule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Nodes, tt.nodes) {
				t.Errorf("nodes = %+v, want %+v", p.Nodes, tt.nodes)
			}
			var links []string
			for _, k := range p.Links {
				links = append(links, k.Name)
			}
			if !reflect.DeepEqual(links, tt.links) {
				t.Errorf("links = %v, want %v", links, tt.links)
			}
		})
	}
}

func TestLinkName(t *testing.T) {
	if LinkName("b", "a") != "a~b" || LinkName("a", "b") != "a~b" {
		t.Error("LinkName depends on order")
	}
	if LinkName("a-b", "c") == LinkName("a", "b-c") {
		t.Error("LinkName is ambiguous")
	}
}
