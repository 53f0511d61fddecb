package shm

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
)

// SlotRepair is the outcome of RepairSlotChecksum.
type SlotRepair int

// Outcomes of RepairSlotChecksum. Only SlotRepaired wrote to the segment.
const (
	SlotRepaired     SlotRepair = iota // the stored hash did not match; it was recomputed
	SlotHashOK                         // the stored hash matches (e.g. the slot was rewritten since): nothing written
	SlotNotCommitted                   // the slot is free, being written or a skip marker: no hash to repair
	SlotChecksumsOff                   // the segment's checksum policy is None
)

func (r SlotRepair) String() string {
	switch r {
	case SlotRepaired:
		return "repaired"
	case SlotHashOK:
		return "checksum_ok"
	case SlotNotCommitted:
		return "not_committed"
	case SlotChecksumsOff:
		return "checksums_off"
	}
	return fmt.Sprintf("SlotRepair(%d)", int(r))
}

// RepairSlotChecksum verifies slot index i's checksum and, when it fails,
// recomputes the stored hash from the slot's current bytes (spec §9.5 Go
// choice, B-16). The slot is held as a reader meanwhile, so no writer changes
// it under the hash. DANGEROUS: the repaired hash vouches for whatever the slot
// holds now, corrupted bytes included; readers then accept them. Only a party
// that knows the damage is harmless (or prefers damaged data to a stalled
// reader) should call it. ErrRange for an index outside the ring.
func (b *Block) RepairSlotChecksum(i int) (res SlotRepair, err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return 0, ErrClosed
	}
	if i < 0 || uint64(i) >= b.lay.capacity {
		return 0, fmt.Errorf("%s: %w: slot %d of %d", b.name, ErrRange, i, b.lay.capacity)
	}
	if b.csum == ChecksumNone {
		return SlotChecksumsOff, nil
	}
	verified, bad := b.verifyHeld(uint64(i), true)
	switch {
	case !verified:
		return SlotNotCommitted, nil
	case !bad:
		return SlotHashOK, nil
	}
	b.recoveryAction()
	b.log.Warn("slot checksum repaired: the stored hash now vouches for the slot's current bytes", "name", b.name, "slot", i)
	return SlotRepaired, nil
}

// verifyHeld verifies slot idx's checksum while holding it as a reader, so no
// writer rewrites it meanwhile. verified: the slot was COMMITTED (not a skip
// marker) and its hash was checked; bad: the hash failed (and, with repair, was
// recomputed in place).
func (b *Block) verifyHeld(idx uint64, repair bool) (verified, bad bool) {
	e := &b.slots[idx]
	if state, _, skipped := loadState(e); state != stateCommitted || skipped == 1 {
		return false, false
	}
	atomic.AddUint32(&e.readerCount, 1)
	if st, _, sk := loadState(e); st == stateCommitted && sk == 0 {
		verified = true
		if !b.verifySlotChecksum(idx) {
			bad = true
			if repair {
				b.storeSlotChecksum(idx)
			}
		}
	}
	decSat(&e.readerCount)
	b.wakeWriters()
	return verified, bad
}

// OwnedBy reports whether pid created the segment or is the process of its
// producer heartbeat (the last writer to commit): a party that is told a
// segment's name by someone else can check it names that producer's segment.
func (b *Block) OwnedBy(pid int) (ok bool) {
	defer guard(new(error))
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() || pid <= 0 {
		return false
	}
	for _, id := range []uint64{atomic.LoadUint64(&b.h.creatorID), atomic.LoadUint64(&b.h.producerID)} {
		if id != 0 && unpack(id).Pid == pid {
			return true
		}
	}
	return false
}
