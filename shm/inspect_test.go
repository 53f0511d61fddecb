package shm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// TestInspectAgreesWithTheMapping reads a live segment through the inspector and
// compares every field with what the mapped Block reports.
func TestInspectAgreesWithTheMapping(t *testing.T) {
	cfg := testConfig(4, SyncReader)
	cfg.FlexSize = 100
	b, err := Create(testName("inspect"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := mustWriter(t, b)
	for i := range 3 {
		if err := writeSeq(t, w, uint64(i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	r := mustReader(t, b, "c1")
	rs, err := r.AcquireRead(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Release()
	ws, err := w.AcquireWrite(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Abort()

	in, err := Inspect(b.Name())
	if err != nil {
		t.Fatal(err)
	}
	m := b.Metrics()
	if in.Capacity != 4 || in.SlotSize != 4096 || in.FlexSize != 4096 || in.Sync != SyncReader ||
		in.ChecksumPolicy != ChecksumEnforced || in.TotalSize != uint64(b.Size()) || in.FileSize != int64(b.Size()) ||
		!in.LayoutHashOK || !in.LayoutChecksumOK || in.VersionMajor != 1 {
		t.Fatalf("header fields: %+v", in)
	}
	if in.WriteIndex != m.WriteIndex || in.CommitIndex != m.CommitIndex || in.ReadIndex != m.ReadIndex || in.ActiveConsumers != 1 {
		t.Fatalf("indices %d/%d/%d/%d, mapping %+v", in.WriteIndex, in.CommitIndex, in.ReadIndex, in.ActiveConsumers, m)
	}
	if want := b.lay.ringOff + 2*b.lay.stride; in.SlotOffset(2) != int64(want) {
		t.Fatalf("slot 2 at %d, want %d", in.SlotOffset(2), want)
	}
	diag, err := b.Diagnose()
	if err != nil {
		t.Fatal(err)
	}
	// The held lock's age grows between the two readings: compare it apart.
	held := ws.Index()
	if h := in.Slots[held].LockHeld; h <= 0 || h > diag[held].LockHeld {
		t.Fatalf("held lock's age: inspected %v, then mapped %v", h, diag[held].LockHeld)
	}
	slots := append([]SlotDiagnosis(nil), in.Slots...)
	slots[held].LockHeld, diag[held].LockHeld = 0, 0
	if !reflect.DeepEqual(slots, diag) {
		t.Fatalf("slots\n%+v\nmapping\n%+v", slots, diag)
	}
	if !reflect.DeepEqual(in.Consumers, b.Consumers()) || len(in.Consumers) != 1 || in.Consumers[0].Held != 1 {
		t.Fatalf("consumers %+v, mapping %+v", in.Consumers, b.Consumers())
	}
	if s := in.Slots[ws.Index()]; s.WriterPid != os.Getpid() || s.IsStuck {
		t.Fatalf("held slot %+v", s)
	}
}

func TestInspectRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Inspect("plh_unit_missing_" + testName("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Inspect("a/b"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := InspectFile(write("short", make([]byte, 100))); !errors.Is(err, ErrTruncated) {
		t.Errorf("short: %v", err)
	}
	if _, err := InspectFile(write("zero", make([]byte, 8192))); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("zero magic: %v", err)
	}
	junk := make([]byte, 8192)
	binary.LittleEndian.PutUint32(junk, 0x12345678)
	if _, err := InspectFile(write("junk", junk)); !errors.Is(err, ErrBadMagic) {
		t.Errorf("foreign magic: %v", err)
	}
	for _, c := range []struct {
		name          string
		capacity, unt uint32
	}{{"beyond", 3, 4096}, {"huge", 1 << 30, 4096}, {"wrap", ^uint32(0), ^uint32(0) &^ 4095}} {
		hdr := make([]byte, 12288)
		binary.LittleEndian.PutUint32(hdr, magicValue)
		binary.LittleEndian.PutUint32(hdr[156:], Page4K)
		binary.LittleEndian.PutUint32(hdr[160:], c.unt)
		binary.LittleEndian.PutUint32(hdr[164:], c.capacity)
		if _, err := InspectFile(write(c.name, hdr)); !errors.Is(err, ErrCorruptHeader) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// Offset points at the words the mapped Block uses: a value written at the
// offset through the file is what the mapping reads.
func TestInspectOffsets(t *testing.T) {
	b := createT(t, testConfig(4, SyncReader))
	in, err := Inspect(b.Name())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(b.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for k, c := range []struct {
		w    ControlWord
		i    int
		read func() uint64
	}{
		{WordWriteIndex, 0, func() uint64 { return atomic.LoadUint64(&b.h.writeIndex) }},
		{WordCommitIndex, 0, func() uint64 { return atomic.LoadUint64(&b.h.commitIndex) }},
		{WordReadIndex, 0, func() uint64 { return atomic.LoadUint64(&b.h.readIndex) }},
		{WordSlotWriteLock, 3, func() uint64 { return atomic.LoadUint64(&b.slots[3].writeLock) }},
		{WordSlotReaderCount, 2, func() uint64 { return uint64(atomic.LoadUint32(&b.slots[2].readerCount)) }},
		{WordConsumerID, 5, func() uint64 { return atomic.LoadUint64(&b.h.consumers[5].id) }},
		{WordSyncPosition, 7, func() uint64 { return atomic.LoadUint64(&b.h.syncPositions[7]) }},
	} {
		off, size, err := in.Offset(c.w, c.i)
		if err != nil {
			t.Fatalf("%v[%d]: %v", c.w, c.i, err)
		}
		want := uint64(0x1000 + k)
		buf := binary.LittleEndian.AppendUint64(nil, want)[:size]
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if got := c.read(); got != want {
			t.Errorf("%v[%d] at offset %d: mapping reads %#x, want %#x", c.w, c.i, off, got, want)
		}
	}
	atomic.StoreUint64(&b.h.consumers[5].id, 0)
	for _, c := range []struct {
		w ControlWord
		i int
	}{{WordSlotWriteLock, 4}, {WordSlotReaderCount, -1}, {WordConsumerID, 8}, {ControlWord(99), 0}} {
		if _, _, err := in.Offset(c.w, c.i); !errors.Is(err, ErrRange) {
			t.Errorf("%v[%d]: %v, want ErrRange", c.w, c.i, err)
		}
	}
}
