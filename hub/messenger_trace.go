package hub

import (
	"fmt"

	"github.com/pylabhub/plh/internal/trace"
)

// TraceConfig configures the Messenger's protocol trace (B-13; docs/protocol.md
// "Protocol trace"): every control message to and from the broker, with type,
// correlation id, channel, broker endpoint, size and, on replies, the round
// trip, one JSON line each. Bodies are never written.
type TraceConfig struct {
	// On switches the trace on.
	On bool
	// Path is the JSONL file (0600, appended); "" = the Messenger's Logger.
	Path string
	// MaxBytes rotates the file at this size, keeping one previous file
	// (Path.1) (default 64 MiB).
	MaxBytes int64
	// MaxRate bounds the records per second; the rest are counted and
	// reported in the next record (default 10,000).
	MaxRate int
}

// TraceStatus is the trace's state: on, path, records written, dropped and
// file rotations.
type TraceStatus = trace.Status

// SetTrace switches the protocol trace at run time. A file that cannot be
// opened is an error (ErrInvalidArgument) and leaves the trace off.
func (m *Messenger) SetTrace(c TraceConfig) error {
	err := m.trace.Set(c.On, trace.Config{Path: c.Path, MaxBytes: c.MaxBytes, MaxRate: c.MaxRate, Logger: m.log})
	if err != nil {
		return fmt.Errorf("messenger trace: %w: %w", ErrInvalidArgument, err)
	}
	return nil
}

// TraceStatus returns the trace's state and counters.
func (m *Messenger) TraceStatus() TraceStatus { return m.trace.Status() }
