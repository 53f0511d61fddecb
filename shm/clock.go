package shm

import (
	"time"

	"github.com/pylabhub/plh/internal/proc"
)

// monoBase pairs one CLOCK_MONOTONIC reading with the runtime's monotonic clock, so
// monoNow gives CLOCK_MONOTONIC ns (comparable across processes) through the vDSO
// without a syscall per call: the Go runtime's monotonic clock is CLOCK_MONOTONIC.
var (
	monoBaseT  = time.Now()
	monoBaseNs = proc.Now()
)

// monoNow returns CLOCK_MONOTONIC in nanoseconds without allocating.
func monoNow() int64 { return monoBaseNs + int64(time.Since(monoBaseT)) }

// monoAt converts t, a reading of this process's clock, to CLOCK_MONOTONIC ns.
func monoAt(t time.Time) int64 { return monoBaseNs + int64(t.Sub(monoBaseT)) }
