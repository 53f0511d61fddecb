package shm

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The companion segment of a consumer group: one per (DataBlock, group name), at
// /dev/shm/<block name>.g<16 hex digits of FNV-1a(group)>, mode 0600. It is not part
// of the DataBlock, whose layout is unchanged. Layout (all little-endian u64, one
// hot word per cache line):
//
//	  0 magic "PLHGROUP", 8 version, 16 the DataBlock creator's identity, 24 ring
//	    capacity N, 32 FNV-1a of the group name
//	 64 next: the lowest id no member has claimed yet (a hint; claims are exact)
//	128 done: every id below it is finished by the group (the group's read cursor)
//	192 members[maxGroupMembers] of 32 bytes: identity, heartbeat entry+1, holding
//	    (the id+1 of the member's claim, 0 none), spare
//	then claimed[N], then finished[N]: slot i holds id+1 of the last id of slot i
//	    claimed / finished by the group, so every id is claimed by one member only
//	    (CAS on its slot's word) and a finished id is recognised without a lap.
const (
	groupMagic      = 0x50554f5247484c50 // "PLHGROUP"
	groupVersion    = 1
	maxGroupMembers = 16
	groupHeaderSize = 192
	groupMemberSize = 32
	memberLeft      = 1 // identity of a member that closed holding a claim (never alive)
)

type groupHeader struct {
	magic    uint64
	version  uint64
	creator  uint64
	capacity uint64
	nameHash uint64
	_        [3]uint64
	next     uint64
	_        [7]uint64
	done     uint64
	_        [7]uint64
}

type groupMember struct {
	id      uint64
	entry   uint64
	holding uint64
	_       uint64
}

// groupSeg is one process's mapping of a group's companion segment.
type groupSeg struct {
	path     string
	file     *os.File
	mem      []byte
	h        *groupHeader
	members  []groupMember
	claimed  []uint64
	finished []uint64
}

func groupSize(capacity uint64) int {
	return groupHeaderSize + maxGroupMembers*groupMemberSize + int(2*8*capacity)
}

func groupHash(group string) uint64 {
	f := fnv.New64a()
	f.Write([]byte(group))
	return f.Sum64()
}

// GroupSegmentPath returns the file of the companion segment of group on the
// DataBlock name.
func GroupSegmentPath(block, group string) string {
	n, _ := validName(block)
	return filepath.Join(shmDir, n+".g"+fmt.Sprintf("%016x", groupHash(group)))
}

func mapGroup(f *os.File, path string, capacity uint64) (*groupSeg, error) {
	size := groupSize(capacity)
	mem, err := mapFile(f, size)
	if err != nil {
		return nil, fmt.Errorf("mmap group segment: %w", err)
	}
	g := &groupSeg{path: path, file: f, mem: mem, h: (*groupHeader)(unsafe.Pointer(&mem[0]))}
	g.members = unsafe.Slice((*groupMember)(unsafe.Pointer(&mem[groupHeaderSize])), maxGroupMembers)
	off := groupHeaderSize + maxGroupMembers*groupMemberSize
	g.claimed = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off])), capacity)
	g.finished = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off+int(8*capacity)])), capacity)
	return g, nil
}

func (g *groupSeg) close() {
	unmap(g.mem)
	g.file.Close()
}

// openGroup opens (or creates) the companion segment of group on b and returns it
// with its join lock (an OFD lock on byte 0) held; unlock releases it. A segment
// of another incarnation of the DataBlock, of another geometry, or whose members
// are all dead is stale: it is removed under the lock and made again.
func (b *Block) openGroup(group string) (*groupSeg, error) {
	path := GroupSegmentPath(b.name, group)
	for range 8 {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
		if errors.Is(err, os.ErrNotExist) {
			if err := b.createGroup(path, group); err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open group segment: %w", err)
		}
		if err := lockByte(f, 0, replaceLockWait); err != nil {
			f.Close()
			return nil, err
		}
		if !sameFile(f, path) { // removed or replaced while we waited for the lock
			f.Close()
			continue
		}
		if why := b.groupStale(f, group); why != "" {
			b.log.Warn("replaced stale consumer-group segment", "path", path, "why", why)
			os.Remove(path)
			f.Close()
			continue
		}
		g, err := mapGroup(f, path, b.lay.capacity)
		if err != nil {
			f.Close()
			return nil, err
		}
		return g, nil
	}
	return nil, fmt.Errorf("%w: group segment %s is replaced each time it is opened", ErrSegmentInUse, path)
}

// unlock releases the join lock.
func (g *groupSeg) unlock() {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Start: 0, Len: 1}
	_ = unix.FcntlFlock(g.file.Fd(), unix.F_OFD_SETLK, &lk)
}

// createGroup formats a new companion segment unnamed and links it under path
// (EEXIST when another member made it first).
func (b *Block) createGroup(path, group string) error {
	f, err := createUnnamed(shmDir)
	if err != nil {
		return err
	}
	defer f.Close()
	size := groupSize(b.lay.capacity)
	if err := preallocate(f, int64(size)); err != nil {
		return fmt.Errorf("preallocate group segment: %w", err)
	}
	g, err := mapGroup(f, path, b.lay.capacity)
	if err != nil {
		return err
	}
	defer unmap(g.mem)
	g.h.version = groupVersion
	g.h.creator = atomic.LoadUint64(&b.h.creatorID)
	g.h.capacity = b.lay.capacity
	g.h.nameHash = groupHash(group)
	g.h.next, g.h.done = invalidID, invalidID // set by the first member
	atomic.StoreUint64(&g.h.magic, groupMagic)
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return err
		}
		return fmt.Errorf("link group segment %s: %w", path, err)
	}
	return nil
}

// groupStale reads the companion's header with pread and says why it cannot be
// used ("" when it can).
func (b *Block) groupStale(f *os.File, group string) string {
	buf := heapBuffer(groupSize(b.lay.capacity))
	if n, _ := f.ReadAt(buf, 0); n < len(buf) {
		return "short file"
	}
	h := (*groupHeader)(unsafe.Pointer(&buf[0]))
	switch {
	case h.magic != groupMagic || h.version != groupVersion:
		return "not a group segment"
	case h.creator != atomic.LoadUint64(&b.h.creatorID) || h.capacity != b.lay.capacity:
		return "made for another incarnation of the DataBlock"
	case h.nameHash != groupHash(group):
		return "another group's segment"
	}
	if h.next != invalidID && groupMembersDead(buf) {
		return "every member is dead"
	}
	return ""
}

// groupMembersDead reports whether no member recorded in the companion bytes buf
// is alive.
func groupMembersDead(buf []byte) bool {
	ms := unsafe.Slice((*groupMember)(unsafe.Pointer(&buf[groupHeaderSize])), maxGroupMembers)
	b := &Block{}
	for i := range ms {
		if id := ms[i].id; id > memberLeft && b.alive(id) {
			return false
		}
	}
	return true
}

// groupFileDead reads a companion segment (pread, no mapping) for Sweep: it is a
// group segment and all its members are dead (one no member has joined yet only
// once old). ok is false when f is not one.
func groupFileDead(f *os.File, old bool) (dead, ok bool) {
	buf := heapBuffer(groupHeaderSize + maxGroupMembers*groupMemberSize)
	if n, _ := f.ReadAt(buf, 0); n < len(buf) {
		return false, false
	}
	h := (*groupHeader)(unsafe.Pointer(&buf[0]))
	if h.magic != groupMagic {
		return false, false
	}
	return (h.next != invalidID || old) && groupMembersDead(buf), true
}
