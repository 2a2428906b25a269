package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/trellis-testbed/trellis/internal/provider"
)

// Files and terminals: a signed request (through the centre, or straight
// with --direct) gets a one-time token from the site; the bytes then go
// between this client and the site directly.

// transferToken asks the site for a one-time token to move path.
func (a *app) transferToken(ctx context.Context, site, direction, path string, direct bool) (string, *provider.TokenResponse, error) {
	c, err := a.connect()
	if err != nil {
		return "", nil, err
	}
	body, _ := json.Marshal(provider.TransferRequest{Direction: direction, Path: path})
	var tok provider.TokenResponse
	siteURL, err := a.signedSiteCall(ctx, c, site, "/transfers", body, direct, &tok)
	if err != nil {
		return "", nil, err
	}
	return siteURL, &tok, nil
}

// siteStreamHTTP is for transfers and terminals: they last as long as the
// bytes take (the context bounds them), not a request's time.
func (a *app) siteStreamHTTP() (*http.Client, error) {
	rt, err := a.roundTripper()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

func newProviderUploadCmd(a *app) *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "upload [--direct] SITE LOCAL REMOTE",
		Short: "Copy a local file to your home at a site",
		Long: `Copy LOCAL to REMOTE at the site (relative to your home there, or absolute
inside it). The site writes it as your local account, mode 0600, and
replaces REMOTE only once all of it arrived. A signed request gets a
one-time token (30 s); the file then goes straight to the site.`,
		Example: `  trellis provider upload site1 data.csv input/data.csv`,
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			site, local, remote := args[0], args[1], args[2]
			f, err := os.Open(local)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", local)
			}
			siteURL, tok, err := a.transferToken(cmd.Context(), site, "upload", remote, direct)
			if err != nil {
				return err
			}
			if fi.Size() > tok.MaxBytes {
				return fmt.Errorf("%s has %d bytes; the site takes at most %d", local, fi.Size(), tok.MaxBytes)
			}
			hc, err := a.siteStreamHTTP()
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPut, siteURL+tok.URLPath, f)
			if err != nil {
				return err
			}
			req.ContentLength = fi.Size()
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("reaching the site: %w", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return err
			}
			var res provider.TransferResult
			if err := siteAnswer(resp.StatusCode, b, &res); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "Uploaded %d bytes to %s:%s.\n", res.Bytes, clean(site), clean(res.Path))
			return nil
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "ask the site for the token straight, not through the centre")
	return cmd
}

func newProviderDownloadCmd(a *app) *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "download [--direct] SITE REMOTE LOCAL",
		Short: "Copy a file from your home at a site",
		Long: `Copy REMOTE (relative to your home at the site, or absolute inside it) to
LOCAL. The site reads it as your local account. LOCAL is replaced only
once all of it arrived.`,
		Example: `  trellis provider download site1 results/out.csv out.csv`,
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			site, remote, local := args[0], args[1], args[2]
			siteURL, tok, err := a.transferToken(cmd.Context(), site, "download", remote, direct)
			if err != nil {
				return err
			}
			hc, err := a.siteStreamHTTP()
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, siteURL+tok.URLPath, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("reaching the site: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				return siteAnswer(resp.StatusCode, b, nil)
			}
			tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+"-*.part")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			n, err := io.Copy(tmp, resp.Body)
			if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
				err = fmt.Errorf("the site sent %d of %d bytes", n, resp.ContentLength)
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("downloading %s: %w", remote, err)
			}
			if err := os.Rename(tmp.Name(), local); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "Downloaded %d bytes from %s:%s to %s.\n", n, clean(site), clean(tok.Path), local)
			return nil
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "ask the site for the token straight, not through the centre")
	return cmd
}

func newProviderTerminalCmd(a *app) *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "terminal [--direct] SITE",
		Short: "Open a login shell as your local account at a site",
		Long: `Open an interactive login shell as your local account at the site, in a
terminal there (a PTY over a WebSocket, straight to the site with a one-time
token). The exit status is the shell's.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			site := args[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			var tok provider.TokenResponse
			siteURL, err := a.signedSiteCall(cmd.Context(), c, site, "/terminals", []byte("{}"), direct, &tok)
			if err != nil {
				return err
			}
			code, err := a.runTerminal(cmd.Context(), siteURL+tok.URLPath)
			if err != nil {
				return err
			}
			if code != 0 {
				return ExitError{Code: min(max(code, 1), 255)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "ask the site for the token straight, not through the centre")
	return cmd
}

// runTerminal connects this process's terminal (raw, when it is one) to
// the site's and returns the shell's exit status.
func (a *app) runTerminal(ctx context.Context, wsURL string) (int, error) {
	hc, err := a.siteStreamHTTP()
	if err != nil {
		return 0, err
	}
	in, isTTY := a.streams.In, false
	var inFd int
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		isTTY, inFd = true, int(f.Fd())
	}
	q := url.Values{}
	if t := os.Getenv("TERM"); t != "" {
		q.Set("term", t)
	}
	if isTTY {
		if w, h, err := term.GetSize(inFd); err == nil {
			q.Set("rows", strconv.Itoa(h))
			q.Set("cols", strconv.Itoa(w))
		}
	}
	if len(q) > 0 {
		wsURL += "?" + q.Encode()
	}
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil && resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if aerr := siteAnswer(resp.StatusCode, b, nil); aerr != nil {
				return 0, aerr
			}
		}
		return 0, fmt.Errorf("opening the terminal: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	if isTTY {
		old, err := term.MakeRaw(inFd)
		if err == nil {
			defer func() { _ = term.Restore(inFd, old) }()
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if w, h, err := term.GetSize(inFd); err == nil {
					b, _ := json.Marshal(provider.TerminalControl{Type: "resize", Rows: uint16(h), Cols: uint16(w)})
					_ = ws.Write(ctx, websocket.MessageText, b)
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := in.Read(buf)
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
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return 0, fmt.Errorf("the terminal ended without an exit status: %w", err)
		}
		if typ == websocket.MessageBinary {
			if _, err := a.streams.Out.Write(data); err != nil {
				return 0, err
			}
			continue
		}
		var ctl provider.TerminalControl
		if json.Unmarshal(data, &ctl) == nil && ctl.Type == "exit" {
			_ = ws.Close(websocket.StatusNormalClosure, "")
			if ctl.Error != "" {
				return 0, errors.New("the terminal failed at the site: " + clean(ctl.Error))
			}
			return ctl.Code, nil
		}
	}
}
