package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Mapping is a user's connection at this site.
type Mapping struct {
	Account string `json:"account"`
	// UserKey is the user's Ed25519 public key (32 bytes), which checks
	// the user's signature on every request.
	UserKey   []byte    `json:"user_key"`
	CreatedAt time.Time `json:"created_at"`
}

// state is what the site keeps: mappings and the connection tickets it
// has seen (until they expire), in one JSON file replaced atomically on
// every change. A site has tens to thousands of users; a file is enough.
type state struct {
	mu   sync.Mutex
	path string
	data stateData
}

type stateData struct {
	Mappings map[string]*Mapping  `json:"mappings"`
	Tickets  map[string]time.Time `json:"tickets"` // jti -> expiry
	// Deliveries are the centre's deliveries done here: id -> when.
	Deliveries map[string]time.Time `json:"deliveries,omitempty"`
	// Jobs are materialization deliveries accepted and not yet reported,
	// by realization (materializer.go).
	Jobs map[string]*matJob `json:"materializations,omitempty"`
}

func openState(path string) (*state, error) {
	s := &state{path: path, data: stateData{Mappings: map[string]*Mapping{}, Tickets: map[string]time.Time{}, Deliveries: map[string]time.Time{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.data.Mappings == nil {
		s.data.Mappings = map[string]*Mapping{}
	}
	if s.data.Tickets == nil {
		s.data.Tickets = map[string]time.Time{}
	}
	if s.data.Deliveries == nil {
		s.data.Deliveries = map[string]time.Time{}
	}
	return s, nil
}

// saveLocked writes the file; mu is held.
func (s *state) saveLocked() error {
	b, err := json.MarshalIndent(&s.data, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, b, 0o600)
}

// useTicket records a connection ticket's jti, once: false when it was
// seen before. Expired entries are forgotten on the way.
func (s *state) useTicket(jti string, exp, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.data.Tickets[jti]; seen {
		return false, nil
	}
	for k, e := range s.data.Tickets {
		if now.After(e.Add(time.Minute)) {
			delete(s.data.Tickets, k)
		}
	}
	s.data.Tickets[jti] = exp
	return true, s.saveLocked()
}

func (s *state) mapping(uid string) (*Mapping, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.data.Mappings[uid]
	if !ok {
		return nil, false
	}
	c := *m
	return &c, true
}

func (s *state) putMapping(uid string, m *Mapping) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.Mappings[uid] = m
	return s.saveLocked()
}

func (s *state) deleteMapping(uid string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data.Mappings[uid]; !ok {
		return false, nil
	}
	delete(s.data.Mappings, uid)
	return true, s.saveLocked()
}
