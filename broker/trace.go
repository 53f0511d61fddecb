package broker

import (
	"fmt"

	"github.com/pylabhub/plh/internal/trace"
)

// TraceConfig configures the protocol trace (B-13; docs/protocol.md
// "Protocol trace"): every control message the broker receives and sends,
// with type, correlation id, channel, peer, size and, on replies, the
// handling time, one JSON line each. Bodies are never written. The same type
// configures a Messenger's trace (hub.TraceConfig).
type TraceConfig = trace.Settings

// TraceStatus is the trace's state (Service.TraceStatus, plh.trace()).
type TraceStatus = trace.Status

// SetTrace switches the protocol trace at run time (the admin shell's
// plh.trace). A file that cannot be opened is an error (ErrBadConfig) and
// leaves the trace off.
func (s *Service) SetTrace(c TraceConfig) error {
	err := s.trace.Apply(c, s.cfg.Logger)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	s.cfg.Logger.Info("broker: protocol trace", "on", c.On, "path", c.Path)
	return nil
}

// TraceStatus returns the trace's state and counters.
func (s *Service) TraceStatus() TraceStatus { return s.trace.Status() }
