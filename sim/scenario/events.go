package scenario

import "github.com/pylabhub/plh/chaos"

// Kinds of events beyond the node's usual stream that the engine itself relies
// on or records (docs/events.md, docs/scenarios.md).
const (
	// KindLockHeld is written by a producer holding a write slot after a
	// hold_lock control line.
	KindLockHeld = chaos.LockHeldKind
	// KindLockReclaimed and KindLockReclaimFailed are recorded by the engine
	// after a kill_holding_lock fault.
	KindLockReclaimed     = "lock_reclaimed"
	KindLockReclaimFailed = "lock_reclaim_failed"
)
