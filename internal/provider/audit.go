package provider

import (
	"encoding/json"
	"os"
	"sync"
	"time"
)

// auditLog appends one JSON line per decision to DATA_DIR/audit.log: what
// was asked, by which Trellis user, as which local account, and how it
// ended. Secrets (tokens, signatures) never go in.
type auditLog struct {
	mu sync.Mutex
	f  *os.File
}

type auditEntry struct {
	Time         time.Time `json:"time"`
	Op           string    `json:"op"`
	UID          string    `json:"uid,omitempty"`
	LocalAccount string    `json:"local_account,omitempty"`
	Outcome      string    `json:"outcome"` // "ok" or "refused" or "failed"
	Reason       string    `json:"reason,omitempty"`
	Detail       string    `json:"detail,omitempty"`
	Remote       string    `json:"remote,omitempty"`
}

func openAudit(path string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &auditLog{f: f}, nil
}

func (a *auditLog) write(e auditEntry) {
	e.Time = time.Now().UTC()
	b, _ := json.Marshal(e)
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = a.f.Write(append(b, '\n'))
}

func (a *auditLog) Close() error { return a.f.Close() }
