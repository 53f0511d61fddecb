package shm

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// SpinLock is one of the 8 shared spinlocks in the header (spec §14), for
// coordinating flex-zone updates between processes. The owner is a packed process
// identity plus an owner token (the original's thread id; in Go, any non-zero value
// the caller chooses per lock holder, e.g. a goroutine-owned counter). A lock held by
// a dead process is reclaimed. Locking is recursive for the same (process, token).
// The typed transaction layer does not take these locks.
type SpinLock struct {
	b *Block
	s *spinlockState
}

// SpinLock returns shared lock i (0..7).
func (b *Block) SpinLock(i int) (*SpinLock, error) {
	if i < 0 || i >= maxSpinlocks {
		return nil, fmt.Errorf("%w: spinlock %d of %d", ErrRange, i, maxSpinlocks)
	}
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return &SpinLock{b: b, s: &b.h.spinlocks[i]}, nil
}

// Lock takes the lock for token (≠ 0). timeout < 0 waits until ctx is done, 0 tries
// once (unlike the original, where 0 meant infinite).
func (l *SpinLock) Lock(ctx context.Context, token uint64, timeout time.Duration) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if token == 0 {
		return fmt.Errorf("%w: spinlock token 0", ErrRange)
	}
	b, s := l.b, l.s
	wt := newWaiter(ctx, timeout, WaitOptions{})
	for {
		owner := atomic.LoadUint64(&s.owner)
		switch {
		case owner == b.self && atomic.LoadUint64(&s.ownerTid) == token:
			atomic.AddUint32(&s.recursion, 1)
			return nil
		case owner == 0:
			if atomic.CompareAndSwapUint64(&s.owner, 0, b.self) {
				l.took(token)
				return nil
			}
			continue
		case !b.alive(owner):
			if atomic.CompareAndSwapUint64(&s.owner, owner, b.self) {
				b.recoveryAction()
				b.log.Warn("reclaimed spinlock of dead process", "name", b.name, "owner", unpackString(owner))
				l.took(token)
				return nil
			}
			continue
		}
		seq := atomic.LoadUint32(&b.h.releaseSeq)
		if err := wt.wait(&b.h.releaseSeq, seq, &b.h.releaseWaiters); err != nil {
			return err
		}
	}
}

func (l *SpinLock) took(token uint64) {
	atomic.StoreUint64(&l.s.ownerTid, token)
	atomic.StoreUint32(&l.s.recursion, 1)
	atomic.AddUint64(&l.s.generation, 1)
}

// Unlock releases one level of the lock held for token.
func (l *SpinLock) Unlock(token uint64) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	s := l.s
	if atomic.LoadUint64(&s.owner) != l.b.self || atomic.LoadUint64(&s.ownerTid) != token {
		return fmt.Errorf("%w: spinlock not held by this owner", ErrRange)
	}
	if atomic.AddUint32(&s.recursion, ^uint32(0)) > 0 {
		return nil
	}
	atomic.StoreUint64(&s.ownerTid, 0)
	atomic.AddUint64(&s.generation, 1)
	atomic.StoreUint64(&s.owner, 0)
	l.b.wakeWriters()
	return nil
}
