package provider

import (
	"fmt"
	"net/http"
	"os"
	"os/user"
	"strconv"
)

// WhoamiResponse answers POST /whoami: who the user is at this site, as
// the user's worker itself reports it (the account it runs as, its pid).
// It is the lightest request that goes all the way to the worker.
type WhoamiResponse struct {
	UID          string `json:"uid"`
	LocalAccount string `json:"local_account"`
	LocalUID     int    `json:"local_uid"`
	WorkerPID    int    `json:"worker_pid"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	const op = "whoami"
	_, e, uid, acct, err := s.signedUser(r)
	if err != nil {
		s.fail(w, r, op, e, err)
		return
	}
	res, err := s.sup.call(r.Context(), uid, acct, message{Type: "whoami"})
	if err == nil && res.Error != "" {
		err = fmt.Errorf("%s", res.Error)
	}
	if err != nil {
		s.fail(w, r, op, e, refused(http.StatusBadGateway, "%v", err))
		return
	}
	e.Op, e.Outcome, e.Remote = op, "ok", r.RemoteAddr
	s.audit.write(e)
	writeJSON(w, http.StatusOK, WhoamiResponse{UID: uid, LocalAccount: res.Account, LocalUID: res.LocalUID, WorkerPID: res.PID})
}

// workerWhoami is the worker's answer: the account it runs as.
func workerWhoami(req message) message {
	out := message{Type: "result", ID: req.ID, PID: os.Getpid(), LocalUID: os.Getuid()}
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		out.Account = u.Username
	}
	return out
}
