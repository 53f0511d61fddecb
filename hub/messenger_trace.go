package hub

import (
	"fmt"

	"github.com/pylabhub/plh/internal/trace"
)

// TraceConfig configures the Messenger's protocol trace (B-13; docs/protocol.md
// "Protocol trace"): every control message to and from the broker, with type,
// correlation id, channel, broker endpoint, size and, on replies, the round
// trip, one JSON line each. Bodies are never written. Fields: On, Path ("" =
// the Messenger's Logger), MaxBytes (rotation, default 64 MiB), MaxRate
// (records per second, default 10,000).
type TraceConfig = trace.Settings

// TraceStatus is the trace's state: on, path, records written, dropped and
// file rotations.
type TraceStatus = trace.Status

// SetTrace switches the protocol trace at run time. A file that cannot be
// opened is an error (ErrInvalidArgument) and leaves the trace off.
func (m *Messenger) SetTrace(c TraceConfig) error {
	err := m.trace.Apply(c, m.log)
	if err != nil {
		return fmt.Errorf("messenger trace: %w: %w", ErrInvalidArgument, err)
	}
	return nil
}

// TraceStatus returns the trace's state and counters.
func (m *Messenger) TraceStatus() TraceStatus { return m.trace.Status() }
