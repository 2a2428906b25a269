package aspect

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// violations returns err's violations, failing the test unless err is a
// domain invalid-argument error.
func violations(t testing.TB, err error) []domain.Violation {
	t.Helper()
	var e *domain.Error
	if !errors.As(err, &e) || e.Code != domain.CodeInvalidArgument || len(e.Violations) == 0 {
		t.Fatalf("error = %#v, want invalid argument with violations", err)
	}
	return e.Violations
}

func constraintStrings(cs []domain.Constraint) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func TestParseLayoutExample(t *testing.T) {
	for _, file := range []string{"testdata/example.yaml", "testdata/example.json"} {
		t.Run(file, func(t *testing.T) {
			content, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ParseLayout(content)
			if err != nil {
				t.Fatalf("ParseLayout: %v", err)
			}
			if len(l.Nodes) != 2 || l.Nodes[0].Name != "a" || l.Nodes[1].Name != "b" {
				t.Fatalf("nodes = %+v, want a, b", l.Nodes)
			}
			if got := constraintStrings(l.Nodes[0].Constraints); !slices.Equal(got, []string{"cores>=4", "arch=x86_64"}) {
				t.Errorf("a's constraints = %q", got)
			}
			if len(l.Nodes[1].Constraints) != 0 {
				t.Errorf("b's constraints = %v, want none", l.Nodes[1].Constraints)
			}
			if len(l.Links) != 1 || l.Links[0].A != "a" || l.Links[0].B != "b" {
				t.Errorf("links = %+v, want [a b]", l.Links)
			}

			els, err := LayoutType{}.Elements(content)
			if err != nil {
				t.Fatal(err)
			}
			if len(els) != 2 || els[0].Name != "a" || els[1].Name != "b" {
				t.Fatalf("elements = %+v", els)
			}
			// The element's constraints are the resource rule: check them
			// against attributes, not only by their text.
			for _, tt := range []struct {
				attrs map[string]string
				want  bool
			}{
				{map[string]string{"cores": "8", "arch": "x86_64"}, true},
				{map[string]string{"cores": "4", "arch": "x86_64"}, true},
				{map[string]string{"cores": "2", "arch": "x86_64"}, false},
				{map[string]string{"cores": "8", "arch": "arm64"}, false},
				{map[string]string{"cores": "8"}, false},
			} {
				if got := domain.MatchAll(els[0].Constraints, tt.attrs); got != tt.want {
					t.Errorf("MatchAll(a, %v) = %v, want %v", tt.attrs, got, tt.want)
				}
			}
		})
	}
}

func TestParseLayoutLines(t *testing.T) {
	content, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLayout(content)
	if err != nil {
		t.Fatal(err)
	}
	if l.Nodes[0].Line != 2 || l.Nodes[1].Line != 4 || l.Links[0].Line != 6 {
		t.Errorf("lines = %d, %d, %d; want 2, 4, 6", l.Nodes[0].Line, l.Nodes[1].Line, l.Links[0].Line)
	}
}

func TestParseLayoutValid(t *testing.T) {
	tests := []struct {
		name        string
		doc         string
		constraints []string // of the first node
		links       []Link   // without lines
	}{
		{
			name:        "list of constraints on one attribute",
			doc:         "nodes:\n  - name: a\n    constraints:\n      cores: [\">=4\", \"<=16\"]\n      memory_gb: 64\n",
			constraints: []string{"cores>=4", "cores<=16", "memory_gb=64"},
		},
		{
			name:  "mapping form of a link",
			doc:   "nodes: [{name: a}, {name: b}, {name: c}]\nlinks:\n  - {endpoints: [a, b]}\n  - [b, c]\n",
			links: []Link{{A: "a", B: "b"}, {A: "b", B: "c"}},
		},
		{
			name: "empty constraints and links",
			doc:  "nodes:\n  - name: a\n    constraints:\nlinks:\n",
		},
		{
			name:        "range closed to one point",
			doc:         "nodes: [{name: a, constraints: {cores: [\">=4\", \"<=4\"]}}]",
			constraints: []string{"cores>=4", "cores<=4"},
		},
		{
			name:        "equal numbers written differently",
			doc:         "nodes: [{name: a, constraints: {cores: [4, \"=4.0\", \"!=5\", \">3\"]}}]",
			constraints: []string{"cores=4", "cores=4.0", "cores!=5", "cores>3"},
		},
		{
			name:        "equality and a different inequality",
			doc:         "nodes: [{name: a, constraints: {arch: [x86_64, \"!=arm64\"]}}]",
			constraints: []string{"arch=x86_64", "arch!=arm64"},
		},
		{
			name:        "inequality off a one-point range",
			doc:         "nodes: [{name: a, constraints: {cores: [\">=4\", \"<=4\", \"!=5\"]}}]",
			constraints: []string{"cores>=4", "cores<=4", "cores!=5"},
		},
		{
			name: "longest node name",
			doc:  "nodes: [{name: " + strings.Repeat("a", 63) + "}, {name: 0-9}]",
		},
		{
			name: "anchors without aliases",
			doc:  "nodes:\n  - &first\n    name: a\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseLayout([]byte(tt.doc))
			if err != nil {
				t.Fatalf("ParseLayout: %v", err)
			}
			if got := constraintStrings(l.Nodes[0].Constraints); !slices.Equal(got, tt.constraints) && len(got)+len(tt.constraints) > 0 {
				t.Errorf("constraints = %q, want %q", got, tt.constraints)
			}
			for i := range l.Links {
				l.Links[i].Line = 0
			}
			if !slices.Equal(l.Links, tt.links) && len(l.Links)+len(tt.links) > 0 {
				t.Errorf("links = %+v, want %+v", l.Links, tt.links)
			}
		})
	}
}

// badLayouts are malformed layouts, each with the one violation it must
// produce. Also seeds of the fuzz test.
var badLayouts = []struct {
	name  string
	doc   string
	field string
	rule  string
	line  int    // 0: the description names no line
	want  string // in the description, when set
}{
	// The syntax cases pin the line correction of syntaxError.
	{"unclosed flow mapping", "nodes:\n  - name: a\n    constraints: {cores: \">=4\"\nlinks: []\n", "layout", "layout.syntax", 3, "did not find expected ',' or '}'"},
	{"unclosed flow at the end", "nodes: [{name: a}", "layout", "layout.syntax", 1, ""},
	{"list item in a mapping", "nodes:\n  - name: a\n- name: b\n", "layout", "layout.syntax", 3, "did not find expected key"},
	{"error on the first line", "nodes: a: b\n", "layout", "layout.syntax", 1, "mapping values are not allowed"},
	{"unterminated quote", "nodes:\n  - name: a\n    constraints: {arch: \"x86\n\n", "layout", "layout.syntax", 3, "end of stream"},
	{"unquoted >=", "nodes:\n  - name: a\n    constraints:\n      cores: >=4\n", "layout", "layout.syntax", 4, `must be quoted, e.g. cores: ">=4"`},
	{"unquoted >= in a flow", "nodes:\n  - name: a\n    constraints: {cores: [>4]}\n", "layout", "layout.syntax", 3, "must be quoted"},
	{"unquoted !=", "nodes:\n  - name: a\n    constraints:\n      arch: !=arm64\n", "layout.nodes[0].constraints.arch", "layout.syntax", 4, `tag, not a value; quote the constraint, e.g. arch: "!=arm64"`},
	{"unknown anchor", "nodes:\n  - *nope\n", "layout", "layout.syntax", 0, "unknown anchor"},
	{"control character", "nodes:\n  - name: a\n  - name: b\x01\n", "layout", "layout.syntax", 3, "byte 30 is U+0001"},
	{"invalid utf-8", "nodes:\n  - name: \xff\n", "layout", "layout.syntax", 2, "UTF-8"},
	{"tab indentation", "nodes:\n\t- name: a\n", "layout", "layout.syntax", 2, ""},
	{"json syntax", `{"nodes": [{"name": "a"}`, "layout", "layout.syntax", 1, ""},
	{"two documents", "nodes: [{name: a}]\n---\nnodes: [{name: b}]\n", "layout", "layout.syntax", 2, "one YAML document"},
	{"alias", "nodes:\n  - &n {name: a}\n  - *n\n", "layout.nodes[1]", "layout.syntax", 3, "aliases"},
	{"empty", "", "layout.nodes", "layout.required", 0, "at least one node"},
	{"only a comment", "# nothing yet\n", "layout.nodes", "layout.required", 0, ""},
	{"null document", "---\n", "layout.nodes", "layout.required", 0, ""},
	{"top level list", "- name: a\n", "layout", "layout.type", 1, "found a list"},
	{"top level scalar", "hello\n", "layout", "layout.type", 1, `found "hello"`},
	{"no nodes", "links: []\n", "layout.nodes", "layout.required", 1, ""},
	{"empty nodes", "nodes: []\n", "layout.nodes", "layout.required", 1, ""},
	{"nodes not a list", "nodes:\n  a: {}\n", "layout.nodes", "layout.type", 2, "a list of nodes"},
	{"unknown top level field", "nodes:\n  - name: a\nlinkz:\n  - [a, b]\n", "layout.linkz", "layout.unknown_field", 3, "nodes, links"},
	{"unknown node field", "nodes:\n  - name: a\n    image: ubuntu\n", "layout.nodes[0].image", "layout.unknown_field", 3, "name, constraints"},
	{"unknown link field", "nodes: [{name: a}, {name: b}]\nlinks:\n  - endpoints: [a, b]\n    bandwidth: 10\n", "layout.links[0].bandwidth", "layout.unknown_field", 4, ""},
	{"unknown field in json", `{"nodes": [{"name": "a", "os": "linux"}]}`, "layout.nodes[0].os", "layout.unknown_field", 1, ""},
	{"duplicate top level key", "nodes: [{name: a}]\nnodes: [{name: b}]\n", "layout.nodes", "layout.duplicate_key", 2, "line 1"},
	{"node not a mapping", "nodes:\n  - a\n", "layout.nodes[0]", "layout.type", 2, ""},
	{"node without name", "nodes:\n  - name: a\n  - constraints: {cores: 4}\n", "layout.nodes[1].name", "layout.required", 3, ""},
	{"null name", "nodes:\n  - name:\n", "layout.nodes[0].name", "layout.required", 2, ""},
	{"name not a scalar", "nodes:\n  - name: [a]\n", "layout.nodes[0].name", "layout.type", 2, ""},
	{"duplicate node names", "nodes:\n  - name: a\n  - name: b\n  - name: a\n", "layout.nodes[2].name", "layout.node.duplicate", 4, "already defined at line 2"},
	{"upper-case node name", "nodes:\n  - name: Alpha\n", "layout.nodes[0].name", "layout.node.name", 2, "lower-case letters, digits or '-'"},
	{"node name with underscore", "nodes:\n  - name: a_b\n", "layout.nodes[0].name", "layout.node.name", 2, ""},
	{"node name starting with -", "nodes:\n  - name: -a\n", "layout.nodes[0].name", "layout.node.name", 2, ""},
	{"node name ending with -", "nodes:\n  - name: a-\n", "layout.nodes[0].name", "layout.node.name", 2, ""},
	{"empty node name", "nodes:\n  - name: \"\"\n", "layout.nodes[0].name", "layout.node.name", 2, ""},
	{"node name too long", "nodes:\n  - name: " + strings.Repeat("a", 64) + "\n", "layout.nodes[0].name", "layout.node.name", 2, "1 to 63"},
	{"links not a list", "nodes: [{name: a}]\nlinks: a\n", "layout.links", "layout.type", 2, ""},
	{"link to missing node", "nodes:\n  - name: a\n  - name: b\nlinks:\n  - [a, b]\n  - [b, c]\n", "layout.links[1][1]", "layout.link.missing_node", 6, `"c"`},
	{"mapping link to missing node", "nodes: [{name: a}]\nlinks:\n  - endpoints: [x, a]\n", "layout.links[0].endpoints[0]", "layout.link.missing_node", 3, ""},
	{"link without endpoints", "nodes: [{name: a}]\nlinks:\n  - {}\n", "layout.links[0].endpoints", "layout.required", 3, ""},
	{"link of three nodes", "nodes: [{name: a}, {name: b}, {name: c}]\nlinks:\n  - [a, b, c]\n", "layout.links[0]", "layout.link.format", 3, "exactly two"},
	{"link not a pair", "nodes: [{name: a}]\nlinks:\n  - a\n", "layout.links[0]", "layout.type", 3, ""},
	{"link endpoint not a name", "nodes: [{name: a}]\nlinks:\n  - [a, [b]]\n", "layout.links[0][1]", "layout.type", 3, ""},
	{"self link", "nodes: [{name: a}]\nlinks:\n  - [a, a]\n", "layout.links[0]", "layout.link.self", 3, "itself"},
	{"duplicate link", "nodes: [{name: a}, {name: b}]\nlinks:\n  - [a, b]\n  - [a, b]\n", "layout.links[1]", "layout.link.duplicate", 4, "line 3"},
	{"duplicate link reversed", "nodes: [{name: a}, {name: b}]\nlinks:\n  - [a, b]\n  - {endpoints: [b, a]}\n", "layout.links[1]", "layout.link.duplicate", 4, "no direction"},
	{"constraints not a mapping", "nodes:\n  - name: a\n    constraints: [cores]\n", "layout.nodes[0].constraints", "layout.type", 3, ""},
	{"bad attribute name", "nodes:\n  - name: a\n    constraints: {Cores: 4}\n", "layout.nodes[0].constraints.Cores", "attribute.name", 3, ""},
	{"duplicate attribute", "nodes:\n  - name: a\n    constraints:\n      cores: \">=8\"\n      cores: \"<=4\"\n", "layout.nodes[0].constraints.cores", "layout.duplicate_key", 5, "give a list"},
	{"order on a non-number", "nodes:\n  - name: a\n    constraints: {cores: \">=many\"}\n", "layout.nodes[0].constraints.cores", "constraint.number", 3, "must be a number"},
	{"order on a non-number in a list", "nodes:\n  - name: a\n    constraints:\n      cores: [\">=4\",\n              \"<lots\"]\n", "layout.nodes[0].constraints.cores[1]", "constraint.number", 5, ""},
	{"NaN", "nodes:\n  - name: a\n    constraints: {cores: \">=NaN\"}\n", "layout.nodes[0].constraints.cores", "constraint.number", 3, "finite"},
	{"infinity", "nodes:\n  - name: a\n    constraints: {cores: \"<Inf\"}\n", "layout.nodes[0].constraints.cores", "constraint.number", 3, "finite"},
	{"operator without value", "nodes:\n  - name: a\n    constraints: {cores: \">=\"}\n", "layout.nodes[0].constraints.cores", "constraint.value", 3, ""},
	{"null constraint", "nodes:\n  - name: a\n    constraints: {cores: }\n", "layout.nodes[0].constraints.cores", "constraint.value", 3, ""},
	{"empty constraint list", "nodes:\n  - name: a\n    constraints: {cores: []}\n", "layout.nodes[0].constraints.cores", "constraint.value", 3, ""},
	{"nested constraint list", "nodes:\n  - name: a\n    constraints: {cores: [[4]]}\n", "layout.nodes[0].constraints.cores[0]", "layout.type", 3, ""},
	{"empty range", "nodes:\n  - name: a\n  - name: b\n    constraints: {cores: [\">=8\", \"<=4\"]}\n", "layout.nodes[1].constraints.cores", "layout.constraint.contradiction", 4, "cores>=8 and cores<=4"},
	{"empty range, strict", "nodes:\n  - name: a\n    constraints: {cores: [\">4\", \"<=4\"]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, ""},
	{"empty range, tightest bounds", "nodes:\n  - name: a\n    constraints: {mem: [\">=1\", \"<100\", \">=50\", \"<=200\", \"<50\"]}\n", "layout.nodes[0].constraints.mem", "layout.constraint.contradiction", 3, "mem>=50 and mem<50"},
	{"two equalities", "nodes:\n  - name: a\n    constraints: {arch: [x86_64, arm64]}\n", "layout.nodes[0].constraints.arch", "layout.constraint.contradiction", 3, "arch=x86_64 and arch=arm64"},
	{"two numeric equalities", "nodes:\n  - name: a\n    constraints: {cores: [4, \"=8\"]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, ""},
	{"equality and inequality", "nodes:\n  - name: a\n    constraints: {arch: [x86_64, \"!=x86_64\"]}\n", "layout.nodes[0].constraints.arch", "layout.constraint.contradiction", 3, ""},
	{"equality and numerically equal inequality", "nodes:\n  - name: a\n    constraints: {cores: [\"!=4.0\", 4]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, ""},
	{"equality below a bound", "nodes:\n  - name: a\n    constraints: {cores: [2, \">=4\"]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, "cores=2 and cores>=4"},
	{"equality above a strict bound", "nodes:\n  - name: a\n    constraints: {cores: [\"<4\", 4]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, ""},
	{"text equality with an order", "nodes:\n  - name: a\n    constraints: {cores: [many, \">=1\"]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, ""},
	{"one-point range removed", "nodes:\n  - name: a\n    constraints: {cores: [\">=4\", \"<=4\", \"!=4\"]}\n", "layout.nodes[0].constraints.cores", "layout.constraint.contradiction", 3, "cannot all hold"},
	{"too large", "nodes: [{name: a}]\n#" + strings.Repeat("x", MaxLayoutSize), "layout", "aspect.size", 0, "1 MiB"},
}

func TestParseLayoutErrors(t *testing.T) {
	for _, tt := range badLayouts {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLayout([]byte(tt.doc))
			vs := violations(t, err)
			if len(vs) != 1 {
				t.Fatalf("got %d violations, want 1: %v", len(vs), err)
			}
			v := vs[0]
			if v.Field != tt.field || v.Rule != tt.rule {
				t.Errorf("violation = %s (%s), want %s (%s): %s", v.Field, v.Rule, tt.field, tt.rule, v.Description)
			}
			prefix := fmt.Sprintf("line %d: ", tt.line)
			if tt.line == 0 && strings.HasPrefix(v.Description, "line ") || tt.line > 0 && !strings.HasPrefix(v.Description, prefix) {
				t.Errorf("description %q, want line %d", v.Description, tt.line)
			}
			if !strings.Contains(v.Description, tt.want) {
				t.Errorf("description %q, want it to contain %q", v.Description, tt.want)
			}
			// Alone, as the experiment's only layout aspect: refused when
			// checked as a part, or else when composed.
			if err := (LayoutType{}).Validate([]byte(tt.doc)); err == nil {
				if _, err := (LayoutType{}).Compose([]Part{{Name: "main", Content: []byte(tt.doc)}}); err == nil {
					t.Error("Validate and Compose accepted it")
				}
			}
		})
	}
}

// TestParseLayoutAllProblems checks that one error reports every problem,
// each with its own field and line, and that the list is bounded.
func TestParseLayoutAllProblems(t *testing.T) {
	doc := "nodes:\n  - name: a\n  - name: B\n    extra: 1\nlinks:\n  - [a, c]\n"
	vs := violations(t, func() error { _, err := ParseLayout([]byte(doc)); return err }())
	// In document order, though the walk finds the unknown field first.
	want := []string{"layout.nodes[1].name line 3", "layout.nodes[1].extra line 4", "layout.links[0][1] line 6"}
	var got []string
	for _, v := range vs {
		line, _, _ := strings.Cut(v.Description, ":")
		got = append(got, v.Field+" "+line)
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations = %q, want %q", got, want)
	}

	var b strings.Builder
	b.WriteString("nodes:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  - name: N%d\n", i)
	}
	_, err := ParseLayout([]byte(b.String()))
	vs = violations(t, err)
	if len(vs) != maxViolations+1 || vs[maxViolations].Rule != "layout.too_many_problems" || !strings.Contains(vs[maxViolations].Description, "150 more") {
		t.Errorf("got %d violations, last %+v; want %d and a count of the rest", len(vs), vs[len(vs)-1], maxViolations+1)
	}
}

func TestLayoutSummary(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"nodes: [{name: a}, {name: b}, {name: c}]\nlinks: [[a, b], [b, c]]\n", "3 nodes, 2 links"},
		{"nodes: [{name: a}]\n", "1 node, 0 links"},
		{"nodes: [{name: a}, {name: b}]\nlinks: [[a, b]]\n", "2 nodes, 1 link"},
		{"nodes: []\n", "invalid layout"},
	}
	for _, tt := range tests {
		if got := (LayoutType{}).Summarize([]byte(tt.doc)); got != tt.want {
			t.Errorf("Summarize(%q) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}

func FuzzParseLayout(f *testing.F) {
	for _, file := range []string{"testdata/example.yaml", "testdata/example.json"} {
		content, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(content)
	}
	for _, tt := range badLayouts {
		if len(tt.doc) < 4096 {
			f.Add([]byte(tt.doc))
		}
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		l, err := ParseLayout(content)
		if err != nil {
			violations(t, err)
			if l != nil {
				t.Fatal("a layout and an error")
			}
			return
		}
		// A layout that parsed keeps its promises to realization.
		if len(l.Nodes) == 0 {
			t.Fatal("a valid layout without nodes")
		}
		names := make(map[string]bool)
		for _, n := range l.Nodes {
			if !nodeName.MatchString(n.Name) || names[n.Name] {
				t.Fatalf("bad or duplicate node name %q", n.Name)
			}
			names[n.Name] = true
			byAttr := make(map[string][]domain.Constraint)
			for _, c := range n.Constraints {
				byAttr[c.Attr] = append(byAttr[c.Attr], c)
			}
			for _, cs := range byAttr {
				if msg := contradiction(cs); msg != "" {
					t.Fatalf("node %s: %s", n.Name, msg)
				}
			}
		}
		for _, k := range l.Links {
			if !names[k.A] || !names[k.B] || k.A == k.B {
				t.Fatalf("bad link %+v", k)
			}
		}
		if els := l.Elements(); len(els) != len(l.Nodes) {
			t.Fatalf("%d elements for %d nodes", len(els), len(l.Nodes))
		}
	})
}

// generatedLayout is a layout of n nodes with two constraints each, in a
// ring of links.
func generatedLayout(n int) []byte {
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: node-%d\n    constraints: {cores: [\">=%d\", \"<=64\"], arch: x86_64}\n", i, 1+i%8)
	}
	b.WriteString("links:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - [node-%d, node-%d]\n", i, (i+1)%n)
	}
	return []byte(b.String())
}

func BenchmarkParseLayout1000(b *testing.B) {
	content := generatedLayout(1000)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		l, err := ParseLayout(content)
		if err != nil || len(l.Nodes) != 1000 || len(l.Links) != 1000 {
			b.Fatalf("ParseLayout: %v", err)
		}
	}
}
