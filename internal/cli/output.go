package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// emit prints a response: with --output json the message itself, so that
// scripts see exactly the API's fields; otherwise whatever text prints.
func (a *app) emit(m proto.Message, text func(w io.Writer) error) error {
	if a.output == outputJSON {
		return printJSON(a.streams.Out, m)
	}
	return text(a.streams.Out)
}

// printJSON prints the API's JSON form of m (as curl sees it), indented.
// protojson varies its whitespace on purpose so that nobody depends on it;
// re-indenting with encoding/json makes the output the same from run to run,
// which scripts that diff it and golden files need. The content is unchanged.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// printFields prints one object as aligned "key: value" lines.
func printFields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], clean(v))
	}
	return tw.Flush()
}

// table prints rows in aligned columns under a header.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		// An empty cell would shift the eye to the next column.
		if c == "" {
			c = "-"
		}
		io.WriteString(t.tw, clean(c))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// clean makes a server-supplied string safe for one line of a terminal: values
// such as profile attributes are written by other users, and a control
// character could break the columns or, as an escape sequence, drive the
// reader's terminal.
func clean(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// cleanBlock is clean for multi-line text (mail bodies): it keeps newlines and
// tabs.
func cleanBlock(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// formatTime prints times in RFC 3339, the form --since accepts, in the
// reader's zone.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(time.RFC3339)
}

func formatTS(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return formatTime(ts.AsTime())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Enum names without their type prefix, in lower case: "active", "read_only".
func userStateName(s trellisv1.UserState) string {
	return enumName(s.String(), "USER_STATE_")
}

func accessName(a trellisv1.AttributeAccess) string {
	return enumName(a.String(), "ATTRIBUTE_ACCESS_")
}

func dataTypeName(d trellisv1.AttributeDataType) string {
	return enumName(d.String(), "ATTRIBUTE_DATA_TYPE_")
}

func enumName(s, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s, prefix))
}
