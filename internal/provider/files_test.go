package provider

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHomeRelative: paths are taken relative to the home; what names a
// place out of it is refused before any worker is asked.
func TestHomeRelative(t *testing.T) {
	const home = "/home/tb_alice"
	for _, tc := range []struct {
		in, want string
		status   int
	}{
		{"notes.txt", "notes.txt", 0},
		{"./data/../notes.txt", "notes.txt", 0},
		{"/home/tb_alice/data/x.csv", "data/x.csv", 0},
		{"/home/tb_alice/../tb_bob/x", "", http.StatusForbidden},
		{"/home/tb_alicex/x", "", http.StatusForbidden},
		{"/etc/passwd", "", http.StatusForbidden},
		{"../tb_bob/notes.txt", "", http.StatusForbidden},
		{"data/../../x", "", http.StatusForbidden},
		{"..", "", http.StatusForbidden},
		{".", "", http.StatusBadRequest},
		{"/home/tb_alice", "", http.StatusBadRequest},
		{"", "", http.StatusBadRequest},
		{"a\x00b", "", http.StatusBadRequest},
		{strings.Repeat("a", 4097), "", http.StatusBadRequest},
	} {
		got, err := homeRelative(home, tc.in)
		var he *httpError
		switch {
		case tc.status == 0 && (err != nil || got != tc.want):
			t.Errorf("%.40q: %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.status != 0 && (!errors.As(err, &he) || he.status != tc.status):
			t.Errorf("%.40q: %q, %v; want a refusal with status %d", tc.in, got, err, tc.status)
		}
	}
}

// TestFrames: an upload is complete only with its end frame; a stream
// that ends before it reads as broken off, not as a shorter file.
func TestFrames(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 20_000) // several frames
	var buf bytes.Buffer
	fw := frameWriter{w: &buf}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	body := bytes.Clone(buf.Bytes())
	if err := fw.finish(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(&frameReader{r: bufio.NewReader(bytes.NewReader(buf.Bytes()))})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("complete stream: %d bytes, %v", len(got), err)
	}
	for _, cut := range []int{0, 3, 100, len(body) / 2, len(body)} {
		_, err := io.ReadAll(&frameReader{r: bufio.NewReader(bytes.NewReader(body[:cut]))})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("stream cut at %d of %d: %v, want unexpected EOF", cut, len(body), err)
		}
	}
}
