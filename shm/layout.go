package shm

import (
	"encoding/binary"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// Sizes and constants of the segment layout (spec/datablock.md §3–§5, §15).
const (
	headerSize     = 4096
	slotEntrySize  = 64
	checksumSize   = 33
	maxConsumers   = 8
	maxSpinlocks   = 8
	maxHeldPerRead = 4 // slots one Reader may hold at once (tracked in its heartbeat entry)

	// maxPlausibleReaders bounds a slot's reader_count: 8 registered consumers
	// holding 4 slots each, plus as many untracked readers (beyond the pool,
	// diagnostics). A larger count is corruption.
	maxPlausibleReaders = 2 * maxConsumers * maxHeldPerRead

	magicValue   = 0x504C4842 // "PLHB"
	versionMajor = 1
	versionMinor = 0

	// invalidID is the commit_index of a block with nothing committed.
	invalidID = ^uint64(0)

	// producerStale is the age after which a producer heartbeat is stale (§9.1).
	producerStale = 5_000_000_000
)

// Slot states (coordination entry byte 12).
const (
	stateFree      = 0
	stateWriting   = 1
	stateCommitted = 2
	stateDraining  = 3
)

// header mirrors spec/datablock.md §4 field by field; layout_test.go checks every
// offset against the spec table and Sizeof(header{}) == 4096. Fields named *ID hold a
// packed proc.Identity (pid in the low 22 bits, start time above), where the spec
// says "pid".
type header struct {
	magic          uint32   // 0, atomic; stored last on create
	verMajor       uint16   // 4
	verMinor       uint16   // 6
	totalSize      uint64   // 8
	secret         [64]byte // 16; first 8 bytes = config secret
	flexSchemaHash [32]byte // 80
	slotSchemaHash [32]byte // 112
	schemaVersion  uint32   // 144
	policy         uint32   // 148
	syncPolicy     uint32   // 152
	pageSize       uint32   // 156
	unitSize       uint32   // 160
	capacity       uint32   // 164
	flexSize       uint32   // 168
	checksumType   uint8    // 172
	_              [3]byte  // 173
	checksumPolicy uint32   // 176
	_              uint32   // 180
	writeIndex     uint64   // 184, atomic: next slot id for a writer
	commitIndex    uint64   // 192, atomic: last committed id (invalidID = none)
	readIndex      uint64   // 200, atomic: ordered-policy tail
	activeConsumer uint32   // 208, atomic
	_              uint32   // 212

	writerTimeoutCount       uint64 // 216
	writerLockTimeoutCount   uint64 // 224
	writerReaderTimeoutCount uint64 // 232
	writerBlockedTotalNs     uint64 // 240
	writeLockContention      uint64 // 248
	writeGenerationWraps     uint64 // 256
	readerNotReadyCount      uint64 // 264
	readerRaceDetected       uint64 // 272
	readerValidationFailed   uint64 // 280
	readerPeakCount          uint64 // 288
	readerTimeoutCount       uint64 // 296
	lastErrorTimestampNs     uint64 // 304
	lastErrorCode            uint32 // 312
	errorSequence            uint32 // 316
	slotAcquireErrors        uint64 // 320
	slotCommitErrors         uint64 // 328
	checksumFailures         uint64 // 336
	zmqSendFailures          uint64 // 344
	zmqRecvFailures          uint64 // 352
	zmqTimeoutCount          uint64 // 360
	recoveryActionsCount     uint64 // 368
	schemaMismatchCount      uint64 // 376
	reservedErrors           [2]uint64
	heartbeatSentCount       uint64 // 400
	heartbeatFailedCount     uint64 // 408
	lastHeartbeatNs          uint64 // 416
	reservedHB               uint64 // 424
	totalSlotsWritten        uint64 // 432
	totalSlotsRead           uint64 // 440
	totalBytesWritten        uint64 // 448
	totalBytesRead           uint64 // 456
	uptimeSeconds            uint64 // 464
	creationTimestampNs      uint64 // 472
	reservedPerf             [2]uint64

	consumers [maxConsumers]consumerEntry // 496

	hubUID       [40]byte // 1520
	hubName      [64]byte // 1560
	producerUID  [40]byte // 1624
	producerName [64]byte // 1664

	spinlocks     [maxSpinlocks]spinlockState // 1728
	flexChecksums [8]flexChecksumEntry        // 1984; only [0] is used

	// reserved_header (2496..4095)
	layoutHash     [32]byte             // 2496
	layoutChecksum [32]byte             // 2528
	syncPositions  [maxConsumers]uint64 // 2560: Sync_reader next id per consumer entry
	producerID     uint64               // 2624: producer heartbeat identity
	producerHB     uint64               // 2632: producer heartbeat CLOCK_MONOTONIC ns

	// Go extensions inside the spec's zero area (2640..4095), each group on its own
	// cache line so the writer's and readers' hot stores do not share one; see doc.go.
	_              [48]byte
	commitWaiters  uint32 // 2688: 1 = a reader may sleep on the commit futex (low word of commitIndex); see waiter
	releaseWaiters uint32 // 2692: 1 = a writer may sleep on releaseSeq
	_              [56]byte
	releaseSeq     uint32 // 2752: futex word bumped on reader release / read_index moves
	_              [60]byte
	creatorID      uint64 // 2816: identity of the creating process (Sweep)
	_              [1272]byte
}

// consumerEntry is one consumer heartbeat entry (128 bytes). held is a Go extension
// in the spec's pad: slot index+1 of each slot this consumer holds (0 = none), so the
// holds of a dead consumer can be given back.
type consumerEntry struct {
	id     uint64                 // +0 packed identity, 0 = free
	lastHB uint64                 // +8 CLOCK_MONOTONIC ns
	uid    [40]byte               // +16
	name   [32]byte               // +56
	held   [maxHeldPerRead]uint64 // +88
	_      [8]byte                // +120
}

// spinlockState is one shared spinlock (§14), 32 bytes.
type spinlockState struct {
	owner      uint64 // +0 packed identity
	ownerTid   uint64 // +8
	generation uint64 // +16
	recursion  uint32 // +24
	_          uint32
}

// flexChecksumEntry is one flex-zone checksum entry, 64 bytes.
type flexChecksumEntry struct {
	hash  [32]byte
	valid uint8
	_     [31]byte
}

// slotEntry is one slot coordination entry (64-byte stride). state is the 32-bit word
// at offset 12: byte 0 slot_state, byte 1 writer_waiting, byte 2 skipped (Go: the
// skip marker of §7.6), byte 3 pad. id (offset 24, Go extension in the pad) is the
// slot id last committed or skipped in this entry. lockSince (offset 32, Go
// extension in the pad) is the CLOCK_MONOTONIC ns at which the current holder took
// write_lock (0 = unlocked or not yet stored), so a stuck lock's age is known
// (B-22, stuck_duration_ms). The slot entry is outside the header layout hash: an
// original attacher sees it as pad.
type slotEntry struct {
	writeLock   uint64 // +0 packed identity of the writer, 0 = free
	readerCount uint32 // +8
	state       uint32 // +12
	generation  uint64 // +16
	id          uint64 // +24
	lockSince   uint64 // +32
	_           [24]byte
}

// layout is the geometry computed from the config or header fields.
type layout struct {
	capacity  uint64 // N
	stride    uint64 // S
	flexSize  uint64 // F (rounded)
	csumOff   uint64 // 4096 + 64N
	flexOff   uint64 // D
	ringOff   uint64 // D + F
	totalSize uint64
}

func roundUp(v, to uint64) uint64 { return (v + to - 1) / to * to }

// computeLayout returns the layout for N slots of stride S and a flex zone of flex
// bytes (rounded up to 4096). Callers have bounded the inputs so nothing overflows.
func computeLayout(n, stride, flex uint64) layout {
	l := layout{capacity: n, stride: stride, flexSize: roundUp(flex, 4096)}
	l.csumOff = headerSize + slotEntrySize*n
	l.flexOff = roundUp(headerSize+(slotEntrySize+checksumSize)*n, 4096)
	l.ringOff = l.flexOff + l.flexSize
	l.totalSize = l.ringOff + n*stride
	return l
}

// headerMembers lists the header members of the layout hash (§12.4), in order, with
// their BLDS type. Offsets and sizes come from the Go struct (headerOffsets).
var headerMembers = []struct{ name, typ string }{
	{"magic_number", "u32"}, {"version_major", "u16"}, {"version_minor", "u16"},
	{"total_block_size", "u64"}, {"shared_secret", "u8[64]"},
	{"flexzone_schema_hash", "u8[32]"}, {"datablock_schema_hash", "u8[32]"},
	{"schema_version", "u32"}, {"policy", "u32"}, {"consumer_sync_policy", "u32"},
	{"physical_page_size", "u32"}, {"logical_unit_size", "u32"},
	{"ring_buffer_capacity", "u32"}, {"flexible_zone_size", "u32"},
	{"checksum_type", "u8"}, {"checksum_policy", "u32"},
	{"write_index", "u64"}, {"commit_index", "u64"}, {"read_index", "u64"},
	{"active_consumer_count", "u32"},
	{"writer_timeout_count", "u64"}, {"writer_lock_timeout_count", "u64"},
	{"writer_reader_timeout_count", "u64"}, {"writer_blocked_total_ns", "u64"},
	{"write_lock_contention", "u64"}, {"write_generation_wraps", "u64"},
	{"reader_not_ready_count", "u64"}, {"reader_race_detected", "u64"},
	{"reader_validation_failed", "u64"}, {"reader_peak_count", "u64"},
	{"reader_timeout_count", "u64"}, {"last_error_timestamp_ns", "u64"},
	{"last_error_code", "u32"}, {"error_sequence", "u32"},
	{"slot_acquire_errors", "u64"}, {"slot_commit_errors", "u64"},
	{"checksum_failures", "u64"}, {"zmq_send_failures", "u64"},
	{"zmq_recv_failures", "u64"}, {"zmq_timeout_count", "u64"},
	{"recovery_actions_count", "u64"}, {"schema_mismatch_count", "u64"},
	{"reserved_errors", "u64[2]"},
	{"heartbeat_sent_count", "u64"}, {"heartbeat_failed_count", "u64"},
	{"last_heartbeat_ns", "u64"}, {"reserved_hb", "u64"},
	{"total_slots_written", "u64"}, {"total_slots_read", "u64"},
	{"total_bytes_written", "u64"}, {"total_bytes_read", "u64"},
	{"uptime_seconds", "u64"}, {"creation_timestamp_ns", "u64"},
	{"reserved_perf", "u64[2]"},
	{"consumer_heartbeats", "ConsumerHeartbeat[8]"},
	{"spinlock_states", "SharedSpinLockState[8]"},
	{"flexible_zone_checksums", "FlexibleZoneChecksumEntry[8]"},
	{"reserved_header", "u8[1600]"},
}

// headerLayoutBLDS returns the BLDS string of the header (§12.4), built from the Go
// struct's real offsets and sizes.
func headerLayoutBLDS() string {
	offs := headerOffsets()
	var sb strings.Builder
	for i, m := range headerMembers {
		if i > 0 {
			sb.WriteByte(';')
		}
		f := offs[m.name]
		sb.WriteString(m.name + ":" + m.typ + "@" + strconv.FormatUint(uint64(f[0]), 10) + ":" + strconv.FormatUint(uint64(f[1]), 10))
	}
	return sb.String()
}

// headerLayoutHash is this build's header layout hash (§12.4).
var headerLayoutHash = blake2b.Sum256([]byte(headerLayoutBLDS()))

// layoutChecksum computes §12.5 from wire values.
func layoutChecksum(capacity, pageSize, unitSize uint32, flexSize uint64, csumType, policy, syncPolicy uint8) [32]byte {
	var b [24]byte
	binary.LittleEndian.PutUint32(b[0:], capacity)
	binary.LittleEndian.PutUint32(b[4:], pageSize)
	binary.LittleEndian.PutUint32(b[8:], unitSize)
	binary.LittleEndian.PutUint64(b[12:], flexSize)
	b[20], b[21], b[22] = csumType, policy, syncPolicy
	return blake2b.Sum256(b[:])
}

// headerLayoutChecksum recomputes the layout checksum from the header's fields.
func (h *header) layoutChecksumNow() [32]byte {
	return layoutChecksum(h.capacity, h.pageSize, h.unitSize, uint64(h.flexSize), h.checksumType, uint8(h.policy), uint8(h.syncPolicy))
}

// cstring returns the NUL-terminated string in b.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// putCString stores s truncated to len(b)-1 bytes plus NUL padding.
func putCString(b []byte, s string) {
	n := copy(b[:len(b)-1], s)
	clear(b[n:])
}
