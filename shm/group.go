package shm

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// orphanScanEvery paces a member's look for claims of dead members while it has
// nothing new to claim (each look reads /proc for every dead-looking member).
const orphanScanEvery = 2 * time.Millisecond

// GroupReader is one member of a consumer group on an ordered ring (Single_reader
// or Sync_reader): the members of a group split the ring's stream, each committed
// id read by exactly one of them, while other groups and plain Readers each read
// everything. The group's state lives in a companion segment (group_segment.go);
// the group counts as one reader of the ring: every member keeps its ring cursor
// at the group's "done" cursor (Sync_reader) or moves read_index to it
// (Single_reader), so the writer never overwrites an id a member has claimed but
// not finished. A member that dies holding a claim (pid and start time dead, as
// for dead consumers) has it taken over by the next member that looks.
//
// A GroupReader holds one slot at a time, a *ReadSlot whose Release finishes the
// id for the group (the member's Reader hands releases to the group instead of
// moving its own cursor); its methods are safe for concurrent use.
type GroupReader struct {
	b     *Block
	r     *Reader
	g     *groupSeg
	me    int
	group string
	wait  WaitOptions

	mu       sync.Mutex // serialises AcquireRead and Close
	lastScan time.Time  // guarded by mu
	closed   bool       // guarded by mu

	pending   atomic.Uint64 // id+1 of our claim not yet finished (0 none)
	held      atomic.Bool   // a slot of ours is held (released clears it)
	lost      atomic.Uint64
	reclaimed atomic.Uint64
}

// JoinGroup makes a member of the consumer group named group on b: it registers a
// Reader (a consumer heartbeat entry) and joins, or creates, the group's companion
// segment. The first member starts the group where a new Reader would start; later
// members continue it. ErrGroupUnsupported for Latest_only rings, heap and
// diagnostic blocks; ErrGroupFull when the group has maxGroupMembers members.
func (b *Block) JoinGroup(group string, opts ReaderOptions) (gr *GroupReader, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	switch {
	case b.heap || b.diag:
		return nil, fmt.Errorf("%s: %w: not a shared segment", b.name, ErrGroupUnsupported)
	case !b.sync.ordered():
		return nil, fmt.Errorf("%s: %w: sync policy %v is not ordered", b.name, ErrGroupUnsupported, b.sync)
	}
	r, err := b.NewReader(opts)
	if err != nil {
		return nil, err
	}
	if r.entry < 0 {
		r.Close()
		return nil, fmt.Errorf("%s: %w", b.name, ErrNoConsumerEntry)
	}
	g, err := b.openGroup(group)
	if err != nil {
		r.Close()
		return nil, err
	}
	defer g.unlock()
	gr = &GroupReader{b: b, r: r, g: g, me: -1, group: group, wait: opts.Wait}
	for i := range g.members {
		m := &g.members[i]
		id := atomic.LoadUint64(&m.id)
		if id == 0 || id != memberLeft && !b.alive(id) && atomic.LoadUint64(&m.holding) == 0 {
			if atomic.CompareAndSwapUint64(&m.id, id, b.self) {
				gr.me = i
				break
			}
		}
	}
	if gr.me < 0 {
		g.close()
		r.Close()
		return nil, fmt.Errorf("%s group %q: %w", b.name, group, ErrGroupFull)
	}
	m := &g.members[gr.me]
	atomic.StoreUint64(&m.holding, 0)
	atomic.StoreUint64(&m.entry, uint64(r.entry)+1)
	r.mu.Lock()
	r.group = gr // from here on its releases finish group ids instead of moving its cursor
	r.mu.Unlock()
	gr.start()
	if err := b.adopt(gr); err != nil {
		gr.leave()
		return nil, err
	}
	return gr, nil
}

// start sets the group's cursors when we are its first member, and our ring cursor
// to the group's done cursor otherwise (under the join lock).
func (gr *GroupReader) start() {
	b, h, gh := gr.b, gr.b.h, gr.g.h
	if atomic.LoadUint64(&gh.next) == invalidID {
		pos := atomic.LoadUint64(&h.readIndex)
		if b.sync == SyncReader {
			pos = atomic.LoadUint64(&h.syncPositions[gr.r.entry])
		}
		atomic.StoreUint64(&gh.done, pos)
		atomic.StoreUint64(&gh.next, pos)
		return
	}
	done := atomic.LoadUint64(&gh.done)
	if b.sync == SyncReader {
		// Lowering our own cursor to the group's is safe: the other members hold
		// read_index at or below it. It may also raise it (the group finished ids
		// after we registered): then read_index is recomputed, or it stays at our
		// registration position with nobody left to move it (follow sees our
		// cursor at done already), and a writer waiting on a full ring waits for
		// good.
		atomic.StoreUint64(&h.syncPositions[gr.r.entry], max(done, atomic.LoadUint64(&h.readIndex)))
		b.recomputeReadIndex()
		b.wakeWriters()
	}
}

// Group returns the group's name.
func (gr *GroupReader) Group() string { return gr.group }

// Reader returns the member's ring Reader (its heartbeat entry); do not read with it.
func (gr *GroupReader) Reader() *Reader { return gr.r }

// Lost returns how many ids of the group this member found gone from the ring
// (overwritten before any member read them: the group had no live member for a
// while).
func (gr *GroupReader) Lost() uint64 { return gr.lost.Load() }

// Reclaimed returns how many claims of dead or departed members this member took
// over.
func (gr *GroupReader) Reclaimed() uint64 { return gr.reclaimed.Load() }

// AcquireRead returns the group's next slot for this member: a claim a dead member
// left unfinished, or the oldest committed id no member has claimed. timeout 0
// makes one attempt, negative waits until ctx is done; ErrTimeout (unwrapped) or
// ctx's error when nothing became ready. ErrSlotHeld while a slot is held.
//
// The slot's Release (or Acknowledge) finishes the id for the whole group; a
// failed Release (ErrChecksum, ErrOverwritten) and Drop keep the claim, and the
// next AcquireRead returns the same id again, as an ordered Reader would.
func (gr *GroupReader) AcquireRead(ctx context.Context, timeout time.Duration) (s *ReadSlot, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.closed || gr.b.closed.Load() {
		return nil, ErrClosed
	}
	if gr.held.Load() {
		return nil, ErrSlotHeld
	}
	h := gr.b.h
	wt := newWaiter(ctx, timeout, gr.wait)
	word := low32(&h.commitIndex)
	for {
		seen := atomic.LoadUint32(word)
		s, err := gr.attempt(false)
		if s != nil || err != nil {
			return s, err
		}
		gr.follow()
		if wt.reapDue() {
			gr.b.reap()
			continue
		}
		if err := wt.wait(word, seen, &h.commitWaiters); err != nil {
			if wt.lastChance() {
				if s, _ := gr.attempt(true); s != nil {
					return s, nil
				}
			}
			return nil, err
		}
	}
}

// attempt reads our pending claim, or makes a new one, once.
func (gr *GroupReader) attempt(scan bool) (*ReadSlot, error) {
	for range 2*gr.b.lay.capacity + 8 { // bounded: skip markers and lost ids are passed at once
		if gr.pending.Load() == 0 {
			id, ok := gr.claim(scan)
			if !ok {
				return nil, nil
			}
			gr.pending.Store(id + 1)
		}
		s, next, err := gr.read(gr.pending.Load() - 1)
		if s != nil || err != nil || !next {
			return s, err
		}
	}
	return nil, nil
}

// claim takes the oldest committed id nobody has claimed, or (when there is none
// and a look is due) a dead member's claim.
func (gr *GroupReader) claim(scan bool) (id uint64, ok bool) {
	g, h, n := gr.g, gr.b.h, gr.b.lay.capacity
	me := &g.members[gr.me]
	for {
		c, ci := atomic.LoadUint64(&g.h.next), atomic.LoadUint64(&h.commitIndex)
		if ci == invalidID || c > ci {
			break
		}
		if d := atomic.LoadUint64(&g.h.done); c < d {
			atomic.CompareAndSwapUint64(&g.h.next, c, d)
			continue
		}
		word := &g.claimed[c%n]
		old := atomic.LoadUint64(word)
		if old >= c+1 { // claimed already: help the hint along
			atomic.CompareAndSwapUint64(&g.h.next, c, c+1)
			continue
		}
		atomic.StoreUint64(&me.holding, c+1) // before the claim: a death after it leaves a trace
		if atomic.CompareAndSwapUint64(word, old, c+1) {
			atomic.CompareAndSwapUint64(&g.h.next, c, c+1)
			return c, true
		}
		atomic.StoreUint64(&me.holding, 0)
	}
	if now := time.Now(); scan || now.Sub(gr.lastScan) >= orphanScanEvery {
		gr.lastScan = now
		if id, ok := gr.takeOrphan(); ok {
			return id, true
		}
	}
	return 0, false
}

// takeOrphan takes over the unfinished claim of a dead (or departed) member. Dead
// members without a claim are freed on the way.
func (gr *GroupReader) takeOrphan() (uint64, bool) {
	g, b, n := gr.g, gr.b, gr.b.lay.capacity
	me := &g.members[gr.me]
	for i := range g.members {
		m := &g.members[i]
		id := atomic.LoadUint64(&m.id)
		if i == gr.me || id == 0 || id != memberLeft && b.alive(id) {
			continue
		}
		x := atomic.LoadUint64(&m.holding)
		if x == 0 {
			atomic.CompareAndSwapUint64(&m.id, id, 0)
			continue
		}
		if x-1 < atomic.LoadUint64(&g.h.done) || atomic.LoadUint64(&g.finished[(x-1)%n]) == x ||
			atomic.LoadUint64(&g.claimed[(x-1)%n]) != x {
			atomic.CompareAndSwapUint64(&m.holding, x, 0) // finished, or a claim it never won
			continue
		}
		if gr.liveHolder(x, i) {
			continue // a live member holds it, or is about to learn it lost the claim
		}
		atomic.StoreUint64(&me.holding, x)
		if atomic.CompareAndSwapUint64(&m.holding, x, 0) {
			gr.reclaimed.Add(1)
			b.log.Warn("consumer group: took over a dead member's claim", "name", b.name, "group", gr.group,
				"id", x-1, "member", unpackString(id))
			return x - 1, true
		}
		atomic.StoreUint64(&me.holding, 0)
	}
	return 0, false
}

// liveHolder reports whether a live member other than skip records holding x.
func (gr *GroupReader) liveHolder(x uint64, skip int) bool {
	for i := range gr.g.members {
		m := &gr.g.members[i]
		if i == skip || atomic.LoadUint64(&m.holding) != x {
			continue
		}
		if id := atomic.LoadUint64(&m.id); id != memberLeft && gr.b.alive(id) {
			return true
		}
	}
	return false
}

// read acquires our claimed id. next reports that the id needs no reading (a skip
// marker, or gone from the ring: finished and counted) so the caller claims again.
func (gr *GroupReader) read(id uint64) (s *ReadSlot, next bool, err error) {
	b := gr.b
	e := &b.slots[id%b.lay.capacity]
	state, _, skipped := loadState(e)
	if slotID := atomic.LoadUint64(&e.id); slotID > id || slotID == id && state == stateCommitted && skipped == 1 {
		if slotID > id {
			gr.lost.Add(1)
			b.log.Warn("consumer group: id overwritten before any member read it", "name", b.name, "group", gr.group, "id", id)
		}
		gr.finish(id)
		return nil, true, nil
	}
	rs, err := gr.r.AcquireReadID(context.Background(), id, 0)
	if err == ErrTimeout {
		return nil, false, nil // not committed yet, or raced with its commit: try again
	}
	if err != nil {
		return nil, false, err
	}
	gr.held.Store(true)
	return rs, false, nil
}

// finish marks id finished by the group, drops our claim and moves the group's
// done cursor (and with it our ring cursor) over every finished id.
func (gr *GroupReader) finish(id uint64) {
	g, n := gr.g, gr.b.lay.capacity
	atomic.StoreUint64(&g.finished[id%n], id+1)
	atomic.StoreUint64(&g.members[gr.me].holding, 0)
	gr.pending.Store(0)
	moved := false
	for {
		d := atomic.LoadUint64(&g.h.done)
		if atomic.LoadUint64(&g.finished[d%n]) != d+1 {
			break
		}
		if atomic.CompareAndSwapUint64(&g.h.done, d, d+1) {
			moved = true
		}
	}
	if moved {
		gr.follow()
		if atomic.LoadUint32(&gr.b.h.commitWaiters) != 0 {
			futexWake(low32(&gr.b.h.commitIndex)) // idle members move their cursors too
		}
	}
}

// follow moves our ring cursor (Sync_reader) or read_index (Single_reader) up to
// the group's done cursor, and wakes the writers when it moved.
func (gr *GroupReader) follow() {
	b, h := gr.b, gr.b.h
	d := atomic.LoadUint64(&gr.g.h.done)
	switch b.sync {
	case SyncReader:
		p := &h.syncPositions[gr.r.entry]
		if atomic.LoadUint64(p) >= d || !gr.r.ownsEntry() {
			return
		}
		maxStore(p, d)
		b.recomputeReadIndex()
	case SingleReader:
		if atomic.LoadUint64(&h.readIndex) >= d {
			return
		}
		maxStore(&h.readIndex, d)
	}
	b.wakeWriters()
}

// released is called by the member Reader's slot release (under the Reader's
// lock): finished reports a successful Release or an Acknowledge.
func (gr *GroupReader) released(id uint64, finished bool) {
	gr.held.Store(false)
	if finished && gr.pending.Load() == id+1 {
		gr.finish(id)
	}
}

// Close leaves the group: a slot held is dropped and an unfinished claim is left
// for another member to take over. The last member removes the companion segment.
// Nil-safe and idempotent.
func (gr *GroupReader) Close() (err error) {
	if gr == nil {
		return nil
	}
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	gr.mu.Lock()
	if gr.closed {
		gr.mu.Unlock()
		return nil
	}
	gr.closed = true
	gr.mu.Unlock()
	gr.b.disown(gr)
	gr.leave()
	return nil
}

// leave closes our Reader (dropping a held slot), frees our member entry (or
// marks it departed while it holds a claim) and removes the companion when no
// live member is left.
func (gr *GroupReader) leave() {
	gr.r.Close()
	g := gr.g
	m := &g.members[gr.me]
	if atomic.LoadUint64(&m.holding) != 0 {
		atomic.StoreUint64(&m.id, memberLeft)
	} else {
		atomic.StoreUint64(&m.id, 0)
	}
	if lockByte(g.file, 0, replaceLockWait) == nil {
		if sameFile(g.file, g.path) && groupMembersDead(g.mem) {
			os.Remove(g.path)
		}
		g.unlock()
	}
	g.close()
}
