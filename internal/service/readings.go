package service

import (
	"crypto/sha256"
	"sync"

	"github.com/trellis-testbed/trellis/internal/aspect"
)

// An aspect's summary and derived views are pure functions of its type and
// content, and costly for a large one (a 200-node layout is parsed, and
// each node's view encoded, in about 10 ms), while an experiment is read
// far more often than it changes. So every replica remembers them by a
// hash of the content, for a bounded number of contents.

// reading is what the plug-in made of one content.
type reading struct {
	summary string
	// derived is shared between readers: never changed after it is made.
	derived []aspect.Derived
}

var readings = struct {
	sync.Mutex
	m     map[[32]byte]reading
	bytes int
}{m: map[[32]byte]reading{}}

// maxReadings and maxReadingBytes bound the memory (a 1 MiB layout's views
// weigh megabytes): past either, it starts over.
const (
	maxReadings     = 512
	maxReadingBytes = 32 << 20
)

// read returns the summary and derived views of content of type t.
func read(t aspect.Type, content []byte) reading {
	h := sha256.New()
	h.Write([]byte(t.Name()))
	h.Write([]byte{0})
	h.Write(content)
	var key [32]byte
	h.Sum(key[:0])
	readings.Lock()
	r, ok := readings.m[key]
	readings.Unlock()
	if ok {
		return r
	}
	r.summary = t.Summarize(content)
	if d, ok := t.(aspect.Deriving); ok {
		r.derived = d.Derive(content)
	}
	size := len(r.summary)
	for _, d := range r.derived {
		size += len(d.Name) + len(d.Content) + len(d.Summary)
	}
	readings.Lock()
	if len(readings.m) >= maxReadings || readings.bytes+size > maxReadingBytes {
		clear(readings.m)
		readings.bytes = 0
	}
	readings.m[key] = r
	readings.bytes += size
	readings.Unlock()
	return r
}
