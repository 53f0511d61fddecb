package shm

import (
	"context"
	"sync/atomic"
	"time"
)

// maxSleep caps one futex sleep so deadlines, ctx cancellation and liveness checks
// are noticed even when nobody wakes the waiter.
const maxSleep = 5 * time.Millisecond

// clockEvery: while spinning, a waiter reads the clock (and ctx) once per this many
// pauses only. A clock read costs more than one attempt (time.Now was half of a
// spinning reader's CPU profile), and every read stretches the gap between two
// looks at the ring; deadlines are noticed a few microseconds later at most.
const clockEvery = 32

// spinLoads bounds one spinning pause's look at the futex word.
const spinLoads = 64

// waiter paces one blocking operation: it spins for a bounded time, then sleeps on a
// shared futex. It lives on the caller's stack and allocates nothing.
//
// The protocol with the waker, on a futex word W and a sleeper flag C (both in the
// segment): the waiter loads W, checks its condition, sets C, re-reads W and sleeps
// only while W is unchanged; the waker changes the state, then changes W, then, if C
// is set, clears it and wakes every sleeper on W. With sequentially consistent
// atomics no wake-up is lost: a waiter that read W before the change set C before
// that, so the waker sees C and wakes it (or the kernel finds W changed). Clearing C
// makes the waker's next changes skip the system call until a waiter sleeps again:
// a woken process takes a while to run, and meanwhile every commit (or release)
// would otherwise wake it again. A waiter woken or timed out sets C again before
// its next sleep.
type waiter struct {
	ctx      context.Context
	timeout  time.Duration // 0 = single attempt, < 0 = none
	spin     time.Duration
	reap     time.Duration
	start    time.Time
	lastReap time.Time
	now      time.Time // the last clock read
	n        int
	reaped   bool // lastChance used
}

// lastChance reports, once per operation with a non-zero timeout, that the caller
// should look for dead processes before giving up (short timeouts would otherwise
// never reach the periodic reap).
func (w *waiter) lastChance() bool {
	if w.timeout == 0 || w.reaped {
		return false
	}
	w.reaped = true
	return true
}

func newWaiter(ctx context.Context, timeout time.Duration, o WaitOptions) waiter {
	return waiter{ctx: ctx, timeout: timeout, spin: o.spin(), reap: o.reapEvery()}
}

// wait pauses once. It returns ErrTimeout or the ctx's error when time is up.
func (w *waiter) wait(word *uint32, seen uint32, sleeping *uint32) error {
	if w.timeout == 0 {
		return ErrTimeout
	}
	if w.n == 0 {
		w.now = time.Now()
		w.start, w.lastReap = w.now, w.now
	} else if w.n%clockEvery != 0 && w.now.Sub(w.start) < w.spin {
		w.n++
		// Spinning: watch the futex word alone (one cache line, as a bare ring
		// watches its index), and let the caller look at the ring again as soon as
		// it moves or after spinLoads looks. Bounded, so a condition that changes
		// without the word is still seen.
		for i := 0; i < spinLoads && atomic.LoadUint32(word) == seen; i++ {
		}
		return nil
	} else {
		w.now = time.Now()
	}
	w.n++
	waited := w.now.Sub(w.start)
	if w.timeout > 0 && waited >= w.timeout {
		return ErrTimeout
	}
	if err := ctxErr(w.ctx); err != nil {
		return err
	}
	if waited < w.spin {
		return nil
	}
	d := maxSleep
	if w.timeout > 0 && w.timeout-waited < d {
		d = w.timeout - waited
	}
	atomic.StoreUint32(sleeping, 1)
	if atomic.LoadUint32(word) == seen {
		futexWait(word, seen, d)
	}
	return nil
}

// mono returns the waiter's last clock reading as CLOCK_MONOTONIC ns, or 0 when it
// has not read the clock yet. While spinning the reading is at most clockEvery
// pauses old, after a futex sleep at most maxSleep: recent enough for a heartbeat
// (judged in seconds), and it spares a clock read per slot to a reader that waited.
func (w *waiter) mono() int64 {
	if w.n == 0 {
		return 0
	}
	return monoAt(w.now)
}

// reapDue reports (once per period) that the caller has been blocked long enough to
// look for dead processes (by the last clock read of wait).
func (w *waiter) reapDue() bool {
	if w.n == 0 || w.now.Sub(w.lastReap) < w.reap {
		return false
	}
	w.lastReap = w.now
	return true
}

// wakeWriters signals writers waiting for reader progress (release, read_index).
func (b *Block) wakeWriters() {
	atomic.AddUint32(&b.h.releaseSeq, 1)
	wake(&b.h.releaseSeq, &b.h.releaseWaiters)
}

// wakeReaders signals readers waiting for a commit (commit_index changed).
func (b *Block) wakeReaders() {
	wake(low32(&b.h.commitIndex), &b.h.commitWaiters)
}

// wake wakes the sleepers on word when the sleeper flag is set, clearing it (see
// waiter). The flag is loaded first: when nobody sleeps, as while both sides spin,
// the waker neither writes it nor makes a system call.
func wake(word, sleeping *uint32) {
	if atomic.LoadUint32(sleeping) != 0 && atomic.SwapUint32(sleeping, 0) != 0 {
		futexWake(word)
	}
}

// Slot state word helpers (byte 0 state, byte 1 writer_waiting, byte 2 skipped).
func loadState(e *slotEntry) (state, waiting, skipped uint8) {
	w := atomic.LoadUint32(&e.state)
	return uint8(w), uint8(w >> 8), uint8(w >> 16)
}

func storeState(e *slotEntry, state, waiting, skipped uint8) {
	atomic.StoreUint32(&e.state, uint32(state)|uint32(waiting)<<8|uint32(skipped)<<16)
}

// maxStore raises *p to v (never lowers it).
func maxStore(p *uint64, v uint64) {
	for {
		old := atomic.LoadUint64(p)
		if old >= v || atomic.CompareAndSwapUint64(p, old, v) {
			return
		}
	}
}

// decSat decrements *p unless it is 0; it returns the value before.
func decSat(p *uint32) uint32 {
	for {
		old := atomic.LoadUint32(p)
		if old == 0 || atomic.CompareAndSwapUint32(p, old, old-1) {
			return old
		}
	}
}
