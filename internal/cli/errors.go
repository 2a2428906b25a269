package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// ExitError makes a command exit with Code without printing anything: the
// command has already said what there was to say (for example, which profile
// attributes failed), or the exit status is the answer (policy check: 3 means
// denied).
type ExitError struct {
	Code int
}

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// usageError is a mistake in the command line itself, as opposed to a refusal
// by the server; it earns a pointer to the command's help.
type usageError struct {
	cmd string
	err error
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Execute runs the command tree with the process's arguments (or those set
// with root.SetArgs) and returns the exit status: 0 on success, the code of an
// ExitError, or 1 for any other error, which it prints on streams.Err.
func Execute(root *cobra.Command, streams Streams) int {
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	return reportError(streams.Err, root.ExecuteContext(context.Background()))
}

// reportError prints err for people and returns the exit status it maps to.
func reportError(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var exit ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	var pexit *ExitError
	if errors.As(err, &pexit) && pexit != nil {
		return pexit.Code
	}

	var cerr *connect.Error
	if errors.As(err, &cerr) {
		// The server's message is written for people; the Go wrapping around
		// it ("unauthenticated: ...", "login: ...") is noise to them.
		msg := cerr.Message()
		if msg == "" {
			msg = cerr.Code().String()
		}
		vs := fieldViolations(cerr)
		if len(vs) > 0 {
			// The server's message lists the same violations in one line;
			// one line per field reads better.
			msg = "the request is not valid"
		}
		fmt.Fprintf(w, "error: %s\n", clean(msg))
		for _, v := range vs {
			fmt.Fprintf(w, "  %s: %s (%s)\n", clean(v.GetField()), clean(v.GetDescription()), clean(v.GetRule()))
		}
		return 1
	}

	fmt.Fprintf(w, "error: %s\n", err)
	var uerr usageError
	if errors.As(err, &uerr) {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", uerr.cmd)
	}
	return 1
}

// fieldViolations collects the FieldViolations details of an error. Details of
// other types, or of types this client does not know, are skipped: they are
// optional extras and must not hide the error itself.
func fieldViolations(cerr *connect.Error) []*trellisv1.FieldViolation {
	var out []*trellisv1.FieldViolation
	for _, d := range cerr.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if fv, ok := v.(*trellisv1.FieldViolations); ok {
			out = append(out, fv.GetViolations()...)
		}
	}
	return out
}
