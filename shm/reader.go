package shm

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ReaderOptions tunes NewReader.
type ReaderOptions struct {
	UID  string // consumer uid stored in the heartbeat entry (≤ 39 bytes)
	Name string // consumer name (≤ 31 bytes)
	Wait WaitOptions
}

// Reader consumes slots from a Block according to its sync policy. It registers a
// consumer heartbeat entry (one of 8) on creation and frees it on Close. A Reader may
// hold up to 4 slots at once; its methods are safe for concurrent use.
type Reader struct {
	b    *Block
	opts ReaderOptions

	mu           sync.Mutex // guards everything below
	entry        int        // consumer heartbeat entry, -1 = none
	lastConsumed uint64
	held         [maxHeldPerRead]ReadSlot
	closed       bool
	group        *GroupReader // set when the Reader is a group member's (group.go)
}

// ReadSlot is a slot held for reading. Release it when done; the handle is reused
// by the Reader afterwards.
type ReadSlot struct {
	r      *Reader
	e      *slotEntry
	buf    []byte
	id     uint64
	idx    uint64
	gen    uint64
	hold   int // index in the heartbeat entry's held[] (-1 = untracked)
	active bool
}

// NewReader registers a consumer on b: it takes a free heartbeat entry (when all 8
// are taken it logs a warning; a Sync_reader Reader then cannot read), and for
// Sync_reader joins at the latest committed slot.
func (b *Block) NewReader(opts ReaderOptions) (r *Reader, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return nil, ErrClosed
	}
	r = &Reader{b: b, opts: opts, entry: -1, lastConsumed: invalidID}
	for i := range r.held {
		r.held[i].r = r
	}
	if !b.diag {
		r.entry = b.registerConsumer(opts.UID, opts.Name)
		if r.entry < 0 && b.reapConsumers() > 0 { // entries of dead consumers (Latest_only never blocks to reap)
			r.entry = b.registerConsumer(opts.UID, opts.Name)
		}
		if r.entry < 0 {
			b.log.Warn("consumer heartbeat pool full", "name", b.name)
		}
	}
	if err := b.adopt(r); err != nil {
		b.unregisterConsumer(r.entry)
		return nil, err
	}
	return r, nil
}

// registerConsumer wins a free entry first, then writes identity (§9.2 Go choice).
func (b *Block) registerConsumer(uid, name string) int {
	h := b.h
	for i := range h.consumers {
		c := &h.consumers[i]
		if !atomic.CompareAndSwapUint64(&c.id, 0, b.self) {
			continue
		}
		atomic.StoreUint64(&c.lastHB, uint64(monoNow()))
		putCString(c.uid[:], uid)
		putCString(c.name[:], name)
		for k := range c.held {
			atomic.StoreUint64(&c.held[k], 0)
		}
		if b.sync == SyncReader {
			// Join at the latest commit, unless the tail has already passed it (then
			// the writer may be overwriting it): join at the tail.
			pos := uint64(0)
			if ci := atomic.LoadUint64(&h.commitIndex); ci != invalidID {
				pos = max(ci, atomic.LoadUint64(&h.readIndex))
			}
			atomic.StoreUint64(&h.syncPositions[i], pos)
		}
		atomic.AddUint32(&h.activeConsumer, 1)
		return i
	}
	return -1
}

// unregisterConsumer frees entry i if it is still ours (marked reclaiming while
// cleared, so nobody takes it half-cleared), and recomputes the Sync_reader tail.
// An entry taken over by another consumer is left alone.
func (b *Block) unregisterConsumer(i int) {
	if i < 0 {
		return
	}
	h := b.h
	c := &h.consumers[i]
	if atomic.LoadUint64(&c.id) == b.self {
		atomic.StoreUint64(&c.lastHB, uint64(monoNow())) // no reaper takes it for stuck meanwhile
	}
	if !atomic.CompareAndSwapUint64(&c.id, b.self, reclaiming) {
		b.log.Warn("consumer heartbeat entry no longer ours at close; left alone", "name", b.name, "entry", i)
		return
	}
	clear(c.uid[:])
	clear(c.name[:])
	for k := range c.held {
		atomic.StoreUint64(&c.held[k], 0)
	}
	atomic.StoreUint64(&h.syncPositions[i], 0)
	atomic.StoreUint64(&c.id, 0)
	decSat(&h.activeConsumer)
	if b.sync == SyncReader {
		b.recomputeReadIndex()
	}
	b.wakeWriters()
}

// recomputeReadIndex sets read_index to the smallest Sync_reader position of the
// registered consumers (never lowering it). With no consumer it stays.
func (b *Block) recomputeReadIndex() {
	h := b.h
	lowest, any := ^uint64(0), false
	for i := range h.consumers {
		id := atomic.LoadUint64(&h.consumers[i].id)
		if id == 0 || id == reclaiming {
			continue
		}
		if p := atomic.LoadUint64(&h.syncPositions[i]); p < lowest {
			lowest = p
		}
		any = true
	}
	if any {
		maxStore(&h.readIndex, lowest)
	}
}

// Block returns the Block the Reader reads from.
func (r *Reader) Block() *Block { return r.b }

// AcquireRead returns the next slot by policy: Latest_only the newest commit not yet
// consumed by this Reader; Single_reader read_index; Sync_reader this Reader's
// cursor. timeout 0 makes one attempt, negative waits until ctx is done. It returns
// ErrTimeout (unwrapped) or ctx's error when nothing became ready.
func (r *Reader) AcquireRead(ctx context.Context, timeout time.Duration) (s *ReadSlot, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if r.b.diag {
		return nil, ErrReadOnly
	}
	b, h := r.b, r.b.h
	var wt waiter
	word := low32(&h.commitIndex)
	var seen uint32
	for retries, first := 0, true; ; {
		if !first {
			seen = atomic.LoadUint32(word)
		}
		s, retry, err := r.attempt(wt.mono())
		if s != nil || err != nil {
			return s, err
		}
		// Retry at once after a skip marker or a lapped slot, but boundedly: a
		// corrupt header must not spin us forever.
		if retry && retries < 2*int(b.lay.capacity)+8 {
			retries++
			continue
		}
		retries = 0
		if first {
			// The first attempt did not load the futex word (when the slot is
			// ready, nothing else here touches that line). Look again with it
			// loaded before waiting on it, so no commit is missed.
			first = false
			wt = newWaiter(ctx, timeout, r.opts.Wait)
			if timeout != 0 { // a single attempt has been made: time is up at once
				continue
			}
		}
		if wt.reapDue() { // blocked a while: look for corruption and the dead
			if err := r.checkIndices(); err != nil {
				return nil, err
			}
			if b.sync.ordered() {
				b.reap()
			}
			continue
		}
		// r.mu is not held while waiting: another goroutine may release a slot.
		if err := wt.wait(word, seen, &h.commitWaiters); err != nil {
			if cerr := r.checkIndices(); cerr != nil {
				return nil, cerr
			}
			atomic.AddUint64(&h.readerTimeoutCount, 1)
			return nil, err
		}
	}
}

// attempt makes one acquisition attempt under r.mu. now is a recent
// CLOCK_MONOTONIC reading for the heartbeat, or 0 to read the clock.
func (r *Reader) attempt(now int64) (s *ReadSlot, retry bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.b.closed.Load() {
		return nil, false, ErrClosed
	}
	if r.b.sync == SyncReader && r.entry < 0 {
		atomic.AddUint64(&r.b.h.slotAcquireErrors, 1)
		return nil, false, ErrNoConsumerEntry
	}
	if err := r.checkEntry(); err != nil {
		return nil, false, err
	}
	slot := -1
	for i := range r.held {
		if !r.held[i].active {
			slot = i
			break
		}
	}
	if slot < 0 {
		return nil, false, ErrSlotHeld
	}
	next, ok := r.next()
	if !ok {
		return nil, false, nil
	}
	s, retry = r.tryAcquire(next, slot, now)
	return s, retry, nil
}

// next chooses the id to read by policy (§8); false when there is none.
func (r *Reader) next() (uint64, bool) {
	h := r.b.h
	c := atomic.LoadUint64(&h.commitIndex)
	if c == invalidID {
		return 0, false
	}
	switch r.b.sync {
	case LatestOnly:
		return c, c != r.lastConsumed
	case SingleReader:
		ri := atomic.LoadUint64(&h.readIndex)
		return ri, c >= ri
	default:
		p := atomic.LoadUint64(&h.syncPositions[r.entry])
		return p, c >= p
	}
}

// checkIndices reports indices no party produces (commit_index at or beyond
// write_index; read_index or this Reader's cursor beyond it) as ErrCorrupt:
// waiting for them would never end. write_index is loaded last, so legitimate
// values always pass. It runs only while the Reader waits (write_index lives on
// the writer's cache line; the read path does not touch it).
func (r *Reader) checkIndices() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.b.closed.Load() {
		return nil
	}
	h := r.b.h
	c := atomic.LoadUint64(&h.commitIndex)
	id, field := uint64(0), "read_index"
	switch {
	case r.b.sync == SingleReader:
		id = atomic.LoadUint64(&h.readIndex)
	case r.b.sync == SyncReader && r.entry >= 0:
		id, field = atomic.LoadUint64(&h.syncPositions[r.entry]), "position"
	}
	wi := atomic.LoadUint64(&h.writeIndex)
	if c != invalidID && c >= wi {
		return r.b.corrupt("commit_index %d ≥ write_index %d", c, wi)
	}
	if id > wi {
		return r.b.corrupt("%s %d > write_index %d (consumer entry %d)", field, id, wi, r.entry)
	}
	return nil
}

// ownsEntry reports whether the Reader has no entry or its entry still holds our
// identity.
func (r *Reader) ownsEntry() bool {
	return r.entry < 0 || atomic.LoadUint64(&r.b.h.consumers[r.entry].id) == r.b.self
}

// checkEntry reports ErrEntryLost when this Reader's heartbeat entry no longer
// holds our identity (it was reclaimed and may belong to another consumer now).
func (r *Reader) checkEntry() error {
	if r.ownsEntry() {
		return nil
	}
	return fmt.Errorf("%s: %w: entry %d now holds %s", r.b.name, ErrEntryLost, r.entry,
		unpackString(atomic.LoadUint64(&r.b.h.consumers[r.entry].id)))
}

// tryAcquire makes one attempt at slot id next. retry reports that the caller should
// choose again at once (a skip marker was stepped over, or the slot moved on). now
// is stored as the heartbeat (0: read the clock).
func (r *Reader) tryAcquire(next uint64, slot int, now int64) (s *ReadSlot, retry bool) {
	b, h := r.b, r.b.h
	idx := next % b.lay.capacity
	e := &b.slots[idx]
	state, _, skipped := loadState(e)
	if state != stateCommitted || atomic.LoadUint64(&e.id) != next {
		atomic.AddUint64(&h.readerNotReadyCount, 1)
		if b.sync == LatestOnly && atomic.LoadUint64(&e.id) > next && state == stateCommitted {
			return nil, true // overwritten by a newer commit: choose again
		}
		return nil, false
	}
	if skipped == 1 {
		if b.sync.ordered() {
			r.advance(next)
			b.wakeWriters()
			return nil, true
		}
		return nil, false
	}
	hold := r.recordHold(idx)
	atomic.AddUint32(&e.readerCount, 1)
	state, _, skipped = loadState(e)
	if state != stateCommitted || skipped == 1 || atomic.LoadUint64(&e.id) != next {
		decSat(&e.readerCount)
		r.clearHold(hold)
		atomic.AddUint64(&h.readerRaceDetected, 1)
		b.wakeWriters()
		return nil, false
	}
	if r.entry >= 0 {
		if now == 0 {
			now = monoNow()
		}
		atomic.StoreUint64(&h.consumers[r.entry].lastHB, uint64(now))
	}
	s = &r.held[slot]
	*s = ReadSlot{r: r, e: e, buf: b.slotBuf(idx), id: next, idx: idx, gen: atomic.LoadUint64(&e.generation), hold: hold, active: true}
	return s, false
}

// advance moves this consumer's ordered position past id (after a successful
// release or over a skip marker). The caller wakes writers.
func (r *Reader) advance(id uint64) {
	b, h := r.b, r.b.h
	if r.group != nil {
		return // a group member: the group moves the ring cursor (group.go)
	}
	switch b.sync {
	case SingleReader:
		// Usually read_index is id: one CAS takes the line (shared with
		// commit_index, so the writer has it) once instead of a load and a CAS.
		if !atomic.CompareAndSwapUint64(&h.readIndex, id, id+1) {
			maxStore(&h.readIndex, id+1)
		}
	case SyncReader:
		if r.ownsEntry() {
			maxStore(&h.syncPositions[r.entry], id+1)
			b.recomputeReadIndex()
		}
	}
}

func (r *Reader) recordHold(idx uint64) int {
	if r.entry < 0 {
		return -1
	}
	c := &r.b.h.consumers[r.entry]
	for k := range c.held {
		if atomic.LoadUint64(&c.held[k]) == 0 {
			atomic.StoreUint64(&c.held[k], idx+1)
			return k
		}
	}
	return -1
}

func (r *Reader) clearHold(k int) {
	if k >= 0 && r.entry >= 0 {
		atomic.StoreUint64(&r.b.h.consumers[r.entry].held[k], 0)
	}
}

// ID returns the slot id.
func (s *ReadSlot) ID() uint64 { return s.id }

// Index returns the slot's index in the ring.
func (s *ReadSlot) Index() int { return int(s.idx) }

// Bytes returns the slot span (SlotSize bytes). IMPORTANT: valid until Release; do
// not write to it; the memory is shared (see package doc on faults).
func (s *ReadSlot) Bytes() []byte { return s.buf }

// Valid reports whether the writer has not overwritten the slot since it was
// acquired (generation unchanged).
func (s *ReadSlot) Valid() bool {
	return s.active && atomic.LoadUint64(&s.e.generation) == s.gen
}

// VerifyChecksum checks the slot (and flex-zone, if any) hash now (ChecksumManual).
func (s *ReadSlot) VerifyChecksum() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if !s.active {
		return ErrReleased
	}
	b := s.r.b
	if !b.verifySlotChecksum(s.idx) || (b.lay.flexSize > 0 && !b.verifyFlexChecksum()) {
		atomic.AddUint64(&b.h.checksumFailures, 1)
		return ErrChecksum
	}
	return nil
}

// Release gives the slot back (§7.5): it fails with ErrOverwritten if the writer
// overwrote it meanwhile, or ErrChecksum when Enforced verification fails; only a
// successful release advances ordered positions. It always marks the id consumed for
// Latest_only. Idempotent.
func (s *ReadSlot) Release() error { return s.release(true, false) }

// Acknowledge is Release for a consumer that accepts a damaged slot and moves on
// (Go choice for §7.5): it returns the same verdict (ErrChecksum, ErrOverwritten)
// but advances ordered positions even when the verdict is an error, so a slot that
// stays corrupted is passed over once instead of being offered again forever (an
// ordered consumer would otherwise stall). Under Latest_only it equals Release.
// Idempotent.
func (s *ReadSlot) Acknowledge() error { return s.release(true, true) }

// Drop gives the slot back without marking it consumed (error paths): a Latest_only
// Reader may get it again; ordered positions do not move.
func (s *ReadSlot) Drop() { s.release(false, false) }

func (s *ReadSlot) release(explicit, anyway bool) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.active {
		return nil
	}
	s.active = false
	b := r.b
	if b.closed.Load() {
		return ErrClosed
	}
	h, e := b.h, s.e
	if atomic.LoadUint64(&e.generation) != s.gen {
		atomic.AddUint64(&h.readerValidationFailed, 1)
		err = ErrOverwritten
	} else if explicit && b.csum == ChecksumEnforced {
		if !b.verifySlotChecksum(s.idx) || (b.lay.flexSize > 0 && !b.verifyFlexChecksum()) {
			atomic.AddUint64(&h.checksumFailures, 1)
			err = ErrChecksum
		}
	}
	before := decSat(&e.readerCount)
	for {
		peak := atomic.LoadUint64(&h.readerPeakCount)
		if uint64(before) <= peak || atomic.CompareAndSwapUint64(&h.readerPeakCount, peak, uint64(before)) {
			break
		}
	}
	if r.ownsEntry() {
		r.clearHold(s.hold)
	} else if err == nil {
		err = r.checkEntry()
	}
	if r.group != nil { // a group member: the group moves the ring cursor (group.go)
		r.group.released(s.id, explicit && (err == nil || anyway))
	}
	if explicit {
		if err == nil {
			atomic.AddUint64(&h.totalSlotsRead, 1)
			atomic.AddUint64(&h.totalBytesRead, b.lay.stride)
		}
		if (err == nil || anyway) && b.sync.ordered() && r.group == nil {
			r.advance(s.id)
		}
		r.lastConsumed = s.id
	}
	b.wakeWriters()
	return err
}

// Heartbeat refreshes this consumer's heartbeat entry.
func (r *Reader) Heartbeat() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.b.closed.Load() {
		return ErrClosed
	}
	if err := r.checkEntry(); err != nil {
		return err
	}
	if r.entry >= 0 {
		atomic.StoreUint64(&r.b.h.consumers[r.entry].lastHB, uint64(monoNow()))
	}
	return nil
}

// Entry returns the consumer heartbeat entry index (-1 = none).
func (r *Reader) Entry() int { return r.entry }

// Close drops held slots and frees the heartbeat entry. Nil-safe and idempotent.
func (r *Reader) Close() (err error) {
	if r == nil {
		return nil
	}
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for i := range r.held {
		r.mu.Lock()
		active := r.held[i].active
		r.mu.Unlock()
		if active {
			r.held[i].Drop()
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	entry := r.entry
	r.entry = -1
	r.mu.Unlock()
	if !r.b.closed.Load() {
		r.b.unregisterConsumer(entry)
	}
	r.b.disown(r)
	return nil
}

// AcquireReadID waits until slot id is committed (commit_index ≥ id; nothing
// committed counts as "not yet"), then makes one attempt to acquire exactly that id.
// It fails with ErrTimeout if the id is not committed in time or is no longer in the
// ring (overwritten, or a skip marker).
func (r *Reader) AcquireReadID(ctx context.Context, id uint64, timeout time.Duration) (s *ReadSlot, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if r.b.diag {
		return nil, ErrReadOnly
	}
	h := r.b.h
	wt := newWaiter(ctx, timeout, r.opts.Wait)
	word := low32(&h.commitIndex)
	for {
		seen := atomic.LoadUint32(word)
		if c := atomic.LoadUint64(&h.commitIndex); c != invalidID && c >= id {
			break
		}
		if err := wt.wait(word, seen, &h.commitWaiters); err != nil {
			atomic.AddUint64(&h.readerTimeoutCount, 1)
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.b.closed.Load() {
		return nil, ErrClosed
	}
	for i := range r.held {
		if !r.held[i].active {
			if s, _ := r.tryAcquire(id, i, 0); s != nil {
				return s, nil
			}
			return nil, ErrTimeout
		}
	}
	return nil, ErrSlotHeld
}
