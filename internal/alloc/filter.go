package alloc

import (
	"fmt"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Filter returns the resources of pool that satisfy every constraint, in
// pool order. A listing scans once, so it tests each resource directly.
func Filter(pool []domain.Resource, cs []domain.Constraint) []domain.Resource {
	var out []domain.Resource
	for _, r := range pool {
		if domain.MatchAll(cs, r.Attributes) {
			out = append(out, r)
		}
	}
	return out
}

// ParseFilters reads filter expressions such as "cores>=8 arch=x86_64": each
// holds one or more constraints separated by spaces, and spaces around the
// comparison are allowed ("cores >= 8"). An empty expression filters
// nothing. Every bad constraint is reported, under field[i].
func ParseFilters(field string, exprs []string) ([]domain.Constraint, error) {
	var (
		cs []domain.Constraint
		vs domain.Violations
	)
	for i, expr := range exprs {
		f := fmt.Sprintf("%s[%d]", field, i)
		for _, term := range terms(expr) {
			c, err := domain.ParseConstraint(f, term)
			if err != nil {
				if err := vs.Check(err); err != nil {
					return nil, err
				}
				continue
			}
			cs = append(cs, c)
		}
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	return cs, nil
}

// terms splits an expression at spaces, except next to a comparison, so
// that "cores >= 8 arch=x86_64" is two terms.
func terms(expr string) []string {
	var ts []string
	for _, f := range strings.Fields(expr) {
		if n := len(ts); n > 0 && (isOpByte(ts[n-1][len(ts[n-1])-1]) || isOpByte(f[0])) {
			ts[n-1] += f
			continue
		}
		ts = append(ts, f)
	}
	return ts
}

func isOpByte(b byte) bool { return b == '=' || b == '!' || b == '<' || b == '>' }
