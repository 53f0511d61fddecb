package chaos

import "errors"

// Errors of the injectors.
var (
	// ErrNotDataBlock is returned when a segment does not carry the DataBlock
	// magic or its header describes a layout larger than the file.
	ErrNotDataBlock = errors.New("chaos: not a DataBlock segment")

	// ErrNoCommittedSlot is returned by CorruptSlot when no slot is in the
	// COMMITTED state (nothing written yet, or everything being rewritten).
	ErrNoCommittedSlot = errors.New("chaos: no committed slot to corrupt")

	// ErrBadTarget is returned by CorruptControl for an unknown target.
	ErrBadTarget = errors.New("chaos: unknown control zone target")

	// ErrNothingToCorrupt is returned by CorruptControl when the target's word
	// is not in use (no consumer registered, for heartbeats).
	ErrNothingToCorrupt = errors.New("chaos: nothing to corrupt")

	// ErrBadSignal is returned by ParseSignal for an unknown signal name.
	ErrBadSignal = errors.New("chaos: unknown signal")

	// ErrLockNotHeld is returned by WatchLock when the slot's write lock is
	// free: there is no holder whose death could be observed.
	ErrLockNotHeld = errors.New("chaos: slot write lock not held")

	// ErrHolderAlive is returned by LockWatch.Reclaim when the lock holder is
	// still running.
	ErrHolderAlive = errors.New("chaos: lock holder still alive")

	// ErrNotReclaimed is returned by LockWatch.Reclaim when the dead holder's
	// lock was not reclaimed in time (or vanished without a recovery action).
	ErrNotReclaimed = errors.New("chaos: dead writer's lock not reclaimed")

	// ErrClosed is returned by Proxy methods after Close.
	ErrClosed = errors.New("chaos: proxy closed")
)
