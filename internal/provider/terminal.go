package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// Terminals: a user-signed POST /terminals (straight or forwarded by the
// centre) gives a one-time token; GET /terminal/TOKEN opens a WebSocket
// to the site, and the user's worker starts the account's login shell in a
// PTY. Binary messages are the terminal's bytes both ways; text messages
// are TerminalControl: "resize" from the client, "exit" from the site at
// the end.

// TerminalControl is a text message on a terminal's WebSocket.
type TerminalControl struct {
	Type  string `json:"type"` // "resize" or "exit"
	Rows  uint16 `json:"rows,omitempty"`
	Cols  uint16 `json:"cols,omitempty"`
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

func (s *Server) newTerminal(w http.ResponseWriter, r *http.Request) {
	const op = "terminal.token"
	_, e, uid, acct, err := s.signedUser(r)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	tok, exp, err := s.tokens.issue(grant{kind: kindTerm, uid: uid, account: acct.Name})
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	s.audit.write(e)
	writeJSON(w, http.StatusOK, TokenResponse{Token: tok, ExpiresAt: exp, URLPath: "/terminal/" + tok})
}

func windowSize(r *http.Request) (rows, cols uint16) {
	parse := func(k string) uint16 {
		v, err := strconv.ParseUint(r.URL.Query().Get(k), 10, 16)
		if err != nil {
			return 0
		}
		return uint16(v)
	}
	return parse("rows"), parse("cols")
}

func (s *Server) terminal(w http.ResponseWriter, r *http.Request) {
	const op = "terminal"
	g, e, acct, err := s.redeem(r, kindTerm)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	e.Detail = "login shell"
	rows, cols := windowSize(r)
	st, err := s.sup.openStream(r.Context(), g.uid, acct, message{Type: "terminal", Home: acct.Home, Rows: rows, Cols: cols, Term: r.URL.Query().Get("term")})
	if err != nil {
		s.fail(w, r, op, e, workerOrGateway(err))
		return
	}
	defer st.Close()
	// A terminal lasts as long as its user wants: no server deadlines.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		e.Op, e.Outcome, e.Reason, e.Remote = op, "refused", "websocket: "+err.Error(), r.RemoteAddr
		s.audit.write(e)
		return
	}
	ws.SetReadLimit(64 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	e.Detail = "opened"
	s.audit.write(e)

	output := make(chan struct{})
	go func() {
		defer close(output)
		buf := make([]byte, 32<<10)
		for {
			n, err := st.Read(buf)
			if n > 0 {
				if werr := ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		// The client's keys and resizes; when it goes, the worker hangs up
		// the shell.
		defer func() { _ = st.CloseWrite() }()
		for {
			typ, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				if _, err := st.Write(data); err != nil {
					return
				}
				continue
			}
			var c TerminalControl
			if json.Unmarshal(data, &c) == nil && c.Type == "resize" && c.Rows > 0 && c.Cols > 0 {
				_ = st.w.notify(message{Type: "resize", ID: st.id, Rows: c.Rows, Cols: c.Cols})
			}
		}
	}()
	<-output
	res, err := st.wait(ctx)
	end := TerminalControl{Type: "exit"}
	if err != nil {
		end.Code, end.Error = -1, err.Error()
	} else {
		end.Code = res.ExitCode
	}
	b, _ := json.Marshal(end)
	_ = ws.Write(ctx, websocket.MessageText, b)
	_ = ws.Close(websocket.StatusNormalClosure, "")
	e.Detail = fmt.Sprintf("closed after %s, exit %d", time.Since(started).Round(time.Second), end.Code)
	if end.Error != "" {
		e.Outcome, e.Reason = "failed", end.Error
	}
	s.audit.write(e)
}
