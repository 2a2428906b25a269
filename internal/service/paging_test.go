package service

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/store"
)

// fakeListing answers as a store does: rows after from, at most
// store.MaxLimit of them whatever n is.
func fakeListing(rows []string, calls *int) func(from string, n int) ([]string, error) {
	return func(from string, n int) ([]string, error) {
		*calls++
		i, found := slices.BinarySearch(rows, from)
		if found {
			i++
		}
		n = min(n, store.MaxLimit)
		return rows[i:min(i+n, len(rows))], nil
	}
}

// TestReadPage pages through listings around the store's limit, with and
// without a filter the store cannot apply, and expects every row once and
// pages of the size asked.
func TestReadPage(t *testing.T) {
	odd := func(s string) bool {
		return strings.HasSuffix(s, "1") || strings.HasSuffix(s, "3") || strings.HasSuffix(s, "5") || strings.HasSuffix(s, "7") || strings.HasSuffix(s, "9")
	}
	for _, tc := range []struct {
		rows, size int
		keep       func(string) bool
		pages      []int
	}{
		{rows: 0, size: 1000, pages: []int{0}},
		{rows: 999, size: 1000, pages: []int{999}},
		{rows: 1000, size: 1000, pages: []int{1000}},
		{rows: 1001, size: 1000, pages: []int{1000, 1}},
		{rows: 2500, size: 1000, pages: []int{1000, 1000, 500}},
		{rows: 10, size: 3, pages: []int{3, 3, 3, 1}},
		{rows: 4001, size: 1000, keep: odd, pages: []int{1000, 1000}},
		{rows: 4002, size: 1000, keep: odd, pages: []int{1000, 1000, 1}},
		{rows: 5, size: 1000, keep: func(string) bool { return false }, pages: []int{0}},
	} {
		t.Run(fmt.Sprintf("%d rows, page %d, filtered %v", tc.rows, tc.size, tc.keep != nil), func(t *testing.T) {
			rows := make([]string, tc.rows)
			for i := range rows {
				rows[i] = fmt.Sprintf("r%05d", i)
			}
			var want []string
			for _, r := range rows {
				if tc.keep == nil || tc.keep(r) {
					want = append(want, r)
				}
			}
			var calls int
			fetch := fakeListing(rows, &calls)
			var got []string
			var sizes []int
			token := ""
			for len(sizes) <= len(tc.pages) {
				pg, err := stringPage(int32(tc.size), token)
				if err != nil {
					t.Fatal(err)
				}
				page, next, err := readPage(pg, fetch, func(s string) string { return s }, tc.keep)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				sizes = append(sizes, len(page))
				if token = next; token == "" {
					break
				}
			}
			if !slices.Equal(sizes, tc.pages) {
				t.Errorf("page sizes %v, want %v", sizes, tc.pages)
			}
			if !slices.Equal(got, want) {
				t.Errorf("listed %d rows, want %d (every row once, in order)", len(got), len(want))
			}
		})
	}
}
