package sim

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

func TestProgressPlainAndTerminal(t *testing.T) {
	p := &scenario.Plan{Name: "x", Faults: []scenario.FaultSpec{{ID: "f"}}}
	var plain bytes.Buffer
	g := newProgress(&plain, false, p)
	g.event(event.Event{T: 5, Node: "hub", Kind: "ready", Fields: map[string]any{"endpoint": "tcp://127.0.0.1:1"}})
	g.start(1000)
	g.event(event.Event{T: 1000 + 1.5e9, Node: scenario.EngineName, Kind: "fault", Fields: map[string]any{"id": "f", "target": "c1"}})
	g.event(event.Event{T: 1000 + 1.6e9, Node: "c1", Kind: "read", Fields: map[string]any{"count": 3.0}})
	g.finish()
	g.event(event.Event{T: 1, Node: "c1", Kind: "ready"})
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "setup") || !strings.Contains(lines[0], "endpoint=tcp://127.0.0.1:1") ||
		!strings.Contains(lines[1], "+1.500s") || !strings.Contains(lines[1], "id=f") || strings.Contains(plain.String(), "\r") {
		t.Fatalf("plain progress:\n%s", plain.String())
	}
	var tty bytes.Buffer
	g = newProgress(&tty, true, p)
	g.start(1000)
	g.event(event.Event{T: 2000, Node: "c1", Kind: "read"})
	g.finish()
	if s := tty.String(); !strings.Contains(s, "\r\033[K") || !strings.Contains(s, "1 events, 0/1 faults fired") {
		t.Fatalf("terminal progress: %q", s)
	}
	newProgress(nil, true, p).event(event.Event{Kind: "ready"}) // no writer: nothing, no panic
}
