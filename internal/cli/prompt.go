package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// secretReader reads passwords, either from the terminal without echo or, with
// --password-stdin, one per line from standard input. Passwords are never
// taken as arguments or flags: those show up in ps and in shell history.
type secretReader struct {
	a         *app
	fromStdin bool
	lines     *bufio.Reader // shared, so that consecutive reads take consecutive lines
}

func (a *app) secrets(fromStdin bool) *secretReader {
	return &secretReader{a: a, fromStdin: fromStdin}
}

// terminalFD returns the descriptor of standard input if it is a terminal.
func (r *secretReader) terminalFD() (int, bool) {
	f, ok := r.a.streams.In.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// read reads one secret; prompt is shown on a terminal only.
func (r *secretReader) read(prompt string) (string, error) {
	if r.fromStdin {
		return r.readLine()
	}
	fd, ok := r.terminalFD()
	if !ok {
		return "", errors.New("standard input is not a terminal: use --password-stdin to read the password from it")
	}
	// Prompts go to stderr so that stdout carries only the command's output.
	fmt.Fprint(r.a.streams.Err, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(r.a.streams.Err)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty password")
	}
	return string(b), nil
}

// readNew reads a password being chosen. On a terminal it asks twice, since a
// typo nobody saw would lock the user out; from stdin the script is trusted.
func (r *secretReader) readNew(prompt string) (string, error) {
	p, err := r.read(prompt)
	if err != nil || r.fromStdin {
		return p, err
	}
	again, err := r.read("Retype " + strings.ToLower(prompt[:1]) + prompt[1:])
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the passwords do not match")
	}
	return p, nil
}

func (r *secretReader) readLine() (string, error) {
	if r.lines == nil {
		r.lines = bufio.NewReader(r.a.streams.In)
	}
	line, err := r.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on standard input")
		}
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", errors.New("empty password on standard input")
	}
	return line, nil
}
