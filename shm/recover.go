package shm

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// RecoveryResult is the outcome of a recovery action (spec §9.5).
type RecoveryResult int

// Recovery results, numbered as the original's.
const (
	RecoverySuccess     RecoveryResult = 0
	RecoveryFailed      RecoveryResult = 1
	RecoveryUnsafe      RecoveryResult = 2 // a live process is involved and force was not given
	RecoveryNotStuck    RecoveryResult = 3
	RecoveryInvalidSlot RecoveryResult = 4
)

func (r RecoveryResult) String() string {
	return [...]string{"SUCCESS", "FAILED", "UNSAFE", "NOT_STUCK", "INVALID_SLOT"}[r]
}

// SlotState is a slot's state in the coordination entry.
type SlotState uint8

// Slot states.
const (
	SlotFree      SlotState = stateFree
	SlotWriting   SlotState = stateWriting
	SlotCommitted SlotState = stateCommitted
	SlotDraining  SlotState = stateDraining
)

func (s SlotState) String() string {
	switch s {
	case SlotFree:
		return "FREE"
	case SlotWriting:
		return "WRITING"
	case SlotCommitted:
		return "COMMITTED"
	case SlotDraining:
		return "DRAINING"
	}
	return fmt.Sprintf("INVALID(%d)", uint8(s))
}

// SlotDiagnosis describes one slot's coordination entry.
type SlotDiagnosis struct {
	CommitIndex   uint64 // the block's commit_index (as the original reports it)
	Index         int
	SlotID        uint64 // id last committed or skipped in this slot
	State         SlotState
	Writer        string // identity "pid/start" of the lock holder, "" = unlocked
	WriterPid     int
	ReaderCount   uint32
	Generation    uint64
	WriterWaiting bool
	Skipped       bool
	IsStuck       bool // locked by a dead writer
	// LockHeld is how long the current holder has held the write lock (from the
	// acquisition time the writer stores in the slot entry, B-22); 0 when
	// unlocked, or in the instant between taking the lock and storing the time.
	LockHeld time.Duration
	// StuckDuration is LockHeld when IsStuck (the original's stuck_duration_ms),
	// else 0.
	StuckDuration time.Duration
}

// DiagnoseSlot reads slot i's entry.
func (b *Block) DiagnoseSlot(i int) (d SlotDiagnosis, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return d, ErrClosed
	}
	if i < 0 || uint64(i) >= b.lay.capacity {
		return d, fmt.Errorf("%w: slot %d of %d", ErrRange, i, b.lay.capacity)
	}
	return diagnoseEntry(&b.slots[i], i, atomic.LoadUint64(&b.h.commitIndex), b.alive), nil
}

// Diagnose reads every slot's entry.
func (b *Block) Diagnose() ([]SlotDiagnosis, error) {
	out := make([]SlotDiagnosis, 0, b.lay.capacity)
	for i := range int(b.lay.capacity) {
		d, err := b.DiagnoseSlot(i)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// recover runs f on slot i under the fault guard.
func (b *Block) recoverSlot(i int, f func(e *slotEntry) RecoveryResult) (res RecoveryResult) {
	var err error
	defer func() {
		if err != nil {
			res = RecoveryFailed
		}
	}()
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return RecoveryFailed
	}
	if i < 0 || uint64(i) >= b.lay.capacity {
		return RecoveryInvalidSlot
	}
	res = f(&b.slots[i])
	if res == RecoverySuccess {
		b.recoveryAction()
		b.wakeWriters()
		b.wakeReaders()
	}
	return res
}

// ForceReset resets slot i to FREE with no lock and no readers. Without force it
// refuses (UNSAFE) while a live writer holds the lock or readers hold the slot.
func (b *Block) ForceReset(i int, force bool) RecoveryResult {
	return b.recoverSlot(i, func(e *slotEntry) RecoveryResult {
		lock := atomic.LoadUint64(&e.writeLock)
		if !force && (lock != 0 && b.alive(lock) || atomic.LoadUint32(&e.readerCount) > 0) {
			return RecoveryUnsafe
		}
		unlock(e)
		atomic.StoreUint32(&e.readerCount, 0)
		storeState(e, stateFree, 0, 0)
		b.log.Warn("slot force-reset", "name", b.name, "slot", i)
		return RecoverySuccess
	})
}

// ForceResetAll applies ForceReset to every slot; the result is the first
// non-success.
func (b *Block) ForceResetAll(force bool) RecoveryResult {
	res := RecoverySuccess
	for i := range int(b.lay.capacity) {
		if r := b.ForceReset(i, force); r != RecoverySuccess && res == RecoverySuccess {
			res = r
		}
	}
	return res
}

// ReleaseZombieReaders zeroes slot i's reader count (readers that died without
// releasing) and turns DRAINING back into COMMITTED. NOT_STUCK when no reader holds
// it; UNSAFE without force while a live writer holds the lock.
func (b *Block) ReleaseZombieReaders(i int, force bool) RecoveryResult {
	return b.recoverSlot(i, func(e *slotEntry) RecoveryResult {
		if atomic.LoadUint32(&e.readerCount) == 0 {
			return RecoveryNotStuck
		}
		if lock := atomic.LoadUint64(&e.writeLock); !force && lock != 0 && b.alive(lock) {
			return RecoveryUnsafe
		}
		atomic.StoreUint32(&e.readerCount, 0)
		if state, w, sk := loadState(e); state == stateDraining {
			storeState(e, stateCommitted, w, sk)
		}
		return RecoverySuccess
	})
}

// ReleaseZombieWriter frees slot i's lock held by a dead writer (FREE state).
func (b *Block) ReleaseZombieWriter(i int) RecoveryResult {
	return b.recoverSlot(i, func(e *slotEntry) RecoveryResult {
		lock := atomic.LoadUint64(&e.writeLock)
		if lock == 0 {
			return RecoveryNotStuck
		}
		if b.alive(lock) {
			return RecoveryUnsafe
		}
		if !atomic.CompareAndSwapUint64(&e.writeLock, lock, 0) {
			return RecoveryFailed
		}
		storeState(e, stateFree, 0, 0)
		return RecoverySuccess
	})
}

// CleanupDeadConsumers frees the heartbeat entries of consumers whose process is
// gone, giving back the slots they held and their Sync_reader cursors. It returns
// how many were freed.
func (b *Block) CleanupDeadConsumers() (n int, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return 0, ErrClosed
	}
	for i := range b.h.consumers {
		id := atomic.LoadUint64(&b.h.consumers[i].id)
		if id != 0 && id != reclaiming && !b.alive(id) && b.reclaimConsumer(i, id) {
			n++
		}
	}
	return n, nil
}

// Reap runs what a blocked writer runs: CleanupDeadConsumers, and for ordered
// policies turns a slot left unfinished by a dead writer at read_index into a skip
// marker. It returns how many consumers and unfinished slots were reclaimed.
func (b *Block) Reap() (n int, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return 0, ErrClosed
	}
	return b.reap(), nil
}
