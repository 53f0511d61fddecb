package shm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A file shrunk under a live mapping gives ErrFault, not a SIGBUS crash.
func TestFileShrunkWhileAttached(t *testing.T) {
	cfg := testConfig(4, LatestOnly)
	cfg.FlexSize = 4096
	b := createT(t, cfg)
	a, err := Attach(b.Name(), cfg.Secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w, r := mustWriter(t, a), mustReader(t, a, "r")
	writeSeq(t, w, 1, 0)
	if err := os.Truncate(b.path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AcquireRead(context.Background(), 0); !errors.Is(err, ErrFault) {
		t.Fatalf("read after shrink: %v, want ErrFault", err)
	}
	if _, err := w.AcquireWrite(context.Background(), 0); !errors.Is(err, ErrFault) {
		t.Fatalf("write after shrink: %v, want ErrFault", err)
	}
	if err := a.CheckSize(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("CheckSize: %v", err)
	}
	if rep, err := a.Check(false); err != nil || rep.OK() {
		t.Fatalf("Check after shrink: %+v %v", rep, err)
	}
	if _, err := a.Diagnose(); !errors.Is(err, ErrFault) {
		t.Fatalf("Diagnose: %v", err)
	}
}

// The integrity check verifies committed slots and the flex zone and repairs in place.
func TestCheckAndRepair(t *testing.T) {
	cfg := testConfig(4, LatestOnly)
	cfg.FlexSize = 4096
	b := createT(t, cfg)
	w := mustWriter(t, b)
	for i := uint64(0); i < 3; i++ {
		writeSeq(t, w, i, 0)
	}
	rep, err := Check(b.Name(), false)
	if err != nil || !rep.OK() || rep.SlotsVerified != 3 || !rep.FlexChecked {
		t.Fatalf("healthy block: %+v %v", rep, err)
	}
	b.slotBuf(1)[9] ^= 1
	b.Flex()[0] ^= 1
	rep, _ = Check(b.Name(), false)
	if rep.OK() || len(rep.BadSlots) != 1 || rep.BadSlots[0] != 1 || !rep.FlexBad {
		t.Fatalf("corruption not found: %+v", rep)
	}
	rep, _ = Check(b.Name(), true)
	if rep.Repaired != 2 {
		t.Fatalf("repair: %+v", rep)
	}
	if rep, _ = Check(b.Name(), false); !rep.OK() {
		t.Fatalf("after repair: %+v", rep)
	}
	atomic64Store(&b.slots[2].writeLock, deadID)
	if rep, _ = Check(b.Name(), false); rep.OK() {
		t.Fatal("dead writer lock not reported")
	}
}

// Sweep removes segments whose owners are all dead and keeps live ones.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	live, _ := newHeapBlock(testConfig(1, LatestOnly))
	dead, _ := newHeapBlock(testConfig(1, LatestOnly))
	defer live.Close()
	defer dead.Close()
	dead.h.creatorID, dead.h.producerID = deadID, deadID
	dead.h.consumers[0].id = deadID
	os.WriteFile(filepath.Join(dir, "plh_live"), live.mem, 0o600)
	os.WriteFile(filepath.Join(dir, "plh_dead"), dead.mem, 0o600)
	os.WriteFile(filepath.Join(dir, "plh_junk_new"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "other_dead"), dead.mem, 0o600)
	old := filepath.Join(dir, "plh_junk_old")
	os.WriteFile(old, []byte("x"), 0o600)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	got, err := sweepDir(dir, SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !(got[0] == "plh_dead" && got[1] == "plh_junk_old") {
		t.Fatalf("swept %v", got)
	}
}

// FuzzAttachHeader feeds arbitrary header bytes and file sizes to attach and check:
// each must end in a clear error or a working block, never a panic or a hang.
func FuzzAttachHeader(f *testing.F) {
	img, _ := newHeapBlock(testConfig(2, SingleReader))
	valid := append([]byte(nil), img.mem...)
	f.Add(valid[:256], uint16(len(valid)), uint16(0))
	f.Add(valid[:200], uint16(100), uint16(160))
	f.Add([]byte{0x42, 0x48, 0x4c, 0x50, 1, 0}, uint16(8192), uint16(0))
	f.Fuzz(func(t *testing.T, patch []byte, size, at uint16) {
		if len(patch) > 512 {
			patch = patch[:512]
		}
		file := append([]byte(nil), valid...)
		off := int(at) % headerSize
		copy(file[off:], patch)
		if int(size) < len(file) {
			file = file[:size]
		}
		// On tmpfs, like a real segment (and no disk I/O per input).
		f, err := os.CreateTemp(shmDir, "plh_unit_fuzz_*_"+strconv.Itoa(os.Getpid())+"_0")
		if err != nil {
			t.Fatal(err)
		}
		path := f.Name()
		defer os.Remove(path)
		_, err = f.Write(file)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b, err := attachPath(path, "fuzz", 0xDEADBEEFCAFEBABE, true, &AttachOptions{InitWait: time.Millisecond})
		if err != nil {
			if b != nil {
				t.Fatal("block with error")
			}
			return
		}
		defer b.Close()
		b.Check(false)
		b.Diagnose()
		if r, err := b.NewReader(ReaderOptions{}); err == nil {
			if s, err := r.AcquireRead(context.Background(), 0); err == nil {
				s.Release()
			}
			r.Close()
		}
	})
}
