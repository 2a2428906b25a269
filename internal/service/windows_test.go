package service

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestInWindows lists through windows of a few ids and expects what one
// query naming them all answers, for every cursor and page size, with and
// without a filter the store applies.
func TestInWindows(t *testing.T) {
	defer func(w int) { idWindow = w }(idWindow)
	idWindow = 3
	var all []string
	for i := range 20 {
		all = append(all, fmt.Sprintf("x%02d", i))
	}
	visible := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return strings.HasSuffix(id, "4") })
	shuffled := slices.Clone(visible)
	slices.Reverse(shuffled)
	for _, filter := range []func(string) bool{nil, func(id string) bool { return id < "x05" || id > "x15" }} {
		// list answers as the store does: rows among ids, after the
		// cursor, passing the filter, in id order, at most n.
		var calls int
		list := func(after string) func(ids []string, n int) ([]string, error) {
			return func(ids []string, n int) ([]string, error) {
				calls++
				var out []string
				for _, id := range all {
					if id > after && slices.Contains(ids, id) && (filter == nil || filter(id)) && len(out) < n {
						out = append(out, id)
					}
				}
				return out, nil
			}
		}
		for _, ids := range [][]string{visible, shuffled} {
			for _, after := range append([]string{""}, all...) {
				for n := 1; n <= 21; n++ {
					idWindow = 1 << 30
					want, _ := inWindows(ids, after, n, list(after))
					idWindow = 3
					calls = 0
					got, err := inWindows(ids, after, n, list(after))
					if err != nil || !slices.Equal(got, want) {
						t.Fatalf("after %q, n %d: %v (%v), want %v", after, n, got, err, want)
					}
					if calls > (len(ids)+2)/3 {
						t.Fatalf("%d calls for %d ids", calls, len(ids))
					}
				}
			}
		}
	}
}
