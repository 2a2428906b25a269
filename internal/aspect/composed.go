package aspect

// ComposedLayout is the whole topology of layout parts as one Layout: the
// parts checked against each other as Compose does, then every part's
// nodes and links in the parts' order (what a site materializes).
func ComposedLayout(parts []Part) (*Layout, error) {
	if _, err := (LayoutType{}).Compose(parts); err != nil {
		return nil, err
	}
	var out Layout
	for _, p := range parts {
		l, err := parseLayout(p.Content, true)
		if err != nil {
			return nil, err
		}
		out.Nodes = append(out.Nodes, l.Nodes...)
		out.Links = append(out.Links, l.Links...)
	}
	return &out, nil
}
