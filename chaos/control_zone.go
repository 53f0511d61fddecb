package chaos

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
)

// Targets of CorruptControl (the corrupt_control fault kind).
const (
	TargetIndices      = "indices"       // ordered: read_index ahead of write_index; Latest_only: commit_index near 2^64
	TargetReaderCounts = "reader_counts" // the next slot's reader_count = 1, owned by nobody
	TargetLocks        = "locks"         // the next slot's write_lock = a live process that never writes (init)
	TargetHeartbeats   = "heartbeats"    // the first consumer entry's id = a dead identity (reaped, then lost)
	TargetRandom       = "random"        // one of the above
)

// ControlTargets lists the targets CorruptControl accepts.
var ControlTargets = []string{TargetIndices, TargetReaderCounts, TargetLocks, TargetHeartbeats, TargetRandom}

// deadIdentity names a process that cannot exist (pid above the kernel's limit).
var deadIdentity = proc.Identity{Pid: 1<<22 - 1, StartTime: 1}.Pack()

// scribble is one word to write.
type scribble struct {
	word  shm.ControlWord
	index int
	value uint64
}

// CorruptControl scribbles one word of the control zone of segment name, as a
// process of the same user could: target is one of ControlTargets. The word's
// place comes from shm.Inspect; it is written with pwrite (nothing is mapped).
// It returns what was changed ("set read_index from 3 to 8 ...").
func CorruptControl(name, target string) (string, error) {
	in, err := shm.Inspect(name)
	if err != nil {
		return "", fmt.Errorf("chaos: corrupt control: %w", err)
	}
	if target == TargetRandom {
		target = ControlTargets[rand.IntN(len(ControlTargets)-1)]
	}
	s, err := pickScribble(in, target)
	if err != nil {
		return "", err
	}
	off, size, err := in.Offset(s.word, s.index)
	if err != nil {
		return "", fmt.Errorf("chaos: corrupt control %s: %w", name, err)
	}
	f, err := os.OpenFile(in.Path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("chaos: corrupt control: %w", err)
	}
	defer f.Close()
	old := make([]byte, size)
	if _, err := f.ReadAt(old, off); err != nil {
		return "", fmt.Errorf("chaos: corrupt control %s: %w", name, err)
	}
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, s.value)[:size], off); err != nil {
		return "", fmt.Errorf("chaos: corrupt control %s: %w", name, err)
	}
	return fmt.Sprintf("%s: set %v[%d] (offset %d) from %#x to %#x (%v, write_index %d, commit_index %d, read_index %d)",
		target, s.word, s.index, off, le(old), s.value, in.Sync, in.WriteIndex, in.CommitIndex, in.ReadIndex), nil
}

// pickScribble chooses the word and value for target on the inspected segment.
func pickScribble(in *shm.Inspection, target string) (scribble, error) {
	next := int(in.WriteIndex % in.Capacity) // the slot the writer reaches next
	switch target {
	case TargetIndices:
		if in.Sync == shm.LatestOnly {
			return scribble{shm.WordCommitIndex, 0, ^uint64(0) - 1}, nil
		}
		return scribble{shm.WordReadIndex, 0, in.WriteIndex + in.Capacity + 1}, nil
	case TargetReaderCounts:
		return scribble{shm.WordSlotReaderCount, next, 1}, nil
	case TargetLocks:
		st, err := proc.StartTime(1)
		if err != nil {
			return scribble{}, fmt.Errorf("chaos: corrupt control locks: no live foreign process: %w", err)
		}
		return scribble{shm.WordSlotWriteLock, next, proc.Identity{Pid: 1, StartTime: st}.Pack()}, nil
	case TargetHeartbeats:
		for _, c := range in.Consumers {
			if !c.Reclaiming {
				return scribble{shm.WordConsumerID, c.Entry, deadIdentity}, nil
			}
		}
		return scribble{}, fmt.Errorf("%w: %s: no consumer heartbeat entry in use", ErrNothingToCorrupt, in.Path)
	}
	return scribble{}, fmt.Errorf("%w: %q (want one of %v)", ErrBadTarget, target, ControlTargets)
}

// le reads a little-endian word of up to 8 bytes.
func le(b []byte) uint64 {
	var w [8]byte
	copy(w[:], b)
	return binary.LittleEndian.Uint64(w[:])
}
