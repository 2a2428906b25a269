//go:build linux

package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// The journal is one small JSON file per realization in the state
// directory, written (atomically: temporary file, fsync, rename, fsync of
// the directory) before the kernel is touched, so that after a crash
// Recover knows what was being done: finish making Plan (phase applying;
// back to Prev if that fails and there is one), finish removing (phase
// removing), or check that what is ready still is (phase ready).

type phase string

const (
	phaseApplying phase = "applying"
	phaseReady    phase = "ready"
	phaseRemoving phase = "removing"
)

type record struct {
	Realization string            `json:"realization"`
	Phase       phase             `json:"phase"`
	Plan        materialize.Plan  `json:"plan"`           // the target, addresses assigned
	Prev        *materialize.Plan `json:"prev,omitempty"` // during a change: the plan it started from
}

type journal struct{ dir string }

func (j journal) path(tag string) string { return filepath.Join(j.dir, tag+".json") }

// read returns the record of tag; (nil, nil) when there is none.
func (j journal) read(tag string) (*record, error) {
	b, err := os.ReadFile(j.path(tag))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("journal %s is corrupt: %w", j.path(tag), err)
	}
	return &r, nil
}

func (j journal) write(tag string, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	f, err := os.CreateTemp(j.dir, tag+".*.tmp")
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, j.path(tag))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write journal: %w", err)
	}
	return j.syncDir()
}

func (j journal) remove(tag string) error {
	if err := os.Remove(j.path(tag)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return j.syncDir()
}

// syncDir makes a rename or removal durable.
func (j journal) syncDir() error {
	d, err := os.Open(j.dir)
	if err != nil {
		return fmt.Errorf("sync journal directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync journal directory: %w", err)
	}
	return nil
}

// all returns every record by tag, and removes temporary files a crash
// left behind.
func (j journal) all() (map[string]*record, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("read journal directory: %w", err)
	}
	out := map[string]*record{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(filepath.Join(j.dir, name))
		case strings.HasSuffix(name, ".json"):
			tag := strings.TrimSuffix(name, ".json")
			r, err := j.read(tag)
			if err != nil {
				return nil, err
			}
			out[tag] = r
		}
	}
	return out, nil
}
