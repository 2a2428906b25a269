package service

import "slices"

// idWindow bounds how many ids one store query names. A listing restricted
// to the objects a caller may read names them all, and an administrator
// may read every experiment of the testbed: a query naming 10,000 ids costs
// more to parse than to run (docs/benchmarks.md), while a page needs only
// the first few that match.
var idWindow = 500

// inWindows answers fetch(after, n) for a listing restricted to ids, in id
// order, by asking list for windows of idWindow ids after the cursor, one
// after the other, until n rows are found or the ids run out. list returns
// at most n rows among ids, in id order, after the cursor, with whatever
// other filters it applies; windows follow each other in id order, so
// their rows do too, and a short answer means what it means for fetch:
// no more rows.
func inWindows[T any](ids []string, after string, n int, list func(ids []string, n int) ([]T, error)) ([]T, error) {
	if len(ids) <= idWindow {
		return list(ids, n)
	}
	if !slices.IsSorted(ids) {
		ids = slices.Sorted(slices.Values(ids))
	}
	i, found := slices.BinarySearch(ids, after)
	if found {
		i++
	}
	var out []T
	for ; i < len(ids) && len(out) < n; i += idWindow {
		rows, err := list(ids[i:min(i+idWindow, len(ids))], n-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}
