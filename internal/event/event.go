package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pylabhub/plh/internal/proc"
)

// Event is one observation by one process.
type Event struct {
	T      int64          // CLOCK_MONOTONIC ns
	Node   string         // process (node) name
	Kind   string         // what happened; see docs/events.md
	Fields map[string]any // the kind's own fields (numbers decode as float64)
}

// Fixed keys of every event line.
const (
	KeyT    = "t"
	KeyNode = "node"
	KeyKind = "kind"
)

// Errors returned by Decode.
var (
	// ErrBadEvent is returned when a line is not a JSON object with t, node and kind.
	ErrBadEvent = errors.New("event: malformed event line")
)

// MaxLine is the longest event line a reader accepts.
const MaxLine = 1 << 20

// MarshalJSON writes the flat form.
func (e Event) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Fields)+3)
	for k, v := range e.Fields {
		m[k] = v
	}
	m[KeyT] = e.T
	m[KeyNode] = e.Node
	m[KeyKind] = e.Kind
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat form.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := Decode(b)
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

// Decode parses one event line.
func Decode(line []byte) (Event, error) {
	if len(line) > MaxLine {
		return Event{}, fmt.Errorf("%w: line of %d bytes exceeds %d", ErrBadEvent, len(line), MaxLine)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	t, ok := m[KeyT].(float64)
	if !ok {
		return Event{}, fmt.Errorf("%w: missing or non-numeric %q", ErrBadEvent, KeyT)
	}
	node, ok := m[KeyNode].(string)
	if !ok {
		return Event{}, fmt.Errorf("%w: missing or non-string %q", ErrBadEvent, KeyNode)
	}
	kind, ok := m[KeyKind].(string)
	if !ok || kind == "" {
		return Event{}, fmt.Errorf("%w: missing or empty %q", ErrBadEvent, KeyKind)
	}
	delete(m, KeyT)
	delete(m, KeyNode)
	delete(m, KeyKind)
	return Event{T: int64(t), Node: node, Kind: kind, Fields: m}, nil
}

// Str returns field k as a string ("" when absent or not a string).
func (e Event) Str(k string) string {
	s, _ := e.Fields[k].(string)
	return s
}

// Num returns field k as a number (0, false when absent or not a number).
func (e Event) Num(k string) (float64, bool) {
	switch v := e.Fields[k].(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case uint32:
		return float64(v), true
	}
	return 0, false
}

// Writer emits events of one node as JSON lines.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	node string
}

// NewWriter returns a Writer for node that writes to w.
func NewWriter(w io.Writer, node string) *Writer {
	return &Writer{w: w, node: node}
}

// Node returns the node name the Writer stamps on events.
func (w *Writer) Node() string { return w.node }

// Emit writes one event of the given kind, stamped with proc.Now(). fields may be
// nil. Write errors are returned (a closed stdout must not crash a node).
func (w *Writer) Emit(kind string, fields map[string]any) error {
	b, err := json.Marshal(Event{T: proc.Now(), Node: w.node, Kind: kind, Fields: fields})
	if err != nil {
		return fmt.Errorf("event %s: %w", kind, err)
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.w.Write(b)
	return err
}
