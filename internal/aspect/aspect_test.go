package aspect

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestDefaultRegistry(t *testing.T) {
	r := Default()
	if got, want := r.Names(), []string{"data", "layout", "procedure"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	for _, name := range r.Names() {
		typ, ok := r.Lookup(name)
		if !ok || typ.Name() != name {
			t.Errorf("Lookup(%q) = %v, %v", name, typ, ok)
		}
	}
	layout, _ := r.Lookup(TypeLayout)
	if _, ok := layout.(Realizable); !ok {
		t.Error("layout is not Realizable")
	}
	for _, name := range []string{TypeProcedure, TypeData} {
		if typ, _ := r.Lookup(name); typ != nil {
			if _, ok := typ.(Realizable); ok {
				t.Errorf("%s is Realizable", name)
			}
		}
	}
	if _, ok := r.Lookup("Layout"); ok {
		t.Error(`Lookup("Layout") found a type; names are exact`)
	}
	// Names is a copy: changing it does not change the registry.
	r.Names()[0] = "x"
	if r.Names()[0] != "data" {
		t.Error("Names() exposes the registry's slice")
	}
}

func TestRegistryValidate(t *testing.T) {
	r := Default()
	tests := []struct {
		name    string
		typ     string
		content []byte
		field   string // "" for valid
		rule    string
		want    string // in the description
	}{
		{"layout", "layout", []byte("nodes: [{name: a}]"), "", "", ""},
		{"procedure", "procedure", []byte("#!/bin/sh\necho héllo\n"), "", "", ""},
		{"empty procedure", "procedure", nil, "", "", ""},
		{"binary data", "data", []byte{0, 0xff, 0xfe, '\n'}, "", "", ""},
		{"data at the limit", "data", make([]byte, MaxDataSize), "", "", ""},
		{"procedure at the limit", "procedure", bytes.Repeat([]byte("x"), MaxProcedureSize), "", "", ""},
		{"unknown type", "topology", nil, "type", "aspect.type", `unknown aspect type "topology"; known types: data, layout, procedure`},
		{"no type", "", nil, "type", "aspect.type", "known types: data, layout, procedure"},
		{"invalid layout", "layout", []byte("nodes: [{name: A}]"), "layout.nodes[0].name", "layout.node.name", "line 1: "},
		{"layout too large", "layout", make([]byte, MaxLayoutSize+1), "layout", "aspect.size", "at most 1 MiB (1048576 bytes); this one is 1048577 bytes"},
		{"procedure too large", "procedure", make([]byte, MaxProcedureSize+1), "procedure", "aspect.size", "256 KiB"},
		{"data too large", "data", make([]byte, MaxDataSize+1), "data", "aspect.size", "1 MiB"},
		{"procedure not utf-8", "procedure", []byte("echo a\necho \xff\n"), "procedure", "procedure.utf8", "line 2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Validate(tt.typ, tt.content)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			vs := violations(t, err)
			if len(vs) != 1 || vs[0].Field != tt.field || vs[0].Rule != tt.rule || !strings.Contains(vs[0].Description, tt.want) {
				t.Errorf("violations = %+v, want one on %s (%s) saying %q", vs, tt.field, tt.rule, tt.want)
			}
			// A type checks its own limit too, for callers without a registry.
			if typ, ok := r.Lookup(tt.typ); ok {
				if err := typ.Validate(tt.content); err == nil {
					t.Errorf("%s.Validate accepted it", tt.typ)
				}
			}
		})
	}
}

// notes is a plug-in type that counts its calls, to show that a registry
// enforces a plug-in's size limit before the plug-in parses anything.
type notes struct{ calls *int }

func (notes) Name() string { return "notes" }
func (notes) MaxSize() int { return 8 }
func (n notes) Validate([]byte) error {
	*n.calls++
	return nil
}
func (notes) Summarize(content []byte) string { return "notes" }

func TestRegistryPlugIn(t *testing.T) {
	calls := 0
	r := NewRegistry(LayoutType{}, notes{&calls})
	if got := r.Names(); !slices.Equal(got, []string{"layout", "notes"}) {
		t.Fatalf("Names() = %q", got)
	}
	if err := r.Validate("notes", []byte("12345678")); err != nil || calls != 1 {
		t.Fatalf("Validate = %v after %d calls, want nil after 1", err, calls)
	}
	vs := violations(t, r.Validate("notes", []byte("123456789")))
	if vs[0].Field != "notes" || vs[0].Rule != "aspect.size" || calls != 1 {
		t.Errorf("violations = %+v after %d calls; want aspect.size and no call", vs, calls)
	}
	if err := r.Validate("procedure", nil); err == nil {
		t.Error("a type outside this registry was accepted")
	}
}

func TestNewRegistryRefusesMistakes(t *testing.T) {
	for name, types := range map[string][]Type{
		"duplicate": {LayoutType{}, LayoutType{}},
		"nil":       {nil},
		"no limit":  {zeroLimit{}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewRegistry did not panic")
				}
			}()
			NewRegistry(types...)
		})
	}
}

type zeroLimit struct{ DataType }

func (zeroLimit) Name() string { return "zero" }
func (zeroLimit) MaxSize() int { return 0 }

func TestSummaries(t *testing.T) {
	tests := []struct {
		typ     Type
		content string
		want    string
	}{
		{LayoutType{}, "nodes: [{name: a}, {name: b}, {name: c}]\nlinks: [[a, b], [b, c]]\n", "3 nodes, 2 links"},
		{ProcedureType{}, "echo hi\n", "8 bytes"},
		{ProcedureType{}, "", "0 bytes"},
		{DataType{}, "x", "1 byte"},
		{DataType{}, "\x00\x01\x02", "3 bytes"},
	}
	for _, tt := range tests {
		if got := tt.typ.Summarize([]byte(tt.content)); got != tt.want {
			t.Errorf("%s.Summarize(%q) = %q, want %q", tt.typ.Name(), tt.content, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := quote("a\nb"); got != `"a\nb"` {
		t.Errorf("quote escapes: got %s", got)
	}
	if got := quote(strings.Repeat("x", 100)); got != `"`+strings.Repeat("x", 64)+`…"` {
		t.Errorf("quote cuts: got %s", got)
	}
	if got := quote(strings.Repeat("é", 40)); got != `"`+strings.Repeat("é", 32)+`…"` {
		t.Errorf("quote cuts between characters: got %s", got)
	}
}
