package aspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// LayoutType is the built-in `layout` aspect: the experiment's topology,
// nodes with constraints on resource attributes and links between them. The
// format is documented in docs/layout.md.
type LayoutType struct{}

func (LayoutType) Name() string { return TypeLayout }
func (LayoutType) MaxSize() int { return MaxLayoutSize }

// Validate checks one layout aspect as a part of the experiment's
// topology: its links may join nodes another layout aspect defines, which
// Compose checks across all of them.
func (LayoutType) Validate(content []byte) error {
	_, err := parseLayout(content, true)
	return err
}

func (LayoutType) Summarize(content []byte) string {
	l, err := parseLayout(content, true)
	if err != nil {
		return "invalid layout"
	}
	return l.Summary()
}

// Elements returns one element per node, in document order.
func (LayoutType) Elements(content []byte) ([]Element, error) {
	l, err := ParseLayout(content)
	if err != nil {
		return nil, err
	}
	return l.Elements(), nil
}

// Layout is a parsed, valid layout.
type Layout struct {
	Nodes []Node // in document order
	Links []Link // in document order
}

// Node is a layout's node: the resource bound to it must satisfy every
// constraint. Line is where the node starts in the document.
type Node struct {
	Name        string
	Constraints []domain.Constraint
	Line        int
}

// Link joins two distinct nodes. Links have no direction: A and B are in the
// order the document gives them.
type Link struct {
	A, B string
	Line int
}

// Elements returns one element per node, in document order. The elements
// own their constraint slices, so callers may change them freely.
func (l *Layout) Elements() []Element {
	els := make([]Element, len(l.Nodes))
	for i, n := range l.Nodes {
		els[i] = Element{Name: n.Name, Constraints: slices.Clone(n.Constraints)}
	}
	return els
}

// Summary is "3 nodes, 2 links".
func (l *Layout) Summary() string {
	return plural(len(l.Nodes), "node") + ", " + plural(len(l.Links), "link")
}

// maxViolations bounds how many problems one error reports: enough to fix a
// document in one round, not so many that a broken 1 MiB file yields a
// megabyte of error.
const maxViolations = 50

// ParseLayout parses and checks a layout, a YAML (or JSON) document. On any
// problem it returns a domain invalid-argument error listing the problems
// found (up to 50), each with its field path and line.
func ParseLayout(content []byte) (*Layout, error) {
	return parseLayout(content, false)
}

// parseLayout parses a whole layout, or with part a part of one: nodes may
// be none and links may name nodes the document does not define.
func parseLayout(content []byte, part bool) (*Layout, error) {
	if err := checkSize(TypeLayout, MaxLayoutSize, content); err != nil {
		return nil, err
	}
	if err := checkText(content); err != nil {
		return nil, err
	}
	root, err := decodeOne(content)
	if err != nil {
		return nil, err
	}
	p := layoutParser{part: part}
	l := p.layout(root)
	if err := p.err(); err != nil {
		return nil, err
	}
	return l, nil
}

// decodeOne decodes the one YAML document of content into a node tree, which
// keeps the line numbers and every key, so that unknown fields and duplicate
// keys can be refused (decoding into structs would drop both silently).
func decodeOne(content []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, domain.Invalid("layout.nodes", "layout.required", "the layout is empty; it needs at least one node, e.g. nodes: [{name: a}]")
		}
		return nil, syntaxError(content, err)
	}
	// A second document would be ignored by a plain Unmarshal; refuse it
	// rather than realize half of what the user wrote.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(content, err)
	default:
		return nil, domain.Invalid("layout", "layout.syntax", fmt.Sprintf("line %d: a layout is one YAML document; a second document starts here", next.Line))
	}
	if len(doc.Content) != 1 {
		return nil, domain.Invalid("layout", "layout.syntax", "not a YAML document")
	}
	return doc.Content[0], nil
}

// syntaxError turns the YAML library's "yaml: line 3: did not find
// expected key" into "line 3: did not find expected key", with the line
// corrected: gopkg.in/yaml.v3 prints the 0-based line for its parser's
// problems (go-yaml issue #205) and no line for a problem on the first line.
func syntaxError(content []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, after
			}
		}
	}
	switch {
	case yamlParserProblems[msg]:
		line++
	case line == 0 && !strings.Contains(msg, "anchor"):
		// A scanner problem on the first line; only alias resolution fails
		// without a position.
		line = 1
	}
	// A problem at the end of the stream is placed on the line after the
	// last one: point at the last one.
	lines := bytes.Count(content, []byte("\n"))
	if !bytes.HasSuffix(content, []byte("\n")) {
		lines++
	}
	line = min(line, max(lines, 1))
	if line > 0 {
		if unquotedComparison.Match(lineText(content, line)) {
			msg += `; a comparison starting with '>' or '!' must be quoted, e.g. cores: ">=4"`
		}
		msg = "line " + strconv.Itoa(line) + ": " + msg
	}
	return domain.Invalid("layout", "layout.syntax", msg)
}

// unquotedComparison spots the likeliest syntax error of a layout: ">" and
// "!" start block scalars and tags in YAML, so cores: >=4 does not parse.
var unquotedComparison = regexp.MustCompile(`(^|[\s:,\[{])[>!]=?\s*[0-9A-Za-z]`)

// lineText returns line n (1-based) of content.
func lineText(content []byte, n int) []byte {
	for ; n > 1; n-- {
		i := bytes.IndexByte(content, '\n')
		if i < 0 {
			return nil
		}
		content = content[i+1:]
	}
	if i := bytes.IndexByte(content, '\n'); i >= 0 {
		content = content[:i]
	}
	return content
}

// yamlParserProblems are the problems gopkg.in/yaml.v3 (v3.0.1) reports from
// its parser rather than its scanner, whose lines need correcting. The
// library exposes no error type to tell them apart; TestParseLayoutErrors
// pins the behaviour.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// checkText finds the first character YAML does not allow (YAML 1.2
// section 5.1, as the library's reader checks it, which reports no line),
// and says where it is. A layout must be UTF-8, as JSON must.
func checkText(content []byte) error {
	line := 1
	for i := 0; i < len(content); {
		r, n := utf8.DecodeRune(content[i:])
		var problem string
		switch {
		case r == utf8.RuneError && n <= 1:
			problem = "is not valid UTF-8"
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85:
		case r < 0x20 || r >= 0x7f && r < 0xa0 || r == 0xfffe || r == 0xffff:
			problem = fmt.Sprintf("is %U, a character YAML does not allow", r)
		}
		if problem != "" {
			return domain.Invalid("layout", "layout.syntax", fmt.Sprintf("line %d: byte %d %s; a layout is UTF-8 text", line, i, problem))
		}
		i += n
	}
	return nil
}

// layoutParser walks the node tree and records every problem it finds, so
// that one round trip reports them all.
type layoutParser struct {
	found   []problem
	dropped int
	// part parses one layout aspect of several: no node is required, and
	// links may join nodes defined elsewhere (Compose checks them).
	part bool
}

type problem struct {
	line int
	v    domain.Violation
}

func (p *layoutParser) add(n *yaml.Node, field, rule, desc string) {
	if len(p.found) >= maxViolations {
		p.dropped++
		return
	}
	line := 0
	if n != nil && n.Line > 0 {
		line = n.Line
		desc = "line " + strconv.Itoa(line) + ": " + desc
	}
	p.found = append(p.found, problem{line, domain.Violation{Field: field, Rule: rule, Description: desc}})
}

// adopt records a domain validation error (constraint and attribute rules
// live in domain) with the line of n.
func (p *layoutParser) adopt(n *yaml.Node, err error) {
	var e *domain.Error
	if errors.As(err, &e) && len(e.Violations) > 0 {
		for _, v := range e.Violations {
			p.add(n, v.Field, v.Rule, v.Description)
		}
		return
	}
	p.add(n, "layout", "layout.invalid", err.Error())
}

// err returns the problems in document order (the walk visits a node's
// fields before checking its name, and the nodes before the links).
func (p *layoutParser) err() error {
	slices.SortStableFunc(p.found, func(a, b problem) int { return a.line - b.line })
	vs := make(domain.Violations, 0, len(p.found)+1)
	for _, f := range p.found {
		vs = append(vs, f.v)
	}
	if p.dropped > 0 {
		vs.Add("layout", "layout.too_many_problems", fmt.Sprintf("%d more problems not listed; fix these first", p.dropped))
	}
	return vs.Err()
}

var (
	topFields  = []string{"nodes", "links"}
	nodeFields = []string{"name", "constraints"}
	linkFields = []string{"endpoints"}
)

func (p *layoutParser) layout(root *yaml.Node) *Layout {
	if isNull(root) {
		p.add(nil, "layout.nodes", "layout.required", "the layout is empty; it needs at least one node, e.g. nodes: [{name: a}]")
		return nil
	}

	if !p.expect(root, yaml.MappingNode, "layout", "a mapping with the fields nodes and links") {
		return nil
	}
	var nodesN, linksN *yaml.Node
	p.mapping(root, "layout", topFields, "", func(key string, _, v *yaml.Node) {
		if key == "nodes" {
			nodesN = v
		} else {
			linksN = v
		}
	})
	l := &Layout{}
	var names map[string]int
	switch {
	case (nodesN == nil || isNull(nodesN)) && !p.part:
		p.add(root, "layout.nodes", "layout.required", "a layout needs at least one node, e.g. nodes: [{name: a}]")
	case nodesN != nil && !isNull(nodesN):
		l.Nodes, names = p.nodes(nodesN)
	}
	if p.part {
		names = nil // endpoints are checked across the parts
	}
	if linksN != nil && !isNull(linksN) {
		l.Links = p.links(linksN, names)
	}
	if p.part && len(l.Nodes) == 0 && len(l.Links) == 0 && len(p.found) == 0 {
		// A part may hold only links; one with neither says nothing.
		p.add(root, "layout.nodes", "layout.required", "the layout aspect is empty; it needs nodes or links, e.g. nodes: [{name: a}]")
	}
	return l
}

// nodes parses the node list. It returns the line of every name it saw,
// valid or not, for the links to refer to; nil when the list itself is
// malformed, so that links are not all reported dangling for one mistake.
func (p *layoutParser) nodes(n *yaml.Node) ([]Node, map[string]int) {
	if !p.expect(n, yaml.SequenceNode, "layout.nodes", "a list of nodes") {
		return nil, nil
	}
	if len(n.Content) == 0 && !p.part {
		p.add(n, "layout.nodes", "layout.required", "a layout needs at least one node, e.g. nodes: [{name: a}]")
	}
	nodes := make([]Node, 0, len(n.Content))
	names := make(map[string]int, len(n.Content))
	for i, item := range n.Content {
		nodes = append(nodes, p.node(item, "layout.nodes["+strconv.Itoa(i)+"]", names))
	}
	return nodes, names
}

// nodeName is a DNS label (RFC 1123), because node names become host names
// at the sites.
var nodeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

const nodeNameRule = "a node name is 1 to 63 characters: lower-case letters, digits or '-', starting and ending with a letter or digit"

func (p *layoutParser) node(n *yaml.Node, field string, names map[string]int) Node {
	if !p.expect(n, yaml.MappingNode, field, "a node: a mapping with the fields name and constraints") {
		return Node{}
	}
	var nameN, consN *yaml.Node
	p.mapping(n, field, nodeFields, "", func(key string, _, v *yaml.Node) {
		if key == "name" {
			nameN = v
		} else {
			consN = v
		}
	})
	node := Node{Line: n.Line}
	switch {
	case nameN == nil || isNull(nameN):
		p.add(n, field+".name", "layout.required", "a node needs a name; "+nodeNameRule)
	case p.expect(nameN, yaml.ScalarNode, field+".name", "a node name"):
		node.Name = nameN.Value
		if first, dup := names[node.Name]; dup {
			p.add(nameN, field+".name", "layout.node.duplicate", fmt.Sprintf("node %s is already defined at line %d", quote(node.Name), first))
		} else {
			names[node.Name] = nameN.Line
		}
		if !nodeName.MatchString(node.Name) {
			p.add(nameN, field+".name", "layout.node.name", fmt.Sprintf("node name %s is not valid; %s", quote(node.Name), nodeNameRule))
		}
	}
	node.Constraints = p.constraints(consN, field+".constraints")
	return node
}

// constraints parses a node's constraints: a mapping from attribute name to
// one constraint or a list of them.
func (p *layoutParser) constraints(n *yaml.Node, field string) []domain.Constraint {
	if n == nil || isNull(n) {
		return nil
	}
	if !p.expect(n, yaml.MappingNode, field, `a mapping from attribute to constraint, e.g. {cores: ">=4"}`) {
		return nil
	}
	var out []domain.Constraint
	const dupHint = `; to put several constraints on one attribute, give a list, e.g. cores: [">=4", "<=16"]`
	p.mapping(n, field, nil, dupHint, func(attr string, k, v *yaml.Node) {
		f := field + "." + pathKey(attr)
		if err := domain.ValidateAttributeName(f, attr); err != nil {
			p.adopt(k, err)
			return
		}
		cs, ok := p.attrConstraints(attr, v, f)
		if !ok {
			return // already reported; a partial list proves no contradiction
		}
		if msg := contradiction(cs); msg != "" {
			p.add(v, f, "layout.constraint.contradiction", msg)
		}
		out = append(out, cs...)
	})
	return out
}

// attrConstraints parses the constraints on one attribute: a scalar or a
// list of scalars.
func (p *layoutParser) attrConstraints(attr string, n *yaml.Node, field string) ([]domain.Constraint, bool) {
	if n.Kind != yaml.SequenceNode {
		c, ok := p.constraint(attr, n, field)
		return []domain.Constraint{c}, ok
	}
	if len(n.Content) == 0 {
		p.add(n, field, "constraint.value", "an empty list constrains nothing; give a constraint or remove "+attr)
		return nil, false
	}
	cs := make([]domain.Constraint, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		c, good := p.constraint(attr, item, field+"["+strconv.Itoa(i)+"]")
		cs = append(cs, c)
		ok = ok && good
	}
	return cs, ok
}

func (p *layoutParser) constraint(attr string, n *yaml.Node, field string) (domain.Constraint, bool) {
	if !p.expect(n, yaml.ScalarNode, field, `a constraint: a value (x86_64, 4) or a comparison (">=4", "!=arm64")`) {
		return domain.Constraint{}, false
	}
	// YAML reads an unquoted !=arm64 as a tag on an empty value: say so
	// rather than report a missing value.
	if n.Style&yaml.TaggedStyle != 0 && !strings.HasPrefix(n.Tag, "!!") {
		p.add(n, field, "layout.syntax", fmt.Sprintf("YAML reads %s as a tag, not a value; quote the constraint, e.g. %s: %s", quote(n.Tag), attr, quote(strings.TrimSpace(n.Tag+" "+n.Value))))
		return domain.Constraint{}, false
	}
	if isNull(n) {
		p.add(n, field, "constraint.value", "constraint on "+attr+" has no value")
		return domain.Constraint{}, false
	}
	c, err := domain.ParseValueConstraint(field, attr, n.Value)
	if err != nil {
		p.adopt(n, err)
		return domain.Constraint{}, false
	}
	// strconv reads "NaN" and "Inf" as numbers, but no attribute compares
	// sensibly with them: refuse them rather than realize nothing.
	if f, isNum := number(c); isNum && (math.IsNaN(f) || math.IsInf(f, 0)) {
		p.add(n, field, "constraint.number", fmt.Sprintf("%s: the value must be a finite number", c))
		return domain.Constraint{}, false
	}
	return c, true
}

// links parses the link list. names maps node names to lines; nil means the
// nodes were malformed and endpoints are not checked against them.
func (p *layoutParser) links(n *yaml.Node, names map[string]int) []Link {
	if !p.expect(n, yaml.SequenceNode, "layout.links", "a list of links, e.g. [[a, b]]") {
		return nil
	}
	links := make([]Link, 0, len(n.Content))
	seen := make(map[[2]string]int, len(n.Content))
	for i, item := range n.Content {
		field := "layout.links[" + strconv.Itoa(i) + "]"
		ends, endsField := item, field
		if item.Kind == yaml.MappingNode {
			ends, endsField = nil, field+".endpoints"
			p.mapping(item, field, linkFields, "", func(_ string, _, v *yaml.Node) { ends = v })
			if ends == nil || isNull(ends) {
				p.add(item, endsField, "layout.required", "a link needs its endpoints, e.g. {endpoints: [a, b]}")
				continue
			}
		}
		if !p.expect(ends, yaml.SequenceNode, endsField, "a link: a pair of node names, e.g. [a, b] or {endpoints: [a, b]}") {
			continue
		}
		if len(ends.Content) != 2 {
			p.add(ends, endsField, "layout.link.format", fmt.Sprintf("a link joins exactly two nodes, e.g. [a, b]; this one lists %d", len(ends.Content)))
			continue
		}
		var ab [2]string
		ok := true
		for j, e := range ends.Content {
			ef := endsField + "[" + strconv.Itoa(j) + "]"
			if !p.expect(e, yaml.ScalarNode, ef, "a node name") {
				ok = false
				continue
			}
			if _, known := names[e.Value]; names != nil && !known {
				p.add(e, ef, "layout.link.missing_node", fmt.Sprintf("no node is named %s", quote(e.Value)))
				ok = false
			}
			ab[j] = e.Value
		}
		if !ok {
			continue
		}
		if ab[0] == ab[1] {
			p.add(ends, field, "layout.link.self", fmt.Sprintf("a link joins two different nodes; this one joins %s to itself", quote(ab[0])))
			continue
		}
		key := ab
		if key[0] > key[1] {
			key[0], key[1] = key[1], key[0] // links have no direction
		}
		if first, dup := seen[key]; dup {
			p.add(ends, field, "layout.link.duplicate", fmt.Sprintf("%s and %s are already linked at line %d (links have no direction)", quote(ab[0]), quote(ab[1]), first))
			continue
		}
		seen[key] = item.Line
		links = append(links, Link{A: ab[0], B: ab[1], Line: item.Line})
	}
	return links
}

// mapping visits the pairs of mapping n in order. It refuses keys that are
// not plain names, repeated keys (YAML forbids them, but the node tree keeps
// them silently) and, when known is not nil, keys outside known.
func (p *layoutParser) mapping(n *yaml.Node, field string, known []string, dupHint string, visit func(key string, k, v *yaml.Node)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.add(k, field, "layout.type", "keys are names; found "+describe(k))
			continue
		}
		f := field + "." + pathKey(k.Value)
		if known != nil && !slices.Contains(known, k.Value) {
			p.add(k, f, "layout.unknown_field", fmt.Sprintf("unknown field %s; the fields here are %s", quote(k.Value), strings.Join(known, ", ")))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.add(k, f, "layout.duplicate_key", fmt.Sprintf("%s is already given at line %d%s", quote(k.Value), first, dupHint))
			continue
		}
		seen[k.Value] = k.Line
		visit(k.Value, k, v)
	}
}

// expect reports whether n is of kind, recording a violation if not.
func (p *layoutParser) expect(n *yaml.Node, kind yaml.Kind, field, want string) bool {
	switch {
	case n.Kind == kind:
		return true
	case n.Kind == yaml.AliasNode:
		// Aliases would let a small document expand into a huge one; the
		// format has no use for them.
		p.add(n, field, "layout.syntax", "aliases (*"+n.Value+") are not supported; write the value out")
	default:
		p.add(n, field, "layout.type", "expected "+want+"; found "+describe(n))
	}
	return false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an alias"
	case isNull(n):
		return "nothing"
	}
	return quote(n.Value)
}

// pathKey clips a key for use in a field path, so that a huge key does not
// make a huge error.
func pathKey(k string) string {
	if c, cut := clip(k); cut {
		return c + "…"
	}
	return k
}
