package shm

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// NoCommit is the commit_index of a segment where nothing was committed yet.
const NoCommit = invalidID

// maxInspectCapacity bounds the slot count an inspected header may claim (the
// control zone is read into memory).
const maxInspectCapacity = 1 << 24

// Inspection is a read-only snapshot of a segment: its header fields, its slot
// coordination entries and its consumer heartbeat entries. It is read with pread
// from the file, so nothing is mapped, no party is registered, no counter moves
// and no secret is needed: tools and fault injectors may look at a hostile or
// half-written segment without faulting or disturbing the parties. Only the
// magic number and a geometry that fits the file are required; the version,
// layout hash and layout checksum are reported, not enforced.
type Inspection struct {
	Path     string
	FileSize int64

	Magic                      uint32
	VersionMajor, VersionMinor uint16
	TotalSize                  uint64 // total_block_size as stored
	PageSize                   uint32
	Capacity                   uint64 // N (a stored 0 reads as 1)
	SlotSize                   uint64 // stride S (a stored 0 reads as the page size)
	FlexSize                   uint64 // flex-zone bytes as stored
	RingOffset                 uint64 // file offset of slot 0's payload

	Sync           SyncPolicy     // SyncUnset when the stored value is out of range
	ChecksumPolicy ChecksumPolicy // ChecksumDefault when out of range

	WriteIndex, CommitIndex, ReadIndex uint64 // CommitIndex MaxUint64 = nothing committed
	ActiveConsumers                    uint32

	LayoutHashOK     bool // header layout hash equals this build's
	LayoutChecksumOK bool // layout checksum matches the geometry fields

	Slots     []SlotDiagnosis // one per slot, in index order
	Consumers []ConsumerInfo  // occupied heartbeat entries (Reclaiming ones too)
}

// Inspect reads a snapshot of the segment name (see Inspection).
func Inspect(name string) (*Inspection, error) {
	n, err := validName(name)
	if err != nil {
		return nil, err
	}
	return InspectFile(SegmentPath(n))
}

// InspectFile reads a snapshot of the DataBlock in the file at path. Errors:
// ErrNotFound (no such file), ErrNotInitialized (magic still 0), ErrBadMagic,
// ErrTruncated (shorter than a header), ErrCorruptHeader (a geometry that does not
// fit the file), each wrapped with the path; or the I/O error.
func InspectFile(path string) (*Inspection, error) {
	wrap := func(err error) error { return fmt.Errorf("inspect %s: %w", path, err) }
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, wrap(fmt.Errorf("%w: %v", ErrNotFound, err))
		}
		return nil, wrap(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, wrap(err)
	}
	if st.Size() < headerSize {
		return nil, wrap(fmt.Errorf("%w: file has %d bytes, less than a header", ErrTruncated, st.Size()))
	}
	hdr := heapBuffer(headerSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, wrap(fmt.Errorf("read header: %w", err))
	}
	in, err := inspectHeader(headerAt(hdr), st.Size())
	if err != nil {
		return nil, wrap(err)
	}
	in.Path = path
	ctl := heapBuffer(headerSize + int(in.Capacity)*slotEntrySize)
	if _, err := f.ReadAt(ctl[headerSize:], headerSize); err != nil {
		return nil, wrap(fmt.Errorf("read control zone: %w", err))
	}
	commit := in.CommitIndex
	for i, e := range slotEntriesAt(ctl, int(in.Capacity)) {
		in.Slots = append(in.Slots, diagnoseEntry(&e, i, commit, aliveIdentity))
	}
	h := headerAt(hdr)
	for i := range h.consumers {
		if c, ok := consumerAt(h, i, true); ok {
			in.Consumers = append(in.Consumers, c)
		}
	}
	return in, nil
}

// inspectHeader reads the header fields and checks that the geometry fits size.
func inspectHeader(h *header, size int64) (*Inspection, error) {
	if h.magic == 0 {
		return nil, ErrNotInitialized
	}
	if h.magic != magicValue {
		return nil, fmt.Errorf("%w: %#08x", ErrBadMagic, h.magic)
	}
	in := &Inspection{
		FileSize: size, Magic: h.magic, VersionMajor: h.verMajor, VersionMinor: h.verMinor,
		TotalSize: h.totalSize, PageSize: h.pageSize, FlexSize: uint64(h.flexSize),
		WriteIndex: h.writeIndex, CommitIndex: h.commitIndex, ReadIndex: h.readIndex,
		ActiveConsumers:  h.activeConsumer,
		LayoutHashOK:     h.layoutHash == headerLayoutHash,
		LayoutChecksumOK: h.layoutChecksum == h.layoutChecksumNow(),
	}
	if h.syncPolicy <= 2 {
		in.Sync = SyncPolicy(h.syncPolicy + 1)
	}
	if h.checksumPolicy <= 2 {
		in.ChecksumPolicy = ChecksumPolicy(h.checksumPolicy + 1)
	}
	lay := headerLayout(h)
	in.Capacity, in.SlotSize, in.RingOffset = lay.capacity, lay.stride, lay.ringOff
	if lay.stride == 0 || lay.capacity > maxInspectCapacity || lay.totalSize > uint64(size) {
		return nil, fmt.Errorf("%w: header describes %d slots of %d bytes beyond the file's %d bytes",
			ErrCorruptHeader, lay.capacity, lay.stride, size)
	}
	return in, nil
}

// SlotOffset returns the file offset of slot index i's payload (SlotSize bytes).
func (in *Inspection) SlotOffset(i uint64) int64 {
	return int64(in.RingOffset + i%in.Capacity*in.SlotSize)
}

// aliveIdentity reports whether the packed identity names a live process.
func aliveIdentity(id uint64) bool { return id != 0 && unpack(id).Alive() }

// diagnoseEntry describes slot entry e (index i) of a block whose commit_index is
// commit; alive judges the lock holder.
func diagnoseEntry(e *slotEntry, i int, commit uint64, alive func(uint64) bool) SlotDiagnosis {
	state, waiting, skipped := loadState(e)
	lock := atomic.LoadUint64(&e.writeLock)
	d := SlotDiagnosis{
		CommitIndex: commit, Index: i, SlotID: atomic.LoadUint64(&e.id),
		State: SlotState(state), ReaderCount: atomic.LoadUint32(&e.readerCount),
		Generation: atomic.LoadUint64(&e.generation), WriterWaiting: waiting != 0, Skipped: skipped != 0,
	}
	if lock != 0 {
		d.Writer, d.WriterPid = unpackString(lock), unpack(lock).Pid
		d.IsStuck = !alive(lock)
		d.LockHeld = heldFor(atomic.LoadUint64(&e.lockSince))
		if d.IsStuck {
			d.StuckDuration = d.LockHeld
		}
	}
	return d
}

// consumerAt describes heartbeat entry i; false when it is free (or, unless
// withReclaiming, being reclaimed).
func consumerAt(h *header, i int, withReclaiming bool) (ConsumerInfo, bool) {
	c := &h.consumers[i]
	id := atomic.LoadUint64(&c.id)
	if id == 0 || id == reclaiming && !withReclaiming {
		return ConsumerInfo{}, false
	}
	held := 0
	for k := range c.held {
		if atomic.LoadUint64(&c.held[k]) != 0 {
			held++
		}
	}
	info := ConsumerInfo{Entry: i, HeartbeatNs: atomic.LoadUint64(&c.lastHB),
		UID: cstring(c.uid[:]), Name: cstring(c.name[:]), Position: atomic.LoadUint64(&h.syncPositions[i]), Held: held}
	if id == reclaiming {
		info.Reclaiming = true
		return info, true
	}
	pi := unpack(id)
	info.Pid, info.StartTime = pi.Pid, pi.StartTime
	return info, true
}

// ControlWord names one word of the control zone, for tools that must point at
// it (fault injectors, forensics) without copying the layout.
type ControlWord int

// Control words. The per-slot words take a slot index, the per-consumer words a
// heartbeat entry index; the header words ignore the index.
const (
	WordWriteIndex      ControlWord = iota // header write_index, 8 bytes
	WordCommitIndex                        // header commit_index, 8 bytes
	WordReadIndex                          // header read_index, 8 bytes
	WordSlotWriteLock                      // slot entry write_lock (packed identity), 8 bytes
	WordSlotReaderCount                    // slot entry reader_count, 4 bytes
	WordConsumerID                         // heartbeat entry id (packed identity, 0 free), 8 bytes
	WordSyncPosition                       // Sync_reader cursor of a heartbeat entry, 8 bytes
)

func (w ControlWord) String() string {
	names := [...]string{"write_index", "commit_index", "read_index", "write_lock", "reader_count", "consumer_id", "position"}
	if w < 0 || int(w) >= len(names) {
		return fmt.Sprintf("ControlWord(%d)", int(w))
	}
	return names[w]
}

// Offset returns the file offset and size in bytes of word w (of slot or
// heartbeat entry i where it has one). ErrRange for an index outside the
// segment's slots or entries, or an unknown word.
func (in *Inspection) Offset(w ControlWord, i int) (int64, int, error) {
	offs := headerOffsets()
	at := func(key string) int64 { return int64(offs[key][0]) }
	slot := func(key string) (int64, int, error) {
		if i < 0 || uint64(i) >= in.Capacity {
			return 0, 0, fmt.Errorf("%w: slot %d of %d", ErrRange, i, in.Capacity)
		}
		return headerSize + int64(i)*slotEntrySize + at(key), int(offs[key][1]), nil
	}
	entry := func(base int64, stride int64, size int) (int64, int, error) {
		if i < 0 || i >= maxConsumers {
			return 0, 0, fmt.Errorf("%w: heartbeat entry %d of %d", ErrRange, i, maxConsumers)
		}
		return base + int64(i)*stride, size, nil
	}
	switch w {
	case WordWriteIndex:
		return at("write_index"), 8, nil
	case WordCommitIndex:
		return at("commit_index"), 8, nil
	case WordReadIndex:
		return at("read_index"), 8, nil
	case WordSlotWriteLock:
		return slot("slot.write_lock")
	case WordSlotReaderCount:
		return slot("slot.reader_count")
	case WordConsumerID:
		return entry(at("consumer_heartbeats")+at("consumer.id"), int64(offs["sizeof.consumer_entry"][1]), 8)
	case WordSyncPosition:
		return entry(at("reserved.sync_positions"), 8, 8)
	}
	return 0, 0, fmt.Errorf("%w: control word %v", ErrRange, w)
}
