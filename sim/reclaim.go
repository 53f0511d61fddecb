package sim

import (
	"context"
	"math"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
)

// lockReclaimTimeout bounds how long the engine, acting as the next writer,
// waits for a dead writer's slot lock to be reclaimed.
const lockReclaimTimeout = 10 * time.Second

// reclaimLock acts as the next writer of the dead producer's segment (lw was
// attached before the kill) and records lock_reclaimed, stamped when the lock
// was first seen gone, or lock_reclaim_failed. dead is when the producer was
// known dead (reaped).
func (r *run) reclaimLock(ctx context.Context, f scenario.FaultSpec, lw *chaos.LockWatch, segment string, dead int64) {
	pid, holder := lw.Holder()
	start := proc.Now()
	res, err := lw.Reclaim(ctx, lockReclaimTimeout)
	if err != nil {
		r.col.engine(scenario.KindLockReclaimFailed, map[string]any{"id": f.ID, "target": f.Target, "channel": segment,
			"slot_index": res.Slot, "holder_pid": pid, "holder": holder, "stuck_seen": res.StuckSeen,
			"error": err.Error()})
		return
	}
	seen := start + res.Took.Nanoseconds()
	r.col.add(event.Event{T: seen, Node: scenario.EngineName, Kind: scenario.KindLockReclaimed, Fields: map[string]any{
		"id": f.ID, "target": f.Target, "channel": segment, "slot_index": res.Slot,
		"holder_pid": pid, "holder": holder, "by": res.By, "how": res.How,
		"write_lock_contention": res.Contention, "recovery_actions": res.Recovery,
		"stuck_seen": res.StuckSeen, "stuck_duration_ms": float64(res.StuckFor.Microseconds()) / 1000, "reacquired": res.Reacquired,
		"duration_ns": seen - dead}})
}

// intField reads an integral event field (JSON numbers decode as float64).
func intField(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		if n >= 0 && n <= math.MaxInt32 && n == math.Trunc(n) {
			return int(n), true
		}
	case int:
		return n, n >= 0
	case int64:
		return int(n), n >= 0 && n <= math.MaxInt32
	}
	return 0, false
}
