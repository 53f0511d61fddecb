package admit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter writes at most one log line per interval and counts the lines it
// did not write; the next line written carries that count as "suppressed".
// The zero value is not usable; make one with NewLimiter. Safe for concurrent use.
type Limiter struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// NewLimiter returns a Limiter writing to log (nil: discard) at most once per
// every (<= 0: once per second).
func NewLimiter(log *slog.Logger, every time.Duration) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = time.Second
	}
	return &Limiter{log: log, every: every}
}

// Log writes msg with args at lvl unless a line was written less than the
// interval ago; then it counts it and writes it at Debug only (seen only by a
// logger that asked for debug lines). It reports whether the line was written
// at lvl.
func (l *Limiter) Log(lvl slog.Level, msg string, args ...any) bool {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		l.log.Debug(msg, args...)
		return false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), lvl, msg, args...)
	return true
}
