package aspect

import (
	"strconv"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// contradiction returns why no attribute value can satisfy every constraint
// of cs (all on one attribute), or "" when one can. It follows the semantics
// of domain.Constraint.Match: values compare as numbers when both sides are
// numbers, as text otherwise, and an order (>=, <, ...) holds only for a
// number. It runs in one pass, as a list may be long.
//
// What it finds: an empty numeric range (>=8 with <=4, >4 with <4), an
// equality outside the range or on a value that is not a number alongside an
// order, two different equalities, an equality with the same inequality,
// and a range shrunk to one point that an inequality removes (>=4, <=4, !=4).
func contradiction(cs []domain.Constraint) string {
	var lo, hi, eq *domain.Constraint
	var ne []*domain.Constraint
	for i := range cs {
		c := &cs[i]
		switch c.Op {
		case domain.OpEq:
			if eq != nil && !sameValue(*eq, *c) {
				return both(*eq, *c)
			}
			eq = c
		case domain.OpNe:
			ne = append(ne, c)
		case domain.OpGe, domain.OpGt:
			if lo == nil || tighter(*c, *lo, 1) {
				lo = c
			}
		case domain.OpLe, domain.OpLt:
			if hi == nil || tighter(*c, *hi, -1) {
				hi = c
			}
		}
	}
	if lo != nil && hi != nil {
		l, _ := number(*lo)
		h, _ := number(*hi)
		if l > h || l == h && (lo.Op == domain.OpGt || hi.Op == domain.OpLt) {
			return both(*lo, *hi)
		}
	}
	if eq != nil {
		for _, b := range []*domain.Constraint{lo, hi} {
			if b == nil {
				continue
			}
			v, isNum := number(*eq)
			if !isNum || !holds(*b, v) {
				return both(*eq, *b)
			}
		}
		for _, n := range ne {
			if sameValue(*eq, *n) {
				return both(*eq, *n)
			}
		}
		return ""
	}
	// Without an equality, only a one-point range can be emptied by !=.
	if lo != nil && hi != nil {
		l, _ := number(*lo)
		h, _ := number(*hi)
		if l == h {
			for _, n := range ne {
				if v, isNum := number(*n); isNum && v == l {
					return lo.String() + ", " + hi.String() + " and " + n.String() + " cannot all hold"
				}
			}
		}
	}
	return ""
}

func both(a, b domain.Constraint) string {
	return a.String() + " and " + b.String() + " cannot both hold"
}

// number is the constraint's value as a number, when it is one. Order
// constraints always have one: domain refuses them otherwise.
func number(c domain.Constraint) (float64, bool) {
	f, err := strconv.ParseFloat(c.Value, 64)
	return f, err == nil
}

// sameValue reports whether an attribute equal to a's value is equal to b's:
// numerically when both are numbers ("4" and "4.0"), as text otherwise.
func sameValue(a, b domain.Constraint) bool {
	x, xNum := number(a)
	y, yNum := number(b)
	if xNum && yNum {
		return x == y
	}
	return a.Value == b.Value
}

// tighter reports whether bound c narrows the range more than bound d, both
// lower bounds (dir 1) or both upper bounds (dir -1). At equal values a
// strict bound is the tighter.
func tighter(c, d domain.Constraint, dir float64) bool {
	x, _ := number(c)
	y, _ := number(d)
	if x != y {
		return dir*x > dir*y
	}
	return c.Op == domain.OpGt || c.Op == domain.OpLt
}

// holds reports whether order constraint c holds for the number v.
func holds(c domain.Constraint, v float64) bool {
	w, _ := number(c)
	switch c.Op {
	case domain.OpGe:
		return v >= w
	case domain.OpGt:
		return v > w
	case domain.OpLe:
		return v <= w
	case domain.OpLt:
		return v < w
	}
	return true
}
