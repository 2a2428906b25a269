package requestid

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestAccept(t *testing.T) {
	for in, keep := range map[string]bool{
		"abc-123.X_y":           true,
		"":                      false,
		"has space":             false,
		"new\nline":             false,
		strings.Repeat("a", 65): false,
	} {
		got := Accept(in)
		if keep && got != in || !keep && (got == in || got == "") {
			t.Errorf("Accept(%q) = %q", in, got)
		}
	}
	if New() == New() {
		t.Error("New repeats itself")
	}
}

func TestLogHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler{slog.NewTextHandler(&buf, nil)}).With("component", "test")
	log.InfoContext(With(context.Background(), "req-42"), "hello")
	log.InfoContext(context.Background(), "no id")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], "request_id=req-42") || !strings.Contains(lines[0], "component=test") {
		t.Errorf("line with id: %s", lines[0])
	}
	if strings.Contains(lines[1], "request_id") {
		t.Errorf("line without id: %s", lines[1])
	}
}
