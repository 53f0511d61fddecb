package shm

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/blake2b"
)

// Writer produces slots into a Block. It holds at most one slot at a time; its
// methods are safe for concurrent use (a second AcquireWrite while a slot is held
// returns ErrSlotHeld). Several Writers (in one or several processes) may share a
// Block; each slot's write lock holds the identity of the writer holding it.
type Writer struct {
	b    *Block
	opts WaitOptions

	mu     sync.Mutex // serialises acquire/release; guards slot, closed and readSeen
	slot   WriteSlot
	closed bool

	// readSeen is the read_index this Writer last loaded. read_index only
	// advances, so while write_index − readSeen < N the ring has room and claim
	// leaves read_index (on the line the reader writes at every release) alone.
	readSeen uint64
}

// WriteSlot is a slot held for writing: a span of SlotSize bytes. Commit marks how
// many bytes are meaningful; Release publishes a committed slot (or aborts one that
// was not committed). The handle is reused by the Writer: do not keep it after
// Release.
type WriteSlot struct {
	w         *Writer
	e         *slotEntry
	buf       []byte
	id, idx   uint64
	n         int
	held      bool
	committed bool
}

// NewWriter returns a Writer on b. opts tunes waiting (zero = defaults).
func (b *Block) NewWriter(opts WaitOptions) (*Writer, error) {
	if b.diag {
		return nil, ErrReadOnly
	}
	w := &Writer{b: b, opts: opts}
	w.slot.w = w
	if err := b.adopt(w); err != nil {
		return nil, err
	}
	return w, nil
}

// Block returns the Block the Writer writes to.
func (w *Writer) Block() *Block { return w.b }

// AcquireWrite takes the next slot for writing. timeout 0 makes a single attempt,
// a negative timeout waits until ctx is done. It runs three steps on one deadline:
// claim an id (ordered policies: only when the ring has room, i.e. backpressure),
// lock the slot (reclaiming the lock of a dead writer), and drain readers still
// holding the slot (Latest_only: the slot is DRAINING meanwhile). It returns
// ErrTimeout (unwrapped) or ctx's error.
func (w *Writer) AcquireWrite(ctx context.Context, timeout time.Duration) (s *WriteSlot, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acquire(ctx, timeout) // one return here keeps the defers open-coded (cheap)
}

// acquire is AcquireWrite under w.mu.
func (w *Writer) acquire(ctx context.Context, timeout time.Duration) (*WriteSlot, error) {
	if w.closed || w.b.closed.Load() {
		return nil, ErrClosed
	}
	if w.slot.held {
		return nil, ErrSlotHeld
	}
	b := w.b
	wt := newWaiter(ctx, timeout, w.opts)
	id, err := b.claim(&wt, &w.readSeen)
	if err != nil {
		return nil, err
	}
	idx := id % b.lay.capacity
	e := &b.slots[idx]
	if err := b.lockSlot(&wt, e, idx); err != nil {
		return nil, err // id is a hole; see doc.go
	}
	if err := b.drain(&wt, e, id, idx); err != nil {
		return nil, err
	}
	w.slot = WriteSlot{w: w, e: e, buf: b.slotBuf(idx), id: id, idx: idx, held: true}
	return &w.slot, nil
}

// awaitRelease is the one wait of the writer's steps: it pauses until a reader
// release (or the deadline) and, when reap is set, looks for dead parties every
// reap period and once more before giving up. nil means "check again"; otherwise
// it returns the waiter's ErrTimeout or ctx error.
func (b *Block) awaitRelease(wt *waiter, seq uint32, reap bool) error {
	if reap && wt.reapDue() {
		b.reap()
		return nil
	}
	err := wt.wait(&b.h.releaseSeq, seq, &b.h.releaseWaiters)
	if err != nil && reap && wt.lastChance() && b.reap() > 0 {
		return nil
	}
	return err
}

// claim takes the next slot id (write_index++); under the ordered policies only
// while write_index − read_index < N, so the writer never reaches a slot a reader
// still needs. On timeout no id is consumed. Indices no writer or reader
// produces (read_index beyond write_index, more than N in flight) are ErrCorrupt.
// *seen is the caller's last read_index (it only advances): read_index is loaded
// only when that one leaves no room.
func (b *Block) claim(wt *waiter, seen *uint64) (uint64, error) {
	h := b.h
	var seq uint32
	armed := false // seq was loaded before the last look at the indices
	for {
		wi := atomic.LoadUint64(&h.writeIndex)
		ri := wi
		if b.sync.ordered() {
			if ri = *seen; wi-ri >= b.lay.capacity {
				ri = atomic.LoadUint64(&h.readIndex)
				*seen = ri
			}
		}
		if wi-ri < b.lay.capacity {
			if atomic.CompareAndSwapUint64(&h.writeIndex, wi, wi+1) {
				return wi, nil
			}
			continue
		}
		if !armed {
			// Full: take releaseSeq, then look again before sleeping on it, so no
			// release is missed. Loaded only here: the releaseSeq line, which every
			// reader release bumps, stays off the writer's fast path.
			seq, armed = atomic.LoadUint32(&h.releaseSeq), true
			continue
		}
		armed = false
		if err := b.checkRing(wi, ri); err != nil {
			return 0, err
		}
		if err := b.awaitRelease(wt, seq, true); err != nil {
			atomic.AddUint64(&h.writerTimeoutCount, 1)
			return 0, err
		}
	}
}

// lockSlot takes slot idx's write lock, reclaiming it from a dead writer.
func (b *Block) lockSlot(wt *waiter, e *slotEntry, idx uint64) error {
	h := b.h
	for {
		if atomic.CompareAndSwapUint64(&e.writeLock, 0, b.self) {
			atomic.StoreUint64(&e.lockSince, uint64(monoNow()))
			return nil
		}
		holder := atomic.LoadUint64(&e.writeLock)
		if holder != 0 && !b.alive(holder) {
			since := atomic.LoadUint64(&e.lockSince)
			if atomic.CompareAndSwapUint64(&e.writeLock, holder, b.self) {
				atomic.StoreUint64(&e.lockSince, uint64(monoNow()))
				atomic.AddUint64(&h.writeLockContention, 1)
				b.recoveryAction()
				b.log.Warn("reclaimed write lock of dead writer", "name", b.name, "slot", idx, "holder", unpackString(holder),
					"stuck_duration_ms", heldFor(since).Milliseconds())
				return nil
			}
			continue
		}
		seq := atomic.LoadUint32(&h.releaseSeq)
		if err := b.awaitRelease(wt, seq, false); err != nil {
			atomic.AddUint64(&h.writerTimeoutCount, 1)
			atomic.AddUint64(&h.writerLockTimeoutCount, 1)
			if holder := atomic.LoadUint64(&e.writeLock); b.foreignHolder(holder) {
				return b.corrupt("write_lock of slot %d held by live %s, neither this segment's creator, its producer nor us", idx, unpackString(holder))
			}
			return err
		}
	}
}

// drain waits (lock held) until no reader holds the slot's previous content; a
// COMMITTED slot is DRAINING meanwhile so new readers keep off. On timeout the
// slot is given back: ordered policies publish id as a skip marker, Latest_only
// restores the previous state (old data stays valid) and unlocks. A reader count
// no set of readers can reach, or one that no registered consumer accounts for
// when the wait gives up, is ErrCorrupt (the slot is given back the same way).
//
// It returns with the slot WRITING. The slot goes to WRITING before reader_count
// is looked at (spec §7.2 steps 4–6 pass through DRAINING first): both states turn
// new readers away, so the check is as safe, and a slot no reader holds, the usual
// case, costs one state store instead of two. DRAINING is set only when there are
// readers to wait for.
func (b *Block) drain(wt *waiter, e *slotEntry, id, idx uint64) error {
	h := b.h
	state, _, _ := loadState(e)
	drained := state == stateCommitted
	storeState(e, stateWriting, 0, 0)
	if atomic.LoadUint32(&e.readerCount) == 0 {
		return nil
	}
	storeState(e, stateOf(drained, state), 1, 0)
	for {
		seq := atomic.LoadUint32(&h.releaseSeq)
		rc := atomic.LoadUint32(&e.readerCount)
		if rc == 0 {
			storeState(e, stateWriting, 0, 0)
			return nil
		}
		if rc > maxPlausibleReaders {
			b.undrain(e, id, drained, state)
			return b.corrupt("reader_count %d on slot %d exceeds %d, the most readers can hold", rc, idx, maxPlausibleReaders)
		}
		if err := b.awaitRelease(wt, seq, true); err != nil {
			atomic.AddUint64(&h.writerTimeoutCount, 1)
			atomic.AddUint64(&h.writerReaderTimeoutCount, 1)
			b.undrain(e, id, drained, state)
			if rc, held, bad := b.unownedReaders(e, idx); bad {
				return b.corrupt("reader_count %d on slot %d, but registered consumers hold it %d times", rc, idx, held)
			}
			return err
		}
	}
}

// undrain gives slot e back after a failed drain (lock held by us): ordered
// policies publish id as a skip marker; Latest_only restores the state the slot
// had (a drained slot is COMMITTED again, its old data still valid) and unlocks.
func (b *Block) undrain(e *slotEntry, id uint64, drained bool, state uint8) {
	if b.sync.ordered() {
		b.markSkipped(e, id)
		return
	}
	if drained {
		state = stateCommitted
	}
	storeState(e, state, 0, 0)
	unlock(e)
}

// foreignHolder reports a write lock held, through a whole lock wait, by a live
// process that never wrote here: not us, not the creator, not the process of the
// producer heartbeat (the last one to commit).
func (b *Block) foreignHolder(holder uint64) bool {
	return holder != 0 && holder != b.self && holder != atomic.LoadUint64(&b.h.creatorID) &&
		holder != atomic.LoadUint64(&b.h.producerID) && b.alive(holder)
}

// checkRing reports ordered indices that no party produces; wi was loaded before
// ri. A read_index beyond a write_index loaded after it, or more than N ids in
// flight, never clears by waiting.
func (b *Block) checkRing(wi, ri uint64) error {
	if wi2 := atomic.LoadUint64(&b.h.writeIndex); ri > wi2 {
		return b.corrupt("read_index %d > write_index %d", ri, wi2)
	}
	if ri <= wi && wi-ri > b.lay.capacity {
		return b.corrupt("write_index %d − read_index %d > capacity %d", wi, ri, b.lay.capacity)
	}
	return nil
}

// unownedReaders reports a reader count of slot idx above the holds registered
// consumers record on it, seen twice (a reader between recording its hold and
// counting itself, or the reverse at release, is not mistaken for one).
func (b *Block) unownedReaders(e *slotEntry, idx uint64) (rc, held uint32, bad bool) {
	for range 2 {
		held = b.holdsOn(idx)
		rc = atomic.LoadUint32(&e.readerCount)
		if rc <= held {
			return rc, held, false
		}
		runtime.Gosched()
	}
	return rc, held, true
}

// holdsOn counts the holds registered consumers record on slot idx.
func (b *Block) holdsOn(idx uint64) uint32 {
	n := uint32(0)
	for i := range b.h.consumers {
		c := &b.h.consumers[i]
		if atomic.LoadUint64(&c.id) == 0 {
			continue
		}
		for k := range c.held {
			if atomic.LoadUint64(&c.held[k]) == idx+1 {
				n++
			}
		}
	}
	return n
}

// corrupt counts and logs a control-zone corruption found by a wait and returns
// ErrCorrupt wrapped with what was found.
func (b *Block) corrupt(format string, a ...any) error {
	err := fmt.Errorf("%s: %w: "+format, append([]any{b.name, ErrCorrupt}, a...)...)
	atomic.AddUint64(&b.h.slotAcquireErrors, 1)
	atomic.StoreUint64(&b.h.lastErrorTimestampNs, uint64(monoNow()))
	b.log.Error("control zone corrupt", "name", b.name, "err", err)
	return err
}

func stateOf(drained bool, state uint8) uint8 {
	if drained {
		return stateDraining
	}
	return state
}

// markSkipped publishes id as a skip marker in e (lock held by us): ordered readers
// step over it instead of waiting for a commit that never comes. Releases the lock.
// (A corrupt commit_index found on the way is repaired and logged.)
func (b *Block) markSkipped(e *slotEntry, id uint64) {
	atomic.StoreUint64(&e.id, id)
	atomic.AddUint64(&e.generation, 1)
	storeState(e, stateCommitted, 0, 1)
	_ = b.publishCommit(id)
	unlock(e)
	b.wakeReaders()
}

// unlock frees e's write lock (held by us), clearing its acquisition time first.
func unlock(e *slotEntry) {
	atomic.StoreUint64(&e.lockSince, 0)
	atomic.StoreUint64(&e.writeLock, 0)
}

// heldFor is the age of a lock taken at since (CLOCK_MONOTONIC ns; 0 = unknown
// → 0).
func heldFor(since uint64) time.Duration {
	if since == 0 {
		return 0
	}
	return time.Duration(max(0, monoNow()-int64(since)))
}

// publishCommit stores commit_index = id, never moving it back past a newer commit
// of another writer. A commit_index at or beyond write_index was never published
// by a writer (a scribble, e.g. near 2^64, would otherwise hold every later commit
// back for good): it is set to id and reported as ErrCorrupt.
func (b *Block) publishCommit(id uint64) error {
	// The usual case first: one writer, id follows the last commit (id−1 wraps to
	// invalidID for the first). One compare-and-swap takes the line once instead
	// of a load and then a CAS.
	if atomic.CompareAndSwapUint64(&b.h.commitIndex, id-1, id) {
		return nil
	}
	for {
		c := atomic.LoadUint64(&b.h.commitIndex)
		if c == invalidID || c < id {
			if atomic.CompareAndSwapUint64(&b.h.commitIndex, c, id) {
				return nil
			}
			continue
		}
		if wi := atomic.LoadUint64(&b.h.writeIndex); c < wi {
			return nil // a newer commit by another writer
		}
		if atomic.CompareAndSwapUint64(&b.h.commitIndex, c, id) {
			b.recoveryAction()
			return b.corrupt("commit_index %d ≥ write_index %d; set back to %d", c, atomic.LoadUint64(&b.h.writeIndex), id)
		}
	}
}

// ID returns the slot id (position in the stream, from 0).
func (s *WriteSlot) ID() uint64 { return s.id }

// Index returns the slot's index in the ring.
func (s *WriteSlot) Index() int { return int(s.idx) }

// Bytes returns the whole slot span (SlotSize bytes) to write into.
// IMPORTANT: valid until Release; the memory is shared (see package doc on faults).
func (s *WriteSlot) Bytes() []byte { return s.buf }

// Write copies p into the slot at off. len(p) must be > 0 and off+len(p) ≤ SlotSize.
func (s *WriteSlot) Write(p []byte, off int) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if !s.held {
		return ErrReleased
	}
	if len(p) == 0 || off < 0 || off+len(p) > len(s.buf) {
		return ErrRange
	}
	copy(s.buf[off:], p)
	return nil
}

// Commit marks n bytes as written (n ≤ SlotSize); the slot becomes visible at
// Release. The length is not stored in the segment: encode it in the payload.
func (s *WriteSlot) Commit(n int) error {
	if !s.held {
		return ErrReleased
	}
	if n < 0 || n > len(s.buf) {
		return ErrRange
	}
	s.n, s.committed = n, true
	return nil
}

// UpdateChecksum stores the slot's BLAKE2b hash now (ChecksumManual).
func (s *WriteSlot) UpdateChecksum() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if !s.held {
		return ErrReleased
	}
	s.w.b.storeSlotChecksum(s.idx)
	return nil
}

// Release publishes a committed slot (checksums under Enforced, generation++,
// COMMITTED, commit_index, producer heartbeat, unlock), or aborts an uncommitted one
// (Latest_only: FREE; ordered policies: a skip marker, so readers do not stall).
// Idempotent: releasing a released handle returns nil. ErrCorrupt means the slot
// was published but commit_index had been scribbled beyond write_index and was
// set back.
func (s *WriteSlot) Release() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if !s.held {
		return nil
	}
	s.held = false
	b, h, e := w.b, w.b.h, s.e
	if b.closed.Load() {
		return ErrClosed
	}
	if !s.committed {
		if b.sync.ordered() {
			b.markSkipped(e, s.id)
		} else {
			storeState(e, stateFree, 0, 0)
			unlock(e)
		}
		b.wakeWriters()
		return nil
	}
	if b.csum == ChecksumEnforced {
		b.storeSlotChecksum(s.idx)
		if b.lay.flexSize > 0 {
			b.storeFlexChecksum()
		}
	}
	atomic.StoreUint64(&e.id, s.id)
	atomic.AddUint64(&e.generation, 1)
	storeState(e, stateCommitted, 0, 0)
	cerr := b.publishCommit(s.id) // several writers may commit out of order: never move back
	atomic.AddUint64(&h.totalSlotsWritten, 1)
	b.producerHeartbeat()
	unlock(e)
	b.wakeReaders()
	return cerr // the slot is published even when commit_index had to be repaired
}

// Abort releases the slot without publishing it (as Release without Commit).
func (s *WriteSlot) Abort() error {
	s.w.mu.Lock()
	s.committed = false
	s.w.mu.Unlock()
	return s.Release()
}

// Publish commits the whole slot and releases it.
func (s *WriteSlot) Publish() error {
	if err := s.Commit(len(s.buf)); err != nil {
		return err
	}
	return s.Release()
}

// Write copies p into the next slot and publishes it: AcquireWrite + Write + Commit
// + Release. It returns the slot id.
func (w *Writer) Write(ctx context.Context, timeout time.Duration, p []byte) (uint64, error) {
	s, err := w.AcquireWrite(ctx, timeout)
	if err != nil {
		return 0, err
	}
	if err := s.Write(p, 0); err != nil {
		s.Abort()
		return 0, err
	}
	s.Commit(len(p))
	return s.id, s.Release()
}

// Heartbeat refreshes the producer heartbeat (identity, now) in the segment.
func (w *Writer) Heartbeat() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if w.b.closed.Load() {
		return ErrClosed
	}
	w.b.producerHeartbeat()
	return nil
}

// UpdateFlexChecksum stores the flex zone's hash now (after changing it outside a
// slot commit, or under ChecksumManual).
func (w *Writer) UpdateFlexChecksum() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if w.b.lay.flexSize == 0 {
		return ErrNoFlexZone
	}
	w.b.storeFlexChecksum()
	return nil
}

// Close aborts a held slot and detaches the Writer. Nil-safe and idempotent.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	held := w.slot.held && !w.closed
	w.mu.Unlock()
	if held {
		w.slot.Abort()
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.b.disown(w)
	return nil
}

func (b *Block) producerHeartbeat() {
	if atomic.LoadUint64(&b.h.producerID) != b.self { // the same writer commits again and again: skip the store
		atomic.StoreUint64(&b.h.producerID, b.self)
	}
	atomic.StoreUint64(&b.h.producerHB, uint64(monoNow()))
}

func (b *Block) storeSlotChecksum(idx uint64) {
	sum := blake2b.Sum256(b.slotBuf(idx))
	c := b.csumEntry(idx)
	copy(c[:32], sum[:])
	c[32] = 1
}

func (b *Block) storeFlexChecksum() {
	sum := blake2b.Sum256(b.Flex())
	fc := &b.h.flexChecksums[0]
	fc.hash = sum
	fc.valid = 1
}

// verifySlotChecksum reports whether slot idx matches its stored hash.
func (b *Block) verifySlotChecksum(idx uint64) bool {
	c := b.csumEntry(idx)
	if c[32] != 1 {
		return false
	}
	sum := blake2b.Sum256(b.slotBuf(idx))
	return [32]byte(c[:32]) == sum
}

// verifyFlexChecksum reports whether the flex zone matches its stored hash.
func (b *Block) verifyFlexChecksum() bool {
	if b.lay.flexSize == 0 {
		return false
	}
	fc := &b.h.flexChecksums[0]
	return fc.valid == 1 && fc.hash == blake2b.Sum256(b.Flex())
}

func (b *Block) recoveryAction() {
	atomic.AddUint64(&b.h.recoveryActionsCount, 1)
	atomic.StoreUint64(&b.h.lastErrorTimestampNs, uint64(monoNow()))
}
