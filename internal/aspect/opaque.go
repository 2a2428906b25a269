package aspect

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// ProcedureType is the built-in `procedure` aspect: how to run the
// experiment, as text (a script, a playbook, notes). Trellis stores it
// without interpreting it; it must be UTF-8 so that every client can show it.
type ProcedureType struct{}

func (ProcedureType) Name() string { return TypeProcedure }
func (ProcedureType) MaxSize() int { return MaxProcedureSize }

func (ProcedureType) Validate(content []byte) error {
	if err := checkSize(TypeProcedure, MaxProcedureSize, content); err != nil {
		return err
	}
	if utf8.Valid(content) {
		return nil
	}
	at := firstInvalidUTF8(content)
	line := bytes.Count(content[:at], []byte("\n")) + 1
	return domain.Invalid(TypeProcedure, "procedure.utf8", fmt.Sprintf("line %d: a procedure is UTF-8 text; byte %d is not valid UTF-8 (store binary content as a data aspect)", line, at))
}

func (ProcedureType) Summarize(content []byte) string { return plural(len(content), "byte") }

// DataType is the built-in `data` aspect: any bytes the experiment carries
// (a data set, a configuration archive), stored as given.
type DataType struct{}

func (DataType) Name() string { return TypeData }
func (DataType) MaxSize() int { return MaxDataSize }

func (DataType) Validate(content []byte) error {
	return checkSize(TypeData, MaxDataSize, content)
}

func (DataType) Summarize(content []byte) string { return plural(len(content), "byte") }

// firstInvalidUTF8 returns the offset of the first byte that is not part of a
// valid UTF-8 encoding, or len(b).
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
