package broker

import (
	"fmt"

	"github.com/pylabhub/plh/internal/trace"
)

// TraceConfig configures the protocol trace (B-13; docs/protocol.md
// "Protocol trace"): every control message the broker receives and sends,
// with type, correlation id, channel, peer, size and, on replies, the
// handling time, one JSON line each. Bodies are never written.
type TraceConfig struct {
	// On switches the trace on.
	On bool
	// Path is the JSONL file (0600, appended); "" = the broker's Logger.
	Path string
	// MaxBytes rotates the file at this size, keeping one previous file
	// (Path.1) (default 64 MiB).
	MaxBytes int64
	// MaxRate bounds the records per second; the rest are counted and
	// reported in the next record (default 10,000).
	MaxRate int
}

// TraceStatus is the trace's state (Service.TraceStatus, plh.trace()).
type TraceStatus = trace.Status

// SetTrace switches the protocol trace at run time (the admin shell's
// plh.trace). A file that cannot be opened is an error (ErrBadConfig) and
// leaves the trace off.
func (s *Service) SetTrace(c TraceConfig) error {
	err := s.trace.Set(c.On, trace.Config{Path: c.Path, MaxBytes: c.MaxBytes, MaxRate: c.MaxRate, Logger: s.cfg.Logger})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	s.cfg.Logger.Info("broker: protocol trace", "on", c.On, "path", c.Path)
	return nil
}

// TraceStatus returns the trace's state and counters.
func (s *Service) TraceStatus() TraceStatus { return s.trace.Status() }
