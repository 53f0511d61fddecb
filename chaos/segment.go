package chaos

import (
	"errors"
	"fmt"
	"os"

	"github.com/pylabhub/plh/shm"
)

// Payload bytes CorruptSlot flips: it keeps the sequence number (the first 8
// bytes) readable.
const (
	corruptOffset   = 8
	corruptMaxBytes = 8
)

// SegmentPath returns the /dev/shm path of segment name.
//
// Deprecated: use shm.SegmentPath; this forwards to it until its callers move.
func SegmentPath(name string) string { return shm.SegmentPath(name) }

// inspect reads the segment at path through shm's read-only inspector; a file
// that is not a DataBlock (bad or missing magic, a geometry beyond the file) is
// ErrNotDataBlock.
func inspect(path string) (*shm.Inspection, error) {
	in, err := shm.InspectFile(path)
	switch {
	case err == nil:
		return in, nil
	case errors.Is(err, shm.ErrBadMagic), errors.Is(err, shm.ErrNotInitialized),
		errors.Is(err, shm.ErrTruncated), errors.Is(err, shm.ErrCorruptHeader):
		return nil, fmt.Errorf("%w: %w", ErrNotDataBlock, err)
	}
	return nil, fmt.Errorf("chaos: %w", err)
}

// CorruptSlot flips bytes in the payload of committed slots of the segment at
// path, leaving their stored checksums as they are, so the next verified read of
// such a slot fails. pick chooses the slots: "next" (the slot an ordered reader
// reads next; under Latest_only the latest commit), "latest" or "all". It
// returns a description of what was damaged. The layout comes from shm.InspectFile;
// the bytes are changed with pread/pwrite (nothing is mapped, so a bad segment
// cannot fault us).
func CorruptSlot(path, pick string) (string, error) {
	in, err := inspect(path)
	if err != nil {
		return "", err
	}
	if in.CommitIndex == shm.NoCommit {
		return "", fmt.Errorf("%w: %s: nothing committed yet", ErrNoCommittedSlot, path)
	}
	var idx []uint64
	switch pick {
	case "all":
		for i := uint64(0); i < in.Capacity; i++ {
			idx = append(idx, i)
		}
	case "next":
		if in.Sync != shm.LatestOnly && in.ReadIndex <= in.CommitIndex {
			idx = []uint64{in.ReadIndex % in.Capacity}
			break
		}
		fallthrough
	default: // latest
		idx = []uint64{in.CommitIndex % in.Capacity}
	}
	n := min(uint64(corruptMaxBytes), in.SlotSize)
	off := uint64(corruptOffset)
	if in.SlotSize < corruptOffset+n {
		off = 0
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("chaos: corrupt: %w", err)
	}
	defer f.Close()
	var done []string
	for _, i := range idx {
		if in.Slots[i].State != shm.SlotCommitted {
			continue
		}
		if err := flipBytes(f, in.SlotOffset(i)+int64(off), int(n)); err != nil {
			return "", fmt.Errorf("chaos: corrupt %s: %w", path, err)
		}
		done = append(done, fmt.Sprint(i))
	}
	if len(done) == 0 {
		return "", fmt.Errorf("%w: %s (pick %s)", ErrNoCommittedSlot, path, pick)
	}
	return fmt.Sprintf("flipped %d bytes at payload offset %d of slot index %v (commit_index %d, read_index %d)",
		n, off, done, in.CommitIndex, in.ReadIndex), nil
}

// flipBytes inverts n bytes of f at off.
func flipBytes(f *os.File, off int64, n int) error {
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err
	}
	for j := range buf {
		buf[j] ^= 0xFF
	}
	_, err := f.WriteAt(buf, off)
	return err
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
	in, err := inspect(path)
	if err != nil {
		return nil, err
	}
	var out []HeldLock
	for _, s := range in.Slots {
		if s.Writer != "" {
			out = append(out, HeldLock{Slot: uint64(s.Index), Pid: s.WriterPid, Alive: !s.IsStuck})
		}
	}
	return out, nil
}

// CheckSegment runs shm's integrity check on segment name without repairing
// anything (shm.Check: geometry, indices, locks and heartbeat entries held by
// dead processes, slot and flex-zone checksums). The scenario engine runs it on
// a killed producer's segment before the segment is swept; report.String()
// summarises it for the timeline. An error means the check could not run (no
// such segment, not a DataBlock of this layout).
func CheckSegment(name string) (shm.CheckReport, error) {
	r, err := shm.Check(name, false)
	if err != nil {
		return r, fmt.Errorf("chaos: check segment: %w", err)
	}
	return r, nil
}
