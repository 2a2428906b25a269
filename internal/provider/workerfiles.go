package provider

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// The worker's side of file transfers: it runs as the account, opens the
// home as an os.Root (no path, and no symlink, leads out of it) and does
// the file I/O itself.

// dialStream opens the stream connection the server waits for.
func dialStream(socket, user, nonce string) (net.Conn, error) {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connecting to the site's server: %w", err)
	}
	if err := json.NewEncoder(c).Encode(message{Type: "stream", UID: user, Stream: nonce}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// pathError says what is wrong with a path without the worker's own
// wording of the home's absolute name.
func pathError(rel string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil && err.Error() == "path escapes from parent" {
		return fmt.Sprintf("%s: the path escapes your home (through \"..\" or a symbolic link)", rel)
	}
	return fmt.Sprintf("%s: %v", rel, err)
}

// checkPath checks, as the account, that req.Path can be downloaded (a
// regular file within the size bound) or uploaded (its directory exists,
// and what is there already is a regular file).
func checkPath(root *os.Root, req message) error {
	switch req.Direction {
	case dirDownload:
		fi, err := root.Stat(req.Path)
		if err != nil {
			return errors.New(pathError(req.Path, err))
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", req.Path)
		}
		if req.Size > 0 && fi.Size() > req.Size {
			return fmt.Errorf("%s: %d bytes, more than the site's limit of %d", req.Path, fi.Size(), req.Size)
		}
	case dirUpload:
		fi, err := root.Stat(filepath.Dir(req.Path))
		if err != nil {
			return errors.New(pathError(filepath.Dir(req.Path), err))
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", filepath.Dir(req.Path))
		}
		fi, err = root.Stat(req.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return errors.New(pathError(req.Path, err))
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s: exists and is not a regular file", req.Path)
		}
	default:
		return fmt.Errorf("unknown direction %q", req.Direction)
	}
	return nil
}

func openHome(home string) (*os.Root, error) {
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, fmt.Errorf("your home at the site: %v", err)
	}
	return root, nil
}

// workerCheck answers a "check".
func workerCheck(req message) message {
	out := message{Type: "result", ID: req.ID}
	root, err := openHome(req.Home)
	if err == nil {
		err = checkPath(root, req)
		root.Close()
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// workerDownload sends the file: its size (8 bytes), then its bytes.
func workerDownload(socket, user string, req message) message {
	out := message{Type: "result", ID: req.ID}
	fail := func(err error) message { out.Error = err.Error(); return out }
	root, err := openHome(req.Home)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	req.Direction = dirDownload
	if err := checkPath(root, req); err != nil {
		return fail(err)
	}
	f, err := root.Open(req.Path)
	if err != nil {
		return fail(errors.New(pathError(req.Path, err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	c, err := dialStream(socket, user, req.Stream)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], uint64(fi.Size()))
	if _, err := c.Write(h[:]); err != nil {
		return fail(err)
	}
	n, err := io.Copy(c, io.LimitReader(f, fi.Size()))
	out.Size = n
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("%s: changed while it was sent (%d of %d bytes)", req.Path, n, fi.Size())
	}
	if err != nil {
		return fail(err)
	}
	return out
}

// workerUpload receives the file into a new file (0600) beside it and
// puts it in place only once all of it arrived.
func workerUpload(socket, user string, req message) message {
	out := message{Type: "result", ID: req.ID}
	fail := func(err error) message { out.Error = err.Error(); return out }
	root, err := openHome(req.Home)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	req.Direction = dirUpload
	if err := checkPath(root, req); err != nil {
		return fail(err)
	}
	tmp := filepath.Join(filepath.Dir(req.Path), ".trellis-upload-"+randomNonce())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(errors.New(pathError(req.Path, err)))
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			_ = root.Remove(tmp)
		}
	}()
	c, err := dialStream(socket, user, req.Stream)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	n, err := io.Copy(f, io.LimitReader(&frameReader{r: bufio.NewReader(c)}, req.Size+1))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(fmt.Errorf("%s: the upload broke off after %d bytes; the file is unchanged", req.Path, n))
	case err != nil:
		return fail(fmt.Errorf("%s: %v", req.Path, err))
	case n > req.Size:
		return fail(fmt.Errorf("%s: more than the site's limit of %d bytes", req.Path, req.Size))
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	keep = true
	if err := root.Rename(tmp, req.Path); err != nil {
		_ = root.Remove(tmp)
		return fail(errors.New(pathError(req.Path, err)))
	}
	out.Size = n
	return out
}
