package aspect

// LayoutOf joins an experiment's layout aspects into the one topology they
// describe, nodes and links in the parts' order, for readers that need
// the links too (a drawing of the topology); Compose checks the parts
// against each other when they are written and returns only the elements.
// A part that does not parse is left out, so a reader shows what it can.
func LayoutOf(parts []Part) *Layout {
	whole := &Layout{}
	for _, part := range parts {
		l, err := parseLayout(part.Content, true)
		if err != nil {
			continue
		}
		whole.Nodes = append(whole.Nodes, l.Nodes...)
		whole.Links = append(whole.Links, l.Links...)
	}
	return whole
}
