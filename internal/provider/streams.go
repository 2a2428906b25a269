package provider

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Streams carry a file's bytes or a terminal's between the server and a
// user's worker. The server sends the request on the worker's control
// connection with a fresh nonce; the worker does the work as its account
// (opens the file, starts the shell) and dials the server's socket again,
// presenting the nonce; the server admits that connection only from the
// worker's own uid (SO_PEERCRED), then bytes flow on it while results and
// resizes stay on the control connection.

// streamWait is a stream the server waits for.
type streamWait struct {
	uid uint32
	ch  chan *workerStream
}

// workerStream is one stream connection to a user's worker, for one
// request.
type workerStream struct {
	conn   *net.UnixConn
	r      *bufio.Reader
	w      *worker
	id     uint64
	result chan *message
}

func (st *workerStream) Read(p []byte) (int, error)  { return st.r.Read(p) }
func (st *workerStream) Write(p []byte) (int, error) { return st.conn.Write(p) }

// CloseWrite says the server sent everything.
func (st *workerStream) CloseWrite() error { return st.conn.CloseWrite() }

// Close ends the stream and forgets its request.
func (st *workerStream) Close() error {
	st.w.forget(st.id)
	return st.conn.Close()
}

// wait returns the worker's result of the stream's request; a worker that
// dies meanwhile fails it at once.
func (st *workerStream) wait(ctx context.Context) (*message, error) {
	select {
	case m := <-st.result:
		if m.Error != "" {
			return m, errors.New(m.Error)
		}
		return m, nil
	case <-st.w.dead:
		return nil, st.w.why
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// acceptStream admits a worker's stream connection: the nonce must be one
// the server waits for, from the uid of the worker it asked.
func (s *supervisor) acceptStream(c *net.UnixConn, r *bufio.Reader, cred *unix.Ucred, hello message, refuse func(string)) {
	s.mu.Lock()
	sw := s.streams[hello.Stream]
	if sw != nil && sw.uid == cred.Uid {
		delete(s.streams, hello.Stream)
	}
	s.mu.Unlock()
	switch {
	case sw == nil:
		refuse("no stream is awaited with this nonce")
		return
	case sw.uid != cred.Uid:
		refuse(fmt.Sprintf("stream from peer uid %d, which is not the worker's account (uid %d)", cred.Uid, sw.uid))
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	sw.ch <- &workerStream{conn: c, r: r}
}

// send sends msg to the worker under a new id and returns where its result
// will arrive.
func (w *worker) send(msg message) (uint64, chan *message, error) {
	ch := make(chan *message, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextID++
	id := w.nextID
	w.pending[id] = ch
	w.lastUsed = time.Now()
	msg.ID = id
	if err := json.NewEncoder(w.conn).Encode(msg); err != nil {
		delete(w.pending, id)
		return 0, nil, fmt.Errorf("sending to the worker of %s: %w", w.user, err)
	}
	return id, ch, nil
}

func (w *worker) forget(id uint64) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

// notify sends msg to the worker without waiting for an answer (a
// terminal's resize).
func (w *worker) notify(msg message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastUsed = time.Now()
	return json.NewEncoder(w.conn).Encode(msg)
}

// call has user's worker answer msg.
func (s *supervisor) call(ctx context.Context, user string, acct *Account, msg message) (*message, error) {
	w, err := s.get(ctx, user, acct)
	if err != nil {
		return nil, err
	}
	id, ch, err := w.send(msg)
	if err != nil {
		return nil, err
	}
	defer w.forget(id)
	select {
	case m := <-ch:
		return m, nil
	case <-w.dead:
		return nil, w.why
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// openStream sends msg to user's worker and waits for its stream. A worker
// that cannot do what msg asks (no such file, say) answers without one:
// its reason is the error.
func (s *supervisor) openStream(ctx context.Context, user string, acct *Account, msg message) (*workerStream, error) {
	w, err := s.get(ctx, user, acct)
	if err != nil {
		return nil, err
	}
	nonce := randomNonce()
	sw := &streamWait{uid: acct.UID, ch: make(chan *workerStream, 1)}
	s.mu.Lock()
	s.streams[nonce] = sw
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, nonce)
		s.mu.Unlock()
	}()
	msg.Stream = nonce
	id, ch, err := w.send(msg)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	result := ch
	for {
		select {
		case st := <-sw.ch:
			st.w, st.id, st.result = w, id, result
			return st, nil
		case m := <-ch:
			if m.Error != "" {
				w.forget(id)
				return nil, errors.New(m.Error)
			}
			// A short download can be done before the server has accepted
			// its stream: the result waits for the stream's reader.
			result = make(chan *message, 1)
			result <- m
			ch = nil
			continue
		case <-w.dead:
			return nil, w.why
		case <-t.C:
			w.forget(id)
			return nil, fmt.Errorf("the worker of %s did not open its stream within 15s", user)
		case <-ctx.Done():
			w.forget(id)
			return nil, ctx.Err()
		}
	}
}

// An upload's bytes go to the worker in frames (a 4-byte length, then
// that many bytes) ending with an empty frame, so the worker tells a
// complete upload from one broken off: only a complete one replaces the
// file.
const maxFrame = 64 << 10

type frameWriter struct{ w io.Writer }

func (f frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxFrame)
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], uint32(k))
		if _, err := f.w.Write(h[:]); err != nil {
			return n, err
		}
		if _, err := f.w.Write(p[:k]); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// finish writes the end frame.
func (f frameWriter) finish() error {
	_, err := f.w.Write([]byte{0, 0, 0, 0})
	return err
}

// frameReader reads frames; io.EOF only after the end frame,
// io.ErrUnexpectedEOF when the stream ends before it.
type frameReader struct {
	r    *bufio.Reader
	left int
	done bool
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.done {
		return 0, io.EOF
	}
	if f.left == 0 {
		var h [4]byte
		if _, err := io.ReadFull(f.r, h[:]); err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		n := binary.BigEndian.Uint32(h[:])
		if n == 0 {
			f.done = true
			return 0, io.EOF
		}
		if n > maxFrame {
			return 0, errors.New("malformed stream frame")
		}
		f.left = int(n)
	}
	n, err := f.r.Read(p[:min(len(p), f.left)])
	f.left -= n
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
