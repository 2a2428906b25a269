package cli

import (
	"context"
	"encoding/json"
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
// ExitError, or 1 for any other error, which it prints on streams.Err: for
// people, or with --output json as one JSON object (see jsonError).
func Execute(root *cobra.Command, streams Streams) int {
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	err := root.ExecuteContext(context.Background())
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Value.String() == string(outputJSON) {
		return reportJSONError(streams.Err, err)
	}
	return reportError(streams.Err, err)
}

// exitCode is the exit status an ExitError in err asks for.
func exitCode(err error) (int, bool) {
	var exit ExitError
	if errors.As(err, &exit) {
		return exit.Code, true
	}
	var pexit *ExitError
	if errors.As(err, &pexit) && pexit != nil {
		return pexit.Code, true
	}
	return 0, false
}

// jsonError is what a command run with --output json prints on standard
// error when it fails: always one object with one member, "error", so that a
// script reads standard output as the answer and standard error as the
// refusal.
//
//	{"error": {"code": "invalid_argument", "message": "the request is not valid",
//	  "violations": [{"field": "email", "description": "...", "rule": "email.format"}]}}
//
// code is the API's error code (not_found, permission_denied, ...) for a
// refusal by the server, "usage" for a mistake in the command line, and
// "unknown" for anything else (the server unreachable, a file unreadable).
type jsonError struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	Violations []jsonViolation `json:"violations,omitempty"`
	Help       string          `json:"help,omitempty"`
}

type jsonViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
	Rule        string `json:"rule,omitempty"`
}

// reportJSONError prints err as a jsonError and returns its exit status.
func reportJSONError(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	if code, ok := exitCode(err); ok {
		return code
	}
	e := jsonError{Code: "unknown", Message: err.Error()}
	var cerr *connect.Error
	var uerr usageError
	switch {
	case errors.As(err, &cerr):
		e.Code, e.Message = cerr.Code().String(), cerr.Message()
		if e.Message == "" {
			e.Message = e.Code
		}
		for _, v := range fieldViolations(cerr) {
			e.Violations = append(e.Violations, jsonViolation{Field: v.GetField(), Description: v.GetDescription(), Rule: v.GetRule()})
		}
	case errors.As(err, &uerr):
		e.Code, e.Help = "usage", fmt.Sprintf("Run '%s --help' for usage.", uerr.cmd)
	}
	b, merr := json.Marshal(struct {
		Error jsonError `json:"error"`
	}{e})
	if merr != nil {
		fmt.Fprintf(w, "error: %s\n", err)
		return 1
	}
	fmt.Fprintf(w, "%s\n", b)
	return 1
}

// reportError prints err for people and returns the exit status it maps to.
func reportError(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	if code, ok := exitCode(err); ok {
		return code
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
