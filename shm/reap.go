package shm

import (
	"sync/atomic"

	"github.com/pylabhub/plh/internal/proc"
)

// reclaiming marks a consumer entry whose dead owner's holds are being given back.
const reclaiming = ^uint64(0)

func unpackString(id uint64) string { return proc.Unpack(id).String() }

// reap gives back what dead processes hold: the heartbeat entries (reader counts of
// held slots, Sync_reader cursors) of dead consumers, and, for ordered policies, the
// slot at read_index when a dead writer left it unfinished (it becomes a skip
// marker). Called by writers and ordered readers that have been blocked for a while,
// and by Reap. It returns how many consumers and holes were reclaimed.
func (b *Block) reap() int {
	n := 0
	for i := range b.h.consumers {
		id := atomic.LoadUint64(&b.h.consumers[i].id)
		if id != 0 && id != reclaiming && !b.alive(id) {
			if b.reclaimConsumer(i, id) {
				n++
			}
		}
	}
	if b.sync.ordered() && b.reclaimHole() {
		n++
	}
	return n
}

// reclaimConsumer frees entry i of the dead consumer id and returns its holds.
func (b *Block) reclaimConsumer(i int, id uint64) bool {
	h := b.h
	c := &h.consumers[i]
	if !atomic.CompareAndSwapUint64(&c.id, id, reclaiming) {
		return false
	}
	for k := range c.held {
		if v := atomic.SwapUint64(&c.held[k], 0); v != 0 && v <= b.lay.capacity {
			decSat(&b.slots[v-1].readerCount)
		}
	}
	clear(c.uid[:])
	clear(c.name[:])
	atomic.StoreUint64(&c.lastHB, 0)
	atomic.StoreUint64(&h.syncPositions[i], 0)
	atomic.StoreUint64(&c.id, 0)
	decSat(&h.activeConsumer)
	b.recoveryAction()
	b.log.Warn("reclaimed dead consumer", "name", b.name, "entry", i, "consumer", unpackString(id))
	if b.sync == SyncReader {
		b.recomputeReadIndex()
	}
	b.wakeWriters()
	return true
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
	if !atomic.CompareAndSwapUint64(&e.writeLock, holder, b.self) {
		return false
	}
	b.recoveryAction()
	b.log.Warn("dead writer left slot unfinished; marked skipped", "name", b.name, "id", ri, "holder", unpackString(holder))
	b.markSkipped(e, ri)
	b.wakeWriters()
	return true
}

func unpack(id uint64) proc.Identity { return proc.Unpack(id) }
