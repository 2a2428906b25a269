package provider

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// File transfers: a user-signed POST /transfers (straight or forwarded by
// the centre) asks for a one-time token bound to the user, the local
// account, the direction and a path under the account's home; then the
// client sends or fetches the file itself with PUT or GET /files/TOKEN,
// straight to the site. The worker, running as the account, checks the
// path (inside the home, symlinks included) and does the file I/O: the
// server never opens a user's file.

// TransferRequest is the body of POST /transfers.
type TransferRequest struct {
	Direction string `json:"direction"` // "upload" or "download"
	// Path is relative to the account's home, or absolute inside it.
	Path string `json:"path"`
}

// TokenResponse answers POST /transfers and POST /terminals.
type TokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// URLPath is where to use the token at the site: /files/TOKEN or
	// /terminal/TOKEN.
	URLPath string `json:"url_path"`
	// Path is the file's path relative to the home; MaxBytes bounds it.
	Path     string `json:"path,omitempty"`
	MaxBytes int64  `json:"max_bytes,omitempty"`
}

// TransferResult answers an upload.
type TransferResult struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

const (
	dirUpload   = "upload"
	dirDownload = "download"
	kindTerm    = "terminal"
)

func (s *Server) transferRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /whoami", s.whoami)
	mux.HandleFunc("POST /transfers", s.newTransfer)
	mux.HandleFunc("PUT /files/{token}", s.upload)
	mux.HandleFunc("GET /files/{token}", s.download)
	mux.HandleFunc("POST /terminals", s.newTerminal)
	mux.HandleFunc("GET /terminal/{token}", s.terminal)
}

// streamed says r's body is bounded by its handler, not by maxBody.
func streamed(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/files/")
}

// homeRelative turns a path the user named into one relative to home,
// refusing what lies outside it by name. Symlinks are the worker's to
// refuse: only it sees the home as the account does.
func homeRelative(home, p string) (string, error) {
	if p == "" || len(p) > 4096 || strings.ContainsRune(p, 0) {
		return "", refused(http.StatusBadRequest, "path: a file's path under your home, at most 4096 bytes")
	}
	if filepath.IsAbs(p) {
		rel, err := filepath.Rel(home, filepath.Clean(p))
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", refused(http.StatusForbidden, "path %q is outside your home at the site (%s)", p, home)
		}
		p = rel
	}
	p = filepath.Clean(p)
	switch {
	case p == ".." || strings.HasPrefix(p, "../"):
		return "", refused(http.StatusForbidden, "path %q escapes your home at the site", p)
	case p == ".":
		return "", refused(http.StatusBadRequest, "path: name a file, not your home")
	}
	return p, nil
}

// workerRefusal is the HTTP refusal of a worker's answer about a path.
func workerRefusal(reason string) error {
	status := http.StatusBadRequest
	switch {
	case strings.Contains(reason, "escapes"):
		status = http.StatusForbidden
	case strings.Contains(reason, "no such file"):
		status = http.StatusNotFound
	case strings.Contains(reason, "permission denied"):
		status = http.StatusForbidden
	}
	return refused(status, "%s", reason)
}

// signedUser authenticates a user-signed request and returns its audit
// entry and the mapped account, looked up again (it may have changed
// since the user connected).
func (s *Server) signedUser(r *http.Request) ([]byte, auditEntry, string, *Account, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, auditEntry{}, "", nil, refused(http.StatusBadRequest, "body: %v", err)
	}
	uid, m, err := s.userRequest(r, body)
	e := auditEntry{UID: uid}
	if m != nil {
		e.LocalAccount = m.Account
	}
	if err != nil {
		return nil, e, uid, nil, err
	}
	acct, err := checkAccount(m.Account, s.cfg.MinUID)
	if err != nil {
		return nil, e, uid, nil, refused(http.StatusForbidden, "%v", err)
	}
	return body, e, uid, acct, nil
}

func (s *Server) newTransfer(w http.ResponseWriter, r *http.Request) {
	const op = "transfer.token"
	body, e, uid, acct, err := s.signedUser(r)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	var req TransferRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, r, op, e, refused(http.StatusBadRequest, "body: %v", err))
		return
	}
	if req.Direction != dirUpload && req.Direction != dirDownload {
		s.fail(w, r, op, e, refused(http.StatusBadRequest, "direction: upload or download"))
		return
	}
	e.Detail = fmt.Sprintf("%s %q", req.Direction, req.Path)
	rel, err := homeRelative(acct.Home, req.Path)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	// The worker resolves the path as the account: symlinks out of the
	// home, directories it may not enter, a missing file to download.
	res, err := s.sup.call(r.Context(), uid, acct, message{Type: "check", Home: acct.Home, Path: rel, Direction: req.Direction, Size: s.cfg.MaxTransferBytes})
	if err != nil {
		s.fail(w, r, op, e, refused(http.StatusBadGateway, "%v", err))
		return
	}
	if res.Error != "" {
		s.fail(w, r, op, e, workerRefusal(res.Error))
		return
	}
	tok, exp, err := s.tokens.issue(grant{kind: req.Direction, uid: uid, account: acct.Name, path: rel})
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	s.audit.write(e)
	writeJSON(w, http.StatusOK, TokenResponse{Token: tok, ExpiresAt: exp, URLPath: "/files/" + tok, Path: rel, MaxBytes: s.cfg.MaxTransferBytes})
}

// redeem takes a one-time token of kind and returns its grant with the
// account, still mapped to the same user and still valid.
func (s *Server) redeem(r *http.Request, kind string) (*grant, auditEntry, *Account, error) {
	g, err := s.tokens.take(r.PathValue("token"), kind)
	var e auditEntry
	if g != nil {
		e = auditEntry{UID: g.uid, LocalAccount: g.account, Detail: fmt.Sprintf("%s %q", g.kind, g.path)}
	}
	if err != nil {
		return nil, e, nil, err
	}
	if m, ok := s.state.mapping(g.uid); !ok || m.Account != g.account {
		return nil, e, nil, refused(http.StatusForbidden, "%s is no longer connected to this site as %s", g.uid, g.account)
	}
	acct, err := checkAccount(g.account, s.cfg.MinUID)
	if err != nil {
		return nil, e, nil, refused(http.StatusForbidden, "%v", err)
	}
	return g, e, acct, nil
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	const op = "upload"
	g, e, acct, err := s.redeem(r, dirUpload)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	limit := s.cfg.MaxTransferBytes
	if r.ContentLength > limit {
		s.fail(w, r, op, e, refused(http.StatusRequestEntityTooLarge, "the file is larger than the site's limit of %d bytes", limit))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(time.Duration(s.cfg.TransferTimeout)))
	st, err := s.sup.openStream(r.Context(), g.uid, acct, message{Type: "upload", Home: acct.Home, Path: g.path, Size: limit})
	if err != nil {
		s.fail(w, r, op, e, workerOrGateway(err))
		return
	}
	defer st.Close()
	fw := frameWriter{w: st}
	_, cerr := io.Copy(fw, r.Body)
	if cerr == nil {
		cerr = fw.finish()
	}
	if cerr != nil {
		// The worker sees the stream end without its last frame and
		// keeps the file as it was.
		st.conn.Close()
		var mbe *http.MaxBytesError
		if errors.As(cerr, &mbe) {
			s.fail(w, r, op, e, refused(http.StatusRequestEntityTooLarge, "the file is larger than the site's limit of %d bytes", limit))
			return
		}
		s.fail(w, r, op, e, refused(http.StatusBadRequest, "the upload broke off: %v", cerr))
		return
	}
	_ = st.CloseWrite()
	res, err := st.wait(r.Context())
	if err != nil {
		s.fail(w, r, op, e, workerOrGateway(err))
		return
	}
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	e.Detail += fmt.Sprintf(", %d bytes", res.Size)
	s.audit.write(e)
	writeJSON(w, http.StatusOK, TransferResult{Path: g.path, Bytes: res.Size})
}

// workerOrGateway is a worker's failure as an HTTP refusal: what it said
// about the file, or a bad gateway when it could not be asked.
func workerOrGateway(err error) error {
	var he *httpError
	if errors.As(err, &he) {
		return err
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "the worker of ") || strings.HasPrefix(msg, "starting the worker") || strings.HasPrefix(msg, "sending to the worker") {
		return refused(http.StatusBadGateway, "%s", msg)
	}
	return workerRefusal(msg)
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	const op = "download"
	g, e, acct, err := s.redeem(r, dirDownload)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	st, err := s.sup.openStream(r.Context(), g.uid, acct, message{Type: "download", Home: acct.Home, Path: g.path, Size: s.cfg.MaxTransferBytes})
	if err != nil {
		s.fail(w, r, op, e, workerOrGateway(err))
		return
	}
	defer st.Close()
	// The worker sends the file's size, then the file.
	var h [8]byte
	if _, err := io.ReadFull(st, h[:]); err != nil {
		_, werr := st.wait(r.Context())
		if werr == nil {
			werr = fmt.Errorf("the worker sent no file: %v", err)
		}
		s.fail(w, r, op, e, workerOrGateway(werr))
		return
	}
	size := int64(binary.BigEndian.Uint64(h[:]))
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Duration(s.cfg.TransferTimeout)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	n, cerr := io.Copy(w, io.LimitReader(st, size))
	if cerr != nil {
		// The client went or stalled: end the stream, so the worker
		// stops writing and answers.
		st.conn.Close()
	}
	res, werr := st.wait(r.Context())
	e.Op, e.Remote = op, r.RemoteAddr
	switch {
	case cerr != nil || werr != nil || n != size:
		// The answer has begun: a short body tells the client.
		e.Outcome, e.Reason = "failed", fmt.Sprintf("sent %d of %d bytes: %v %v", n, size, cerr, werr)
	default:
		e.Outcome = "ok"
		e.Detail += fmt.Sprintf(", %d bytes", res.Size)
	}
	s.audit.write(e)
}
