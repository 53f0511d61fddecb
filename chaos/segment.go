package chaos

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/pylabhub/plh/internal/proc"
)

// ShmDir is where POSIX shared memory segments live.
const ShmDir = "/dev/shm"

// Offsets of spec/datablock.md §4 and §5 that the injectors need.
const (
	offMagic        = 0
	offTotalSize    = 8
	offSyncPolicy   = 152
	offPhysPage     = 156
	offStride       = 160
	offCapacity     = 164
	offFlexSize     = 168
	offCommitIndex  = 192
	offReadIndex    = 200
	headerSize      = 4096
	slotEntrySize   = 64
	checksumEntry   = 33
	entryWriteLock  = 0
	entryState      = 12
	stateCommitted  = 2
	dataBlockMagic  = 0x504C4842
	invalidSlotID   = math.MaxUint64
	latestOnly      = 0
	corruptOffset   = 8 // keep the sequence number (first 8 bytes) readable
	corruptMaxBytes = 8
)

// Layout is what the header says about a segment's ring.
type Layout struct {
	Capacity    uint64 // N slots
	Stride      uint64 // S bytes per slot
	RingOffset  uint64 // offset of slot 0
	SyncPolicy  uint32 // 0 Latest_only, 1 Single_reader, 2 Sync_reader
	CommitIndex uint64 // last committed slot id (MaxUint64 = none)
	ReadIndex   uint64 // ordered policies' tail
	Total       uint64
}

func readLayout(f *os.File) (Layout, error) {
	hdr := make([]byte, headerSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return Layout{}, fmt.Errorf("%w: %s: read header: %v", ErrNotDataBlock, f.Name(), err)
	}
	le := binary.LittleEndian
	if le.Uint32(hdr[offMagic:]) != dataBlockMagic {
		return Layout{}, fmt.Errorf("%w: %s: bad magic", ErrNotDataBlock, f.Name())
	}
	l := Layout{
		Capacity:    uint64(le.Uint32(hdr[offCapacity:])),
		Stride:      uint64(le.Uint32(hdr[offStride:])),
		SyncPolicy:  le.Uint32(hdr[offSyncPolicy:]),
		CommitIndex: le.Uint64(hdr[offCommitIndex:]),
		ReadIndex:   le.Uint64(hdr[offReadIndex:]),
		Total:       le.Uint64(hdr[offTotalSize:]),
	}
	if l.Capacity == 0 {
		l.Capacity = 1
	}
	if l.Stride == 0 {
		l.Stride = uint64(le.Uint32(hdr[offPhysPage:]))
	}
	flex := uint64(le.Uint32(hdr[offFlexSize:]))
	d := (headerSize + 97*l.Capacity + headerSize - 1) / headerSize * headerSize
	l.RingOffset = d + flex
	st, err := f.Stat()
	if err != nil {
		return Layout{}, err
	}
	if l.Stride == 0 || l.Capacity > 1<<24 || l.RingOffset+l.Capacity*l.Stride > uint64(st.Size()) {
		return Layout{}, fmt.Errorf("%w: %s: header describes %d slots of %d bytes beyond the file's %d bytes",
			ErrNotDataBlock, f.Name(), l.Capacity, l.Stride, st.Size())
	}
	return l, nil
}

func entry(f *os.File, i uint64) ([]byte, error) {
	b := make([]byte, slotEntrySize)
	_, err := f.ReadAt(b, int64(headerSize+i*slotEntrySize))
	return b, err
}

// SegmentPath returns the /dev/shm path of segment name.
func SegmentPath(name string) string { return filepath.Join(ShmDir, filepath.Base(name)) }

// CorruptSlot flips bytes in the payload of committed slots of the segment at
// path, leaving their stored checksums as they are, so the next verified read of
// such a slot fails. pick chooses the slots: "next" (the slot an ordered reader
// reads next; under Latest_only the latest commit), "latest" or "all". It
// returns a description of what was damaged.
func CorruptSlot(path, pick string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("chaos: corrupt: %w", err)
	}
	defer f.Close()
	l, err := readLayout(f)
	if err != nil {
		return "", err
	}
	if l.CommitIndex == invalidSlotID {
		return "", fmt.Errorf("%w: %s: nothing committed yet", ErrNoCommittedSlot, path)
	}
	var idx []uint64
	switch pick {
	case "all":
		for i := uint64(0); i < l.Capacity; i++ {
			idx = append(idx, i)
		}
	case "next":
		if l.SyncPolicy != latestOnly && l.ReadIndex <= l.CommitIndex {
			idx = []uint64{l.ReadIndex % l.Capacity}
			break
		}
		fallthrough
	default: // latest
		idx = []uint64{l.CommitIndex % l.Capacity}
	}
	n := min(uint64(corruptMaxBytes), l.Stride)
	off := uint64(corruptOffset)
	if l.Stride < corruptOffset+n {
		off = 0
	}
	var done []string
	for _, i := range idx {
		e, err := entry(f, i)
		if err != nil {
			return "", fmt.Errorf("chaos: corrupt %s: %w", path, err)
		}
		if e[entryState] != stateCommitted {
			continue
		}
		at := int64(l.RingOffset + i*l.Stride + off)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, at); err != nil {
			return "", fmt.Errorf("chaos: corrupt %s: %w", path, err)
		}
		for j := range buf {
			buf[j] ^= 0xFF
		}
		if _, err := f.WriteAt(buf, at); err != nil {
			return "", fmt.Errorf("chaos: corrupt %s: %w", path, err)
		}
		done = append(done, fmt.Sprint(i))
	}
	if len(done) == 0 {
		return "", fmt.Errorf("%w: %s (pick %s)", ErrNoCommittedSlot, path, pick)
	}
	return fmt.Sprintf("flipped %d bytes at payload offset %d of slot index %v (commit_index %d, read_index %d)",
		n, off, done, l.CommitIndex, l.ReadIndex), nil
}

// HeldLock is a slot write lock found held in a segment.
type HeldLock struct {
	Slot  uint64
	Pid   int
	Alive bool
}

// HeldLocks lists the slot write locks of the segment at path that are held,
// and whether their holder is still alive (a dead holder is a zombie lock that
// the next writer reaching the slot must reclaim).
func HeldLocks(path string) ([]HeldLock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chaos: locks: %w", err)
	}
	defer f.Close()
	l, err := readLayout(f)
	if err != nil {
		return nil, err
	}
	var out []HeldLock
	for i := uint64(0); i < l.Capacity; i++ {
		e, err := entry(f, i)
		if err != nil {
			return nil, fmt.Errorf("chaos: locks %s: %w", path, err)
		}
		// The word holds a pid, or a packed proc.Identity (pid in the low bits).
		if w := binary.LittleEndian.Uint64(e[entryWriteLock:]); w != 0 {
			id := proc.Unpack(w)
			out = append(out, HeldLock{Slot: i, Pid: id.Pid, Alive: id.Alive()})
		}
	}
	return out, nil
}
