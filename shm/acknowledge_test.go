package shm

import (
	"context"
	"errors"
	"testing"
)

// §7.5 Go choice: a failed Release does not advance an ordered consumer (the
// damaged id is offered again); Acknowledge returns the same verdict but moves
// on, so a slot that stays corrupted is seen once.
func TestAcknowledgePassesOverADamagedSlot(t *testing.T) {
	for _, sp := range []SyncPolicy{SingleReader, SyncReader} {
		b := createT(t, testConfig(4, sp))
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		for seq := uint64(1); seq <= 3; seq++ {
			if err := writeSeq(t, w, seq, 0); err != nil {
				t.Fatalf("%v: write %d: %v", sp, seq, err)
			}
		}
		s, err := r.AcquireRead(context.Background(), 0)
		if err != nil {
			t.Fatalf("%v: acquire: %v", sp, err)
		}
		id := s.ID()
		s.Bytes()[100] ^= 1 // stays corrupted
		if err := s.Release(); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%v: release of a damaged slot: %v", sp, err)
		}
		s, err = r.AcquireRead(context.Background(), 0)
		if err != nil || s.ID() != id {
			t.Fatalf("%v: after a failed Release got %v %v, want id %d again", sp, s, err, id)
		}
		if err := s.Acknowledge(); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%v: Acknowledge verdict %v, want ErrChecksum", sp, err)
		}
		if err := s.Acknowledge(); err != nil {
			t.Fatalf("%v: second Acknowledge not idempotent: %v", sp, err)
		}
		if v, err := readSeq(t, r, 0); err != nil || v != 2 {
			t.Fatalf("%v: after Acknowledge read %d %v, want 2", sp, v, err)
		}
		if m := b.Metrics(); m.ChecksumFailures != 2 {
			t.Fatalf("%v: checksum_failures %d, want 2", sp, m.ChecksumFailures)
		}
	}
}
