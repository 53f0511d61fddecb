package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/proc"
)

// deadID is the packed identity of a process that does not exist (pid above
// pid_max on these machines, as the original's INT32_MAX).
var deadID = proc.Identity{Pid: 1<<22 - 1, StartTime: 77}.Pack()

// §9.1 Draining on a Latest_only 1-slot ring with a held reader.
func TestDraining(t *testing.T) {
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		b := mk(t, testConfig(1, LatestOnly))
		w, r, r2 := mustWriter(t, b), mustReader(t, b, "r"), mustReader(t, b, "r2")
		writeSeq(t, w, 1, 0)
		held, err := r.AcquireRead(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		// A short writer timeout restores COMMITTED; the old data stays readable.
		if _, err := w.AcquireWrite(context.Background(), 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Fatalf("acquire over a held slot: %v", err)
		}
		if d, _ := b.DiagnoseSlot(0); d.State != SlotCommitted || d.WriteLock() {
			t.Fatalf("after drain timeout: %+v", d)
		}
		if v, err := readSeq(t, r2, 0); err != nil || v != 1 {
			t.Fatalf("old data after drain timeout: %d %v", v, err)
		}
		// A writer waiting puts the slot in DRAINING; new reads fail; release lets it go.
		got := make(chan error, 1)
		go func() {
			s, err := w.AcquireWrite(context.Background(), 30*time.Second)
			if err == nil {
				binary.LittleEndian.PutUint64(s.Bytes(), 2)
				s.Commit(8)
				err = s.Release()
			}
			got <- err
		}()
		waitFor(t, func() bool { d, _ := b.DiagnoseSlot(0); return d.State == SlotDraining && d.WriterWaiting })
		r3 := mustReader(t, b, "r3")
		if _, err := r3.AcquireRead(context.Background(), 0); !errors.Is(err, ErrTimeout) {
			t.Fatalf("read while DRAINING: %v", err)
		}
		if err := held.Release(); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		if v, err := readSeq(t, r3, 0); err != nil || v != 2 {
			t.Fatalf("after drain: %d %v", v, err)
		}
		for i := uint64(3); i < 20; i++ {
			writeSeq(t, w, i, time.Second)
			if v, err := readSeq(t, r3, time.Second); err != nil || v != i {
				t.Fatalf("cycle %d: %d %v", i, v, err)
			}
		}
		if m := b.Metrics(); m.ReaderRaceDetected != 0 {
			t.Fatalf("reader_race_detected %d", m.ReaderRaceDetected)
		}
	})
}

// WriteLock reports whether the slot is locked.
func (d SlotDiagnosis) WriteLock() bool { return d.Writer != "" }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// §9.1: ordered writers block on ring-full and never enter DRAINING.
func TestOrderedNeverDrains(t *testing.T) {
	for _, sp := range []SyncPolicy{SingleReader, SyncReader} {
		b, _ := newHeapBlock(testConfig(2, sp))
		defer b.Close()
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		writeSeq(t, w, 0, 0)
		writeSeq(t, w, 1, 0)
		s, _ := r.AcquireRead(context.Background(), 0)
		if err := writeSeq(t, w, 2, 10*time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Fatalf("%v: write on full ring %v", sp, err)
		}
		for i := range 2 {
			if d, _ := b.DiagnoseSlot(i); d.State == SlotDraining {
				t.Fatalf("%v: slot %d DRAINING", sp, i)
			}
		}
		s.Release()
		if err := writeSeq(t, w, 2, time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// §8.3 Sync_reader: a slow consumer holds the writer; a newcomer joins at latest.
func TestSyncReaderCursors(t *testing.T) {
	b, _ := newHeapBlock(testConfig(4, SyncReader))
	defer b.Close()
	w := mustWriter(t, b)
	fast, slow := mustReader(t, b, "fast"), mustReader(t, b, "slow")
	for i := uint64(0); i < 4; i++ {
		writeSeq(t, w, i, 0)
	}
	for i := uint64(0); i < 4; i++ {
		if v, err := readSeq(t, fast, 0); err != nil || v != i {
			t.Fatalf("fast %d %v", v, err)
		}
	}
	if err := writeSeq(t, w, 4, 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("writer not held by slow consumer: %v", err)
	}
	late := mustReader(t, b, "late")
	if v, err := readSeq(t, late, 0); err != nil || v != 3 {
		t.Fatalf("newcomer got %d %v, want the latest (3)", v, err)
	}
	slow.Close() // the slowest detaching lets the writer go (read_index recomputed)
	if err := writeSeq(t, w, 4, 0); err != nil {
		t.Fatalf("writer still blocked after slow consumer left: %v", err)
	}
}

// §7.6 skip marker: an aborted write in an ordered policy never stalls the reader.
func TestAbortLeavesSkipMarker(t *testing.T) {
	for _, sp := range []SyncPolicy{SingleReader, SyncReader} {
		b, _ := newHeapBlock(testConfig(4, sp))
		defer b.Close()
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		writeSeq(t, w, 10, 0)
		s, _ := w.AcquireWrite(context.Background(), 0)
		s.Abort()
		writeSeq(t, w, 12, 0)
		for _, want := range []uint64{10, 12} {
			if v, err := readSeq(t, r, 0); err != nil || v != want {
				t.Fatalf("%v: got %d %v want %d", sp, v, err, want)
			}
		}
		if d, _ := b.DiagnoseSlot(1); !d.Skipped {
			t.Fatalf("%v: slot 1 not marked skipped: %+v", sp, d)
		}
	}
}

// §9.3 policy enforcement.
func TestChecksumPolicies(t *testing.T) {
	t.Run("Enforced", func(t *testing.T) {
		cfg := testConfig(2, LatestOnly)
		cfg.FlexSize = 4096
		b := createT(t, cfg)
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		writeSeq(t, w, 1, 0)
		if v, err := readSeq(t, r, 0); err != nil || v != 1 {
			t.Fatalf("round trip %d %v", v, err)
		}
		writeSeq(t, w, 2, 0)
		b.Flex()[5] ^= 0xFF // corrupt the flex zone after hashing
		if _, err := readSeq(t, r, 0); !errors.Is(err, ErrChecksum) {
			t.Fatalf("corrupt flex zone: %v", err)
		}
		if b.Metrics().ChecksumFailures != 1 {
			t.Fatal("checksum_failures not counted")
		}
		w.UpdateFlexChecksum()
		writeSeq(t, w, 3, 0)
		s, _ := r.AcquireRead(context.Background(), 0)
		s.Bytes()[100] ^= 1 // corrupt the slot
		if err := s.Release(); !errors.Is(err, ErrChecksum) {
			t.Fatalf("corrupt slot: %v", err)
		}
	})
	t.Run("None", func(t *testing.T) {
		cfg := testConfig(2, LatestOnly)
		cfg.Checksum = ChecksumNone
		b := createT(t, cfg)
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		writeSeq(t, w, 1, 0)
		s, _ := r.AcquireRead(context.Background(), 0)
		s.Bytes()[100] ^= 1
		if err := s.Release(); err != nil {
			t.Fatalf("None verified: %v", err)
		}
	})
	t.Run("Manual", func(t *testing.T) {
		cfg := testConfig(2, LatestOnly)
		cfg.Checksum = ChecksumManual
		b := createT(t, cfg)
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		writeSeq(t, w, 1, 0)
		s, _ := r.AcquireRead(context.Background(), 0)
		if err := s.VerifyChecksum(); !errors.Is(err, ErrChecksum) {
			t.Fatalf("Manual computed a hash by itself: %v", err)
		}
		s.Release()
		ws, _ := w.AcquireWrite(context.Background(), 0)
		ws.Bytes()[0] = 9
		ws.UpdateChecksum()
		ws.Publish()
		s, _ = r.AcquireRead(context.Background(), 0)
		if err := s.VerifyChecksum(); err != nil {
			t.Fatalf("explicit update then verify: %v", err)
		}
		s.Release()
	})
}

// §9.3: heartbeats are registered at attach, freed on close, refreshed by reads and
// commits.
func TestHeartbeats(t *testing.T) {
	for _, sp := range []SyncPolicy{LatestOnly, SingleReader, SyncReader} {
		b, _ := newHeapBlock(testConfig(2, sp))
		r := mustReader(t, b, "r")
		if c := b.Consumers(); len(c) != 1 || c[0].Name != "r" || c[0].Pid != proc.Self().Pid {
			t.Fatalf("%v: consumers %+v", sp, c)
		}
		hb0 := b.Consumers()[0].HeartbeatNs
		p0 := b.Metrics().ProducerHeartbeatNs
		w := mustWriter(t, b)
		time.Sleep(time.Millisecond) // the clock must move for the refresh to show
		writeSeq(t, w, 1, 0)
		readSeq(t, r, 0)
		if b.Consumers()[0].HeartbeatNs <= hb0 || b.Metrics().ProducerHeartbeatNs <= p0 {
			t.Fatalf("%v: heartbeats not refreshed", sp)
		}
		if !b.ProducerAlive() {
			t.Fatal("producer not alive")
		}
		r.Close()
		if len(b.Consumers()) != 0 {
			t.Fatalf("%v: entry not freed", sp)
		}
		b.Close()
	}
}

// §9.6 recovery scenarios.
func TestRecovery(t *testing.T) {
	b := createT(t, testConfig(4, LatestOnly))
	e := &b.slots[0]
	atomic.StoreUint64(&e.writeLock, deadID)
	storeState(e, stateWriting, 0, 0)
	if d, _ := b.DiagnoseSlot(0); !d.IsStuck || d.State != SlotWriting {
		t.Fatalf("diagnosis %+v", d)
	}
	if r := b.ReleaseZombieWriter(0); r != RecoverySuccess || atomic.LoadUint64(&e.writeLock) != 0 {
		t.Fatalf("release zombie writer: %v", r)
	}
	if r := b.ReleaseZombieWriter(0); r != RecoveryNotStuck {
		t.Fatalf("second release: %v", r)
	}
	atomic.StoreUint32(&b.slots[1].readerCount, 3)
	if r := b.ReleaseZombieReaders(1, false); r != RecoverySuccess || b.slots[1].readerCount != 0 {
		t.Fatalf("release zombie readers: %v", r)
	}
	atomic.StoreUint64(&b.slots[2].writeLock, deadID)
	storeState(&b.slots[2], stateWriting, 0, 0)
	if r := b.ForceReset(2, false); r != RecoverySuccess {
		t.Fatalf("force reset dead lock: %v", r)
	}
	atomic.StoreUint64(&b.slots[3].writeLock, b.self)
	if r := b.ForceReset(3, false); r != RecoveryUnsafe {
		t.Fatalf("force reset live lock: %v", r)
	}
	if r := b.ReleaseZombieWriter(3); r != RecoveryUnsafe {
		t.Fatalf("zombie writer live: %v", r)
	}
	if r := b.ForceReset(3, true); r != RecoverySuccess {
		t.Fatalf("forced: %v", r)
	}
	if r := b.ForceReset(9, true); r != RecoveryInvalidSlot {
		t.Fatalf("bad index: %v", r)
	}
	atomic.StoreUint64(&b.h.consumers[5].id, deadID)
	atomic.AddUint32(&b.h.activeConsumer, 1)
	if n, err := b.CleanupDeadConsumers(); n != 1 || err != nil || len(b.Consumers()) != 0 {
		t.Fatalf("cleanup %d %v", n, err)
	}
	if proc.Unpack(deadID).Alive() {
		t.Fatal("dead identity alive")
	}
	if b.Metrics().RecoveryActions < 5 {
		t.Fatalf("recovery_actions_count %d", b.Metrics().RecoveryActions)
	}
}

// A dead consumer holding a slot is reclaimed by the blocked writer (Latest_only
// drain and Single_reader ring-full), within the heartbeat timeout.
func TestDeadConsumerHoldsReclaimed(t *testing.T) {
	for _, sp := range []SyncPolicy{LatestOnly, SingleReader} {
		b, _ := newHeapBlock(testConfig(2, sp))
		w, err := b.NewWriter(WaitOptions{HeartbeatTimeout: 40 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r := mustReader(t, b, "victim")
		writeSeq(t, w, 0, 0)
		s, _ := r.AcquireRead(context.Background(), 0)
		_ = s
		// The "process" dies: its entry now names a dead identity, the hold stays.
		atomic.StoreUint64(&b.h.consumers[r.entry].id, deadID)
		r2 := mustReader(t, b, "next")
		for i := uint64(1); i < 6; i++ {
			if err := writeSeq(t, w, i, 5*time.Second); err != nil {
				t.Fatalf("%v: write %d blocked by a dead reader: %v", sp, i, err)
			}
			if sp == SingleReader {
				readSeq(t, r2, time.Second)
			}
		}
		if b.Metrics().RecoveryActions == 0 {
			t.Fatalf("%v: no recovery recorded", sp)
		}
		w.Close()
		b.Close()
	}
}

// A dead writer's lock is reclaimed by the next writer reaching the slot; an ordered
// reader waiting at its unfinished id gets a skip marker.
func TestDeadWriterReclaimed(t *testing.T) {
	b, _ := newHeapBlock(testConfig(2, LatestOnly))
	defer b.Close()
	atomic.StoreUint64(&b.slots[0].writeLock, deadID)
	storeState(&b.slots[0], stateWriting, 0, 0)
	w := mustWriter(t, b)
	if err := writeSeq(t, w, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	if b.Metrics().WriteLockContention != 1 {
		t.Fatal("zombie reclaim not counted")
	}

	o, _ := newHeapBlock(testConfig(2, SingleReader))
	defer o.Close()
	atomic.StoreUint64(&o.h.writeIndex, 1) // id 0 taken by a writer that then died
	atomic.StoreUint64(&o.slots[0].writeLock, deadID)
	storeState(&o.slots[0], stateWriting, 0, 0)
	w2, r := mustWriter(t, o), mustReader(t, o, "r")
	r.opts.Wait.HeartbeatTimeout = 40 * time.Millisecond
	writeSeq(t, w2, 1, 0)
	if v, err := readSeq(t, r, 5*time.Second); err != nil || v != 1 {
		t.Fatalf("reader stalled at a dead writer's id: %d %v", v, err)
	}
}

// §9.7 write-attach: two writers share a block; the segment outlives the attacher.
func TestWriteAttach(t *testing.T) {
	cfg := testConfig(4, LatestOnly)
	b := createT(t, cfg)
	a, err := Attach(b.Name(), cfg.Secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	wa := mustWriter(t, a)
	writeSeq(t, wa, 5, 0)
	a.Close()
	r := mustReader(t, b, "r")
	if v, err := readSeq(t, r, 0); err != nil || v != 5 {
		t.Fatalf("%d %v", v, err)
	}
}

// §9.8: an error inside a transaction aborts the slot; both sides stay usable.
func TestTypedExceptionSafety(t *testing.T) {
	type flex struct {
		ProducerPid uint64 `blds:"producer_pid"`
	}
	cfg := testConfig(4, SingleReader)
	cfg.FlexSize = 4096
	b, err := CreateTyped[flex, stressSlot](testName("typed"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tw, err := NewTypedWriter[flex, stressSlot](b, WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := AttachTyped[flex, stressSlot](b.Name(), cfg.Secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr, _ := NewTypedReader[flex, stressSlot](c, ReaderOptions{Name: "c"})
	boom := errors.New("boom")
	if _, err := tw.Write(context.Background(), 0, func(f *flex, s *stressSlot) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := tw.Write(context.Background(), 0, func(f *flex, s *stressSlot) error {
		f.ProducerPid, s.Sequence = 99, 7
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Read(context.Background(), 0, func(f *flex, s *stressSlot) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	var got uint64
	if _, err := tr.Read(context.Background(), time.Second, func(f *flex, s *stressSlot) error {
		got = s.Sequence + f.ProducerPid
		return nil
	}); err != nil || got != 106 {
		t.Fatalf("read %d %v", got, err)
	}
	type other struct{ X uint32 }
	if _, err := AttachTyped[flex, other](b.Name(), cfg.Secret, nil); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("mismatched typed attach: %v", err)
	}
}

func TestSpinLock(t *testing.T) {
	b, _ := newHeapBlock(testConfig(1, LatestOnly))
	defer b.Close()
	l, err := b.SpinLock(3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Lock(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(ctx, 1, 0); err != nil {
		t.Fatal("not recursive:", err)
	}
	if err := l.Lock(ctx, 2, 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("other token took a held lock: %v", err)
	}
	l.Unlock(1)
	if err := l.Lock(ctx, 2, 0); !errors.Is(err, ErrTimeout) {
		t.Fatal("released after one of two unlocks")
	}
	l.Unlock(1)
	if err := l.Lock(ctx, 2, 0); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(&b.h.spinlocks[3].owner, deadID)
	if err := l.Lock(ctx, 5, 0); err != nil {
		t.Fatal("dead owner's lock not reclaimed:", err)
	}
	if _, err := b.SpinLock(8); err == nil {
		t.Fatal("lock 8 exists")
	}
}

func TestAcquireReadID(t *testing.T) {
	b, _ := newHeapBlock(testConfig(4, LatestOnly))
	defer b.Close()
	w, r := mustWriter(t, b), mustReader(t, b, "r")
	if _, err := r.AcquireReadID(context.Background(), 0, 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("nothing committed yet: %v", err)
	}
	for i := uint64(0); i < 3; i++ {
		writeSeq(t, w, 100+i, 0)
	}
	s, err := r.AcquireReadID(context.Background(), 1, 0)
	if err != nil || binary.LittleEndian.Uint64(s.Bytes()) != 101 {
		t.Fatalf("by id: %v", err)
	}
	s.Release()
	go w.Write(context.Background(), time.Second, binary.LittleEndian.AppendUint64(nil, 103))
	if s, err = r.AcquireReadID(context.Background(), 3, 10*time.Second); err != nil {
		t.Fatalf("waiting for id 3: %v", err)
	}
	s.Release()
}

func TestView(t *testing.T) {
	b, _ := newHeapBlock(testConfig(2, LatestOnly))
	defer b.Close()
	w := mustWriter(t, b)
	s, _ := w.AcquireWrite(context.Background(), 0)
	v, err := View[stressSlot](s.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	v.Sequence = 5
	if binary.LittleEndian.Uint64(s.Bytes()) != 5 {
		t.Fatal("view does not alias the slot")
	}
	if _, err := View[[5000]byte](s.Bytes()); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("oversized view: %v", err)
	}
	if _, err := View[struct{ P *int }](s.Bytes()); !errors.Is(err, ErrNotPlain) {
		t.Fatalf("pointer view: %v", err)
	}
	if _, err := View[uint64](b.Flex()); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("no flex zone: %v", err)
	}
	s.Abort()
}

// A writer with a timeout shorter than the reap period still frees a dead reader's
// hold before giving up.
func TestShortTimeoutStillReaps(t *testing.T) {
	b, _ := newHeapBlock(testConfig(1, LatestOnly))
	defer b.Close()
	w, r := mustWriter(t, b), mustReader(t, b, "victim")
	writeSeq(t, w, 0, 0)
	if _, err := r.AcquireRead(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint64(&b.h.consumers[r.entry].id, deadID)
	if err := writeSeq(t, w, 1, 5*time.Millisecond); err != nil {
		t.Fatalf("short-timeout write over a dead reader's slot: %v", err)
	}
}

// B-22: a writer stores when it took a slot's write lock, so a diagnosis tells
// how long the lock is held and, once its holder is dead, how long it is stuck.
func TestLockHeldDuration(t *testing.T) {
	b := createT(t, testConfig(4, LatestOnly))
	w, err := b.NewWriter(WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := time.Now()
	s, err := w.AcquireWrite(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the held time must grow measurably
	d, _ := b.DiagnoseSlot(s.Index())
	if d.LockHeld < 20*time.Millisecond || d.LockHeld > time.Since(before) || d.IsStuck || d.StuckDuration != 0 {
		t.Fatalf("live holder: %+v", d)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if d, _ := b.DiagnoseSlot(s.Index()); d.LockHeld != 0 || atomic.LoadUint64(&b.slots[s.Index()].lockSince) != 0 {
		t.Fatalf("released lock still timed: %+v", d)
	}
	// A dead holder that took the lock 3 s ago.
	e := &b.slots[2]
	atomic.StoreUint64(&e.writeLock, deadID)
	atomic.StoreUint64(&e.lockSince, uint64(monoNow()-3e9))
	storeState(e, stateWriting, 0, 0)
	d, _ = b.DiagnoseSlot(2)
	if !d.IsStuck || d.StuckDuration < 3*time.Second || d.StuckDuration > 4*time.Second || d.LockHeld != d.StuckDuration {
		t.Fatalf("dead holder: %+v", d)
	}
	in, err := Inspect(b.Name())
	if err != nil || in.Slots[2].StuckDuration < 3*time.Second {
		t.Fatalf("inspection: %v %+v", err, in.Slots[2])
	}
	// Freeing the lock clears its time.
	if r := b.ForceReset(2, false); r != RecoverySuccess || atomic.LoadUint64(&e.lockSince) != 0 {
		t.Fatalf("force reset: %v", r)
	}
}
