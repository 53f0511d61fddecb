package shm

import (
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/internal/proc"
)

// reclaiming marks a consumer entry whose dead owner's holds are being given back
// (or that its owner is clearing at close). The reclaimer stores the time it
// started in the entry's lastHB; an entry still at the sentinel stuckReclaim
// later (its reclaimer died, or a scribble) is freed by the next reap.
const (
	reclaiming   = ^uint64(0)
	stuckReclaim = uint64(time.Second)
)

func unpackString(id uint64) string { return proc.Unpack(id).String() }

// reap gives back what dead processes hold: the heartbeat entries (reader counts of
// held slots, Sync_reader cursors) of dead consumers, and, for ordered policies, the
// slot at read_index when a dead writer left it unfinished (it becomes a skip
// marker). Called by writers and ordered readers that have been blocked for a while,
// and by Reap. It returns how many consumers and holes were reclaimed.
func (b *Block) reap() int {
	n := b.reapConsumers()
	if b.sync.ordered() && b.reclaimHole() {
		n++
	}
	return n
}

// reapConsumers frees the heartbeat entries of dead consumers and those stuck at
// the reclaiming sentinel; it returns how many.
func (b *Block) reapConsumers() int {
	n := 0
	for i := range b.h.consumers {
		id := atomic.LoadUint64(&b.h.consumers[i].id)
		switch {
		case id == reclaiming:
			if b.freeStuck(i) {
				n++
			}
		case id != 0 && !b.alive(id):
			if b.reclaimConsumer(i, id) {
				n++
			}
		}
	}
	return n
}

// reclaimConsumer frees entry i of the dead consumer id and returns its holds.
func (b *Block) reclaimConsumer(i int, id uint64) bool {
	c := &b.h.consumers[i]
	// Start time first, so no other reaper takes the entry for a stuck one.
	hb := atomic.LoadUint64(&c.lastHB)
	if !atomic.CompareAndSwapUint64(&c.lastHB, hb, uint64(monoNow())) || !atomic.CompareAndSwapUint64(&c.id, id, reclaiming) {
		return false
	}
	b.freeEntry(i)
	b.log.Warn("reclaimed dead consumer", "name", b.name, "entry", i, "consumer", unpackString(id))
	return true
}

// freeStuck frees entry i when it has been at the reclaiming sentinel for
// stuckReclaim. The first reaper to move its lastHB does it.
func (b *Block) freeStuck(i int) bool {
	c := &b.h.consumers[i]
	since, now := atomic.LoadUint64(&c.lastHB), uint64(monoNow())
	if since <= now && now-since < stuckReclaim || !atomic.CompareAndSwapUint64(&c.lastHB, since, now) {
		return false
	}
	if atomic.LoadUint64(&c.id) != reclaiming {
		return false
	}
	b.freeEntry(i)
	b.log.Warn("freed consumer entry stuck at the reclaiming sentinel", "name", b.name, "entry", i)
	return true
}

// freeEntry finishes the reclaim of entry i (at the sentinel, owned by the
// caller): gives back its holds, clears it and frees it.
func (b *Block) freeEntry(i int) {
	h := b.h
	c := &h.consumers[i]
	for k := range c.held {
		if v := atomic.SwapUint64(&c.held[k], 0); v != 0 && v <= b.lay.capacity {
			decSat(&b.slots[v-1].readerCount)
		}
	}
	clear(c.uid[:])
	clear(c.name[:])
	atomic.StoreUint64(&h.syncPositions[i], 0)
	if !atomic.CompareAndSwapUint64(&c.id, reclaiming, 0) {
		return
	}
	decSat(&h.activeConsumer)
	b.recoveryAction()
	if b.sync == SyncReader {
		b.recomputeReadIndex()
	}
	b.wakeWriters()
}

// reclaimHole turns the slot at read_index into a skip marker when the writer that
// took its id died before committing (ordered policies would otherwise stall).
func (b *Block) reclaimHole() bool {
	h := b.h
	ri := atomic.LoadUint64(&h.readIndex)
	if ri >= atomic.LoadUint64(&h.writeIndex) {
		return false
	}
	e := &b.slots[ri%b.lay.capacity]
	state, _, _ := loadState(e)
	if state == stateCommitted && atomic.LoadUint64(&e.id) == ri {
		return false
	}
	holder := atomic.LoadUint64(&e.writeLock)
	if holder == 0 || b.alive(holder) {
		return false
	}
	since := atomic.LoadUint64(&e.lockSince)
	if !atomic.CompareAndSwapUint64(&e.writeLock, holder, b.self) {
		return false
	}
	b.recoveryAction()
	b.log.Warn("dead writer left slot unfinished; marked skipped", "name", b.name, "id", ri, "holder", unpackString(holder),
		"stuck_duration_ms", heldFor(since).Milliseconds())
	b.markSkipped(e, ri)
	b.wakeWriters()
	return true
}

func unpack(id uint64) proc.Identity { return proc.Unpack(id) }
