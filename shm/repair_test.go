package shm

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// B-16: a slot whose bytes were damaged after commit is repaired in place; the
// reader then accepts it. Nothing is written where nothing is wrong.
func TestRepairSlotChecksum(t *testing.T) {
	cfg := testConfig(4, SingleReader)
	cfg.Checksum = ChecksumEnforced
	b := createT(t, cfg)
	w := mustWriter(t, b)
	for seq := range uint64(2) {
		if err := writeSeq(t, w, seq, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	b.slotBuf(0)[100] ^= 0xFF // damage slot 0 after its commit
	if rep, _ := b.Check(false); len(rep.BadSlots) != 1 || rep.BadSlots[0] != 0 {
		t.Fatalf("damage not seen: %+v", rep)
	}
	before := b.Metrics().RecoveryActions
	if res, err := b.RepairSlotChecksum(0); err != nil || res != SlotRepaired {
		t.Fatalf("repair: %v %v", res, err)
	}
	if b.Metrics().RecoveryActions != before+1 || atomic.LoadUint32(&b.slots[0].readerCount) != 0 {
		t.Fatalf("recovery counter %d (was %d), reader count %d", b.Metrics().RecoveryActions, before, b.slots[0].readerCount)
	}
	for i, want := range map[int]SlotRepair{0: SlotHashOK, 1: SlotHashOK, 3: SlotNotCommitted} {
		if res, err := b.RepairSlotChecksum(i); err != nil || res != want {
			t.Fatalf("slot %d: %v %v, want %v", i, res, err, want)
		}
	}
	if b.Metrics().RecoveryActions != before+1 {
		t.Fatal("a repair that wrote nothing counted as a recovery action")
	}
	r := mustReader(t, b, "r")
	for want := range uint64(2) {
		if got, err := readSeq(t, r, time.Second); err != nil || got != want {
			t.Fatalf("read %d: %d %v", want, got, err)
		}
	}
	for _, i := range []int{-1, 4} {
		if _, err := b.RepairSlotChecksum(i); !errors.Is(err, ErrRange) {
			t.Fatalf("slot %d: %v", i, err)
		}
	}

	cfg.Checksum = ChecksumNone
	off := createT(t, cfg)
	if res, err := off.RepairSlotChecksum(0); err != nil || res != SlotChecksumsOff {
		t.Fatalf("checksum None: %v %v", res, err)
	}
	if !b.OwnedBy(os.Getpid()) || b.OwnedBy(os.Getpid()+1) || b.OwnedBy(0) {
		t.Fatal("OwnedBy")
	}
	b.Close()
	if _, err := b.RepairSlotChecksum(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}
