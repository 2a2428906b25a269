package aspect

import (
	"slices"
	"strings"
	"testing"
)

func TestCompose(t *testing.T) {
	main := "nodes: [{name: a, constraints: {cores: \">=4\"}}, {name: b}]\nlinks: [[a, b]]\n"
	tests := []struct {
		name  string
		parts []Part
		nodes []string // the whole's elements, when it composes
		field string   // else the one violation's field
		rule  string
		want  string // in its description
	}{
		{name: "one layout", parts: []Part{{"main", []byte(main)}}, nodes: []string{"a", "b"}},
		{name: "a part links into another", parts: []Part{{"main", []byte(main)}, {"extra", []byte("nodes: [{name: c}]\nlinks: [[b, c]]\n")}}, nodes: []string{"a", "b", "c"}},
		{name: "a part of links only", parts: []Part{{"main", []byte("nodes: [{name: a}, {name: b}]\n")}, {"wiring", []byte("links: [[a, b]]\n")}}, nodes: []string{"a", "b"}},
		{name: "a link to a node no layout defines", parts: []Part{{"main", []byte(main)}, {"extra", []byte("nodes: [{name: c}]\nlinks: [[c, z]]\n")}},
			field: "layout/extra.links[0]", rule: "layout.link.missing_node", want: `no layout aspect defines node "z" (the layout aspects are main, extra)`},
		{name: "a node defined twice", parts: []Part{{"main", []byte(main)}, {"extra", []byte("nodes: [{name: b}]\n")}},
			field: "layout/extra.nodes[0].name", rule: "layout.node.duplicate", want: `node "b" is already defined by layout/main`},
		{name: "a link given twice", parts: []Part{{"main", []byte(main)}, {"extra", []byte("links: [[b, a]]\n")}},
			field: "layout/extra.links[0]", rule: "layout.link.duplicate", want: `layout/main already links "b" and "a"`},
		{name: "a lone link", parts: []Part{{"main", []byte("nodes: [{name: a}]\nlinks: [[a, b]]\n")}},
			field: "layout/main.links[0]", rule: "layout.link.missing_node", want: `no layout aspect defines node "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			els, err := (LayoutType{}).Compose(tt.parts)
			if tt.nodes != nil {
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range els {
					got = append(got, e.Name)
				}
				if !slices.Equal(got, tt.nodes) {
					t.Errorf("elements %v, want %v", got, tt.nodes)
				}
				return
			}
			vs := violations(t, err)
			if len(vs) != 1 || vs[0].Field != tt.field || vs[0].Rule != tt.rule || !strings.Contains(vs[0].Description, tt.want) {
				t.Errorf("violations %+v, want one %s (%s) saying %q", vs, tt.field, tt.rule, tt.want)
			}
		})
	}
}

func TestDeriveNodeViews(t *testing.T) {
	doc := "nodes:\n  - name: b\n  - name: a\n    constraints: {cores: [\">=4\", \"<=16\"], arch: x86_64}\nlinks: [[a, b], [b, c]]\n"
	views := (LayoutType{}).Derive([]byte(doc))
	var names []string
	for _, v := range views {
		names = append(names, v.Name+": "+v.Summary)
	}
	if want := []string{"a: node a, 1 link", "b: node b, 2 links"}; !slices.Equal(names, want) {
		t.Fatalf("views %q, want %q", names, want)
	}
	// Each view is itself a layout part saying the same of its node.
	l, err := parseLayout(views[0].Content, true)
	if err != nil {
		t.Fatalf("view of a: %v\n%s", err, views[0].Content)
	}
	var cs []string
	for _, c := range l.Nodes[0].Constraints {
		cs = append(cs, c.String())
	}
	slices.Sort(cs)
	if len(l.Nodes) != 1 || l.Nodes[0].Name != "a" || !slices.Equal(cs, []string{"arch=x86_64", "cores<=16", "cores>=4"}) || len(l.Links) != 1 {
		t.Errorf("view of a: %+v\n%s", l, views[0].Content)
	}
	if (LayoutType{}).Derive([]byte("nodes: [")) != nil {
		t.Error("an invalid layout derived views")
	}
}
