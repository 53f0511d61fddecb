package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/shm"
)

// realBlock creates a real DataBlock (the shm package's own layout) with n
// committed slots, each starting with its sequence number.
func realBlock(t *testing.T, sync shm.SyncPolicy, n int) (*shm.Block, string) {
	t.Helper()
	name := fmt.Sprintf("plh_chaos_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	b, err := shm.Create(name, shm.Config{Secret: 7, PageSize: shm.Page4K, Capacity: 4,
		Policy: shm.PolicyRingBuffer, Sync: sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	w, err := b.NewWriter(shm.WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		s, err := w.AcquireWrite(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s.Bytes()[0] = byte(i)
		if err := s.Commit(64); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	}
	return b, name
}

// TestCorruptRealSegment checks the offsets against the shm package: the slot
// CorruptSlot damages is the one the reader gets next, and it fails its checksum.
func TestCorruptRealSegment(t *testing.T) {
	for _, c := range []struct {
		sync shm.SyncPolicy
		pick string
		want byte
	}{{shm.SingleReader, "next", 0}, {shm.LatestOnly, "next", 2}} {
		_, name := realBlock(t, c.sync, 3)
		if _, err := CorruptSlot(shm.SegmentPath(name), c.pick); err != nil {
			t.Fatal(err)
		}
		cb, err := shm.Attach(name, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := cb.NewReader(shm.ReaderOptions{UID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := r.AcquireRead(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := rs.Bytes()[0]; got != c.want {
			t.Errorf("%v: reader got slot with seq %d, want %d", c.sync, got, c.want)
		}
		if err := rs.Release(); !errors.Is(err, shm.ErrChecksum) {
			t.Errorf("%v: release of the corrupted slot = %v, want ErrChecksum", c.sync, err)
		}
		cb.Close()
	}
}

func TestHeldLocksRealSegment(t *testing.T) {
	b, name := realBlock(t, shm.SingleReader, 1)
	w, err := b.NewWriter(shm.WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.AcquireWrite(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	locks, err := HeldLocks(shm.SegmentPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 || locks[0].Slot != uint64(s.Index()) || locks[0].Pid != os.Getpid() || !locks[0].Alive {
		t.Fatalf("locks %+v, want slot %d held by us", locks, s.Index())
	}
	_ = s.Abort()
}

// TestCheckSegment runs the integrity check the engine runs on a killed
// producer's segment: clean, then after CorruptSlot, then on a missing segment.
func TestCheckSegment(t *testing.T) {
	_, name := realBlock(t, shm.SingleReader, 3)
	rep, err := CheckSegment(name)
	if err != nil || !rep.OK() || rep.SlotsVerified != 3 {
		t.Fatalf("clean segment: %v, %v", rep, err)
	}
	if _, err := CorruptSlot(shm.SegmentPath(name), "next"); err != nil {
		t.Fatal(err)
	}
	rep, err = CheckSegment(name)
	if err != nil || rep.OK() || len(rep.BadSlots) != 1 || rep.BadSlots[0] != 0 {
		t.Fatalf("corrupted slot 0: %v, %v", rep, err)
	}
	if !strings.Contains(rep.String(), "slot 0: checksum mismatch") {
		t.Fatalf("summary %q", rep.String())
	}
	if _, err := CheckSegment(name + "_missing"); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("missing segment: %v", err)
	}
}

// TestCorruptControl scribbles each target on a real segment and checks the
// ring reports it (shm.ErrCorrupt, shm.ErrEntryLost) instead of waiting for good.
func TestCorruptControl(t *testing.T) {
	write := func(b *shm.Block, timeout time.Duration) error {
		w, err := b.NewWriter(shm.WaitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		_, err = w.Write(context.Background(), timeout, []byte{9})
		return err
	}
	corrupt := func(name, target string) string {
		t.Helper()
		detail, err := CorruptControl(name, target)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		return detail
	}
	t.Run("indices/ordered", func(t *testing.T) {
		// The writer looks at read_index only when its last look leaves no
		// room (it is off the fast path), so a scribbled read_index is
		// reported within one ring's worth of writes, never waited on.
		b, name := realBlock(t, shm.SingleReader, 2)
		d := corrupt(name, TargetIndices)
		w, err := b.NewWriter(shm.WaitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		for i := 0; ; i++ {
			_, err := w.Write(context.Background(), 5*time.Second, []byte{9})
			if errors.Is(err, shm.ErrCorrupt) {
				break
			}
			if err != nil || i > 4 {
				t.Fatalf("write %d after %s: %v (want ErrCorrupt within a ring's worth of writes)", i, d, err)
			}
		}
	})
	t.Run("indices/latest_only", func(t *testing.T) {
		b, name := realBlock(t, shm.LatestOnly, 2)
		d := corrupt(name, TargetIndices)
		if err := write(b, 5*time.Second); !errors.Is(err, shm.ErrCorrupt) {
			t.Fatalf("write after %s: %v", d, err)
		}
		if err := write(b, time.Second); err != nil {
			t.Fatalf("second write after %s: %v", d, err)
		}
	})
	for _, target := range []string{TargetReaderCounts, TargetLocks} {
		t.Run(target, func(t *testing.T) {
			b, name := realBlock(t, shm.LatestOnly, 3)
			d := corrupt(name, target)
			if err := write(b, 200*time.Millisecond); !errors.Is(err, shm.ErrCorrupt) {
				t.Fatalf("write after %s: %v", d, err)
			}
		})
	}
	t.Run("heartbeats", func(t *testing.T) {
		b, name := realBlock(t, shm.SyncReader, 1)
		if _, err := CorruptControl(name, TargetHeartbeats); !errors.Is(err, ErrNothingToCorrupt) {
			t.Fatalf("no consumer: %v", err)
		}
		r, err := b.NewReader(shm.ReaderOptions{UID: "victim"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		d := corrupt(name, TargetHeartbeats)
		if _, err := b.Reap(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.AcquireRead(context.Background(), 5*time.Second); !errors.Is(err, shm.ErrEntryLost) {
			t.Fatalf("read after %s: %v", d, err)
		}
	})
	t.Run("random and bad", func(t *testing.T) {
		b, name := realBlock(t, shm.LatestOnly, 1)
		r, err := b.NewReader(shm.ReaderOptions{UID: "c"}) // so that every target has a word
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		d := corrupt(name, TargetRandom)
		if !strings.HasPrefix(d, TargetIndices) && !strings.HasPrefix(d, TargetReaderCounts) && !strings.HasPrefix(d, TargetLocks) &&
			!strings.HasPrefix(d, TargetHeartbeats) {
			t.Fatalf("random: %q", d)
		}
		if _, err := CorruptControl(name, "everything"); !errors.Is(err, ErrBadTarget) {
			t.Fatalf("bad target: %v", err)
		}
		if _, err := CorruptControl(name+"_missing", TargetLocks); !errors.Is(err, shm.ErrNotFound) {
			t.Fatalf("missing segment: %v", err)
		}
	})
}
