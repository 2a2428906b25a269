package service

import (
	"encoding/base64"
	"strconv"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Page sizes of every listing: the contract documents both.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page is one page of a listing, as the caller asked for it: at most
// limit rows after the cursor from (the zero cursor: from the start), in
// the listing's order. Listings ordered by a name page with a string
// cursor; those ordered newest first page with an id cursor (rows with a
// smaller id).
type page[C any] struct {
	limit  int
	from   C
	encode func(C) string // the next page's token, from the cursor of its last row
}

// stringPage reads the page of a listing ordered by a name.
func stringPage(size int32, token string) (page[string], error) {
	limit, err := pageLimit(size)
	if err != nil {
		return page[string]{}, err
	}
	from, err := decodeStringToken(token)
	if err != nil {
		return page[string]{}, err
	}
	return page[string]{limit: limit, from: from, encode: encodeStringToken}, nil
}

// idPage reads the page of a listing ordered newest first by id.
func idPage(size int32, token string) (page[int64], error) {
	limit, err := pageLimit(size)
	if err != nil {
		return page[int64]{}, err
	}
	from, err := decodeIDToken(token)
	if err != nil {
		return page[int64]{}, err
	}
	return page[int64]{limit: limit, from: from, encode: encodeIDToken}, nil
}

// readPage reads one page through fetch, which returns at most n rows after
// the cursor from, and returns the page with the next page's token (empty
// on the last page). Every listing reads its pages here.
//
// It reads one row more than the page holds to learn whether another page
// follows. The store returns at most store.MaxLimit rows a call, which is
// also the largest page, so that row (or the rest of a page that keep
// thinned out) is read by another call, after the last row read; a store
// answering with fewer rows than asked has no more.
//
// keep, when not nil, drops rows the listing does not show (filters the
// store cannot apply); cursor gives a row's position in the listing.
func readPage[T, C any](pg page[C], fetch func(from C, n int) ([]T, error), cursor func(T) C, keep func(T) bool) ([]T, string, error) {
	want := pg.limit + 1
	from := pg.from
	var out []T
	// With keep, rows are read in batches that start at twice the page
	// and double up to the store's largest: a filter that keeps most rows
	// reads little more than a page, a sparse one few calls more.
	batch := 2 * want
	for len(out) < want {
		n := min(want-len(out), store.MaxLimit)
		if keep != nil {
			n = min(batch, store.MaxLimit)
			batch *= 2
		}
		rows, err := fetch(from, n)
		if err != nil {
			return nil, "", err
		}
		for _, r := range rows {
			if keep == nil || keep(r) {
				out = append(out, r)
			}
		}
		if len(rows) < n {
			break
		}
		from = cursor(rows[len(rows)-1])
	}
	if len(out) <= pg.limit {
		return out, "", nil
	}
	out = out[:pg.limit]
	return out, pg.encode(cursor(out[pg.limit-1])), nil
}

func pageLimit(size int32) (int, error) {
	switch {
	case size < 0:
		return 0, domain.Invalid("page_size", "page_size.range", "page_size must be between 0 and 1000")
	case size == 0:
		return defaultPageSize, nil
	case size > maxPageSize:
		return maxPageSize, nil
	}
	return int(size), nil
}

func encodeStringToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeStringToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", domain.Invalid("page_token", "page_token.malformed", "page_token is not one this server handed out")
	}
	return string(b), nil
}

func decodeIDToken(tok string) (int64, error) {
	if tok == "" {
		return 0, nil
	}
	s, err := decodeStringToken(tok)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, domain.Invalid("page_token", "page_token.malformed", "page_token is not one this server handed out")
	}
	return id, nil
}

func encodeIDToken(id int64) string { return encodeStringToken(strconv.FormatInt(id, 10)) }
