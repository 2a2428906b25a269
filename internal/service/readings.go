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
	m map[[32]byte]reading
}{m: map[[32]byte]reading{}}

// maxReadings bounds the memory: past it, the memory starts over.
const maxReadings = 512

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
	readings.Lock()
	if len(readings.m) >= maxReadings {
		clear(readings.m)
	}
	readings.m[key] = r
	readings.Unlock()
	return r
}
