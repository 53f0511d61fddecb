package shm

// This file and sys_linux.go are the only ones that import unsafe. Every conversion
// here turns a byte range of a mapping (or of a heap buffer standing in for one) into
// a pointer to a type without Go pointers. That is legal because
//   - the memory is never moved by the Go runtime (mmap'd memory is outside the heap;
//     heap buffers are []uint64 kept alive by the Block that holds them),
//   - every offset is naturally aligned for the type (layout_test.go checks the
//     offsets; the segment base is page-aligned and heap buffers are 8-aligned),
//   - the types contain no pointers, so the garbage collector never scans them, and
//   - the range lies within the slice (callers check lengths first).

import (
	"reflect"
	"unsafe"
)

// headerAt returns the header at the start of mem (len(mem) >= headerSize).
func headerAt(mem []byte) *header {
	_ = mem[headerSize-1]
	return (*header)(unsafe.Pointer(&mem[0]))
}

// slotEntriesAt returns the coordination array of n entries at mem[headerSize:].
func slotEntriesAt(mem []byte, n int) []slotEntry {
	_ = mem[headerSize+n*slotEntrySize-1]
	return unsafe.Slice((*slotEntry)(unsafe.Pointer(&mem[headerSize])), n)
}

// low32 returns the low (little-endian first) 32-bit half of an aligned u64: the
// futex word readers sleep on for commit_index.
func low32(p *uint64) *uint32 { return (*uint32)(unsafe.Pointer(p)) }

// heapBuffer returns an 8-aligned zeroed buffer of n bytes from the Go heap, so the
// ring logic can run where the race detector sees it.
func heapBuffer(n int) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// viewAs returns b viewed as *T. T must be plain data (checkPlain) and len(b) must
// be at least Sizeof(T); the caller checks both. b must be aligned for T: slot and
// flex-zone spans start on a 4096 boundary of the segment.
func viewAs[T any](b []byte) *T {
	var zero T
	_ = b[int(unsafe.Sizeof(zero))-1:]
	return (*T)(unsafe.Pointer(unsafe.SliceData(b)))
}

// sizeOf returns the size of T in bytes.
func sizeOf[T any]() int {
	var zero T
	return int(unsafe.Sizeof(zero))
}

// typeOf returns the reflect type of T (also for T = an interface, never used here).
func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// headerOffsets returns name → {offset, size} of every header member listed in the
// layout hash, from the Go struct. layout_test.go compares them with the spec table.
func headerOffsets() map[string][2]uintptr {
	var h header
	o := func(off, size uintptr) [2]uintptr { return [2]uintptr{off, size} }
	return map[string][2]uintptr{
		"magic_number":                o(unsafe.Offsetof(h.magic), unsafe.Sizeof(h.magic)),
		"version_major":               o(unsafe.Offsetof(h.verMajor), unsafe.Sizeof(h.verMajor)),
		"version_minor":               o(unsafe.Offsetof(h.verMinor), unsafe.Sizeof(h.verMinor)),
		"total_block_size":            o(unsafe.Offsetof(h.totalSize), unsafe.Sizeof(h.totalSize)),
		"shared_secret":               o(unsafe.Offsetof(h.secret), unsafe.Sizeof(h.secret)),
		"flexzone_schema_hash":        o(unsafe.Offsetof(h.flexSchemaHash), unsafe.Sizeof(h.flexSchemaHash)),
		"datablock_schema_hash":       o(unsafe.Offsetof(h.slotSchemaHash), unsafe.Sizeof(h.slotSchemaHash)),
		"schema_version":              o(unsafe.Offsetof(h.schemaVersion), unsafe.Sizeof(h.schemaVersion)),
		"policy":                      o(unsafe.Offsetof(h.policy), unsafe.Sizeof(h.policy)),
		"consumer_sync_policy":        o(unsafe.Offsetof(h.syncPolicy), unsafe.Sizeof(h.syncPolicy)),
		"physical_page_size":          o(unsafe.Offsetof(h.pageSize), unsafe.Sizeof(h.pageSize)),
		"logical_unit_size":           o(unsafe.Offsetof(h.unitSize), unsafe.Sizeof(h.unitSize)),
		"ring_buffer_capacity":        o(unsafe.Offsetof(h.capacity), unsafe.Sizeof(h.capacity)),
		"flexible_zone_size":          o(unsafe.Offsetof(h.flexSize), unsafe.Sizeof(h.flexSize)),
		"checksum_type":               o(unsafe.Offsetof(h.checksumType), unsafe.Sizeof(h.checksumType)),
		"checksum_policy":             o(unsafe.Offsetof(h.checksumPolicy), unsafe.Sizeof(h.checksumPolicy)),
		"write_index":                 o(unsafe.Offsetof(h.writeIndex), unsafe.Sizeof(h.writeIndex)),
		"commit_index":                o(unsafe.Offsetof(h.commitIndex), unsafe.Sizeof(h.commitIndex)),
		"read_index":                  o(unsafe.Offsetof(h.readIndex), unsafe.Sizeof(h.readIndex)),
		"active_consumer_count":       o(unsafe.Offsetof(h.activeConsumer), unsafe.Sizeof(h.activeConsumer)),
		"writer_timeout_count":        o(unsafe.Offsetof(h.writerTimeoutCount), 8),
		"writer_lock_timeout_count":   o(unsafe.Offsetof(h.writerLockTimeoutCount), 8),
		"writer_reader_timeout_count": o(unsafe.Offsetof(h.writerReaderTimeoutCount), 8),
		"writer_blocked_total_ns":     o(unsafe.Offsetof(h.writerBlockedTotalNs), 8),
		"write_lock_contention":       o(unsafe.Offsetof(h.writeLockContention), 8),
		"write_generation_wraps":      o(unsafe.Offsetof(h.writeGenerationWraps), 8),
		"reader_not_ready_count":      o(unsafe.Offsetof(h.readerNotReadyCount), 8),
		"reader_race_detected":        o(unsafe.Offsetof(h.readerRaceDetected), 8),
		"reader_validation_failed":    o(unsafe.Offsetof(h.readerValidationFailed), 8),
		"reader_peak_count":           o(unsafe.Offsetof(h.readerPeakCount), 8),
		"reader_timeout_count":        o(unsafe.Offsetof(h.readerTimeoutCount), 8),
		"last_error_timestamp_ns":     o(unsafe.Offsetof(h.lastErrorTimestampNs), 8),
		"last_error_code":             o(unsafe.Offsetof(h.lastErrorCode), 4),
		"error_sequence":              o(unsafe.Offsetof(h.errorSequence), 4),
		"slot_acquire_errors":         o(unsafe.Offsetof(h.slotAcquireErrors), 8),
		"slot_commit_errors":          o(unsafe.Offsetof(h.slotCommitErrors), 8),
		"checksum_failures":           o(unsafe.Offsetof(h.checksumFailures), 8),
		"zmq_send_failures":           o(unsafe.Offsetof(h.zmqSendFailures), 8),
		"zmq_recv_failures":           o(unsafe.Offsetof(h.zmqRecvFailures), 8),
		"zmq_timeout_count":           o(unsafe.Offsetof(h.zmqTimeoutCount), 8),
		"recovery_actions_count":      o(unsafe.Offsetof(h.recoveryActionsCount), 8),
		"schema_mismatch_count":       o(unsafe.Offsetof(h.schemaMismatchCount), 8),
		"reserved_errors":             o(unsafe.Offsetof(h.reservedErrors), unsafe.Sizeof(h.reservedErrors)),
		"heartbeat_sent_count":        o(unsafe.Offsetof(h.heartbeatSentCount), 8),
		"heartbeat_failed_count":      o(unsafe.Offsetof(h.heartbeatFailedCount), 8),
		"last_heartbeat_ns":           o(unsafe.Offsetof(h.lastHeartbeatNs), 8),
		"reserved_hb":                 o(unsafe.Offsetof(h.reservedHB), 8),
		"total_slots_written":         o(unsafe.Offsetof(h.totalSlotsWritten), 8),
		"total_slots_read":            o(unsafe.Offsetof(h.totalSlotsRead), 8),
		"total_bytes_written":         o(unsafe.Offsetof(h.totalBytesWritten), 8),
		"total_bytes_read":            o(unsafe.Offsetof(h.totalBytesRead), 8),
		"uptime_seconds":              o(unsafe.Offsetof(h.uptimeSeconds), 8),
		"creation_timestamp_ns":       o(unsafe.Offsetof(h.creationTimestampNs), 8),
		"reserved_perf":               o(unsafe.Offsetof(h.reservedPerf), unsafe.Sizeof(h.reservedPerf)),
		"consumer_heartbeats":         o(unsafe.Offsetof(h.consumers), unsafe.Sizeof(h.consumers)),
		"hub_uid":                     o(unsafe.Offsetof(h.hubUID), unsafe.Sizeof(h.hubUID)),
		"hub_name":                    o(unsafe.Offsetof(h.hubName), unsafe.Sizeof(h.hubName)),
		"producer_uid":                o(unsafe.Offsetof(h.producerUID), unsafe.Sizeof(h.producerUID)),
		"producer_name":               o(unsafe.Offsetof(h.producerName), unsafe.Sizeof(h.producerName)),
		"spinlock_states":             o(unsafe.Offsetof(h.spinlocks), unsafe.Sizeof(h.spinlocks)),
		"flexible_zone_checksums":     o(unsafe.Offsetof(h.flexChecksums), unsafe.Sizeof(h.flexChecksums)),
		"reserved_header":             o(unsafe.Offsetof(h.layoutHash), unsafe.Sizeof(h)-unsafe.Offsetof(h.layoutHash)),
		"reserved.layout_hash":        o(unsafe.Offsetof(h.layoutHash), 32),
		"reserved.layout_checksum":    o(unsafe.Offsetof(h.layoutChecksum), 32),
		"reserved.sync_positions":     o(unsafe.Offsetof(h.syncPositions), unsafe.Sizeof(h.syncPositions)),
		"reserved.producer_pid":       o(unsafe.Offsetof(h.producerID), 8),
		"reserved.producer_hb_ns":     o(unsafe.Offsetof(h.producerHB), 8),
		"go.commit_waiters":           o(unsafe.Offsetof(h.commitWaiters), 4),
		"go.release_waiters":          o(unsafe.Offsetof(h.releaseWaiters), 4),
		"go.release_seq":              o(unsafe.Offsetof(h.releaseSeq), 4),
		"go.creator_id":               o(unsafe.Offsetof(h.creatorID), 8),
		"sizeof.header":               o(0, unsafe.Sizeof(h)),
		"sizeof.consumer_entry":       o(0, unsafe.Sizeof(h.consumers[0])),
		"sizeof.spinlock":             o(0, unsafe.Sizeof(h.spinlocks[0])),
		"sizeof.flex_checksum":        o(0, unsafe.Sizeof(h.flexChecksums[0])),
		"sizeof.slot_entry":           o(0, unsafe.Sizeof(slotEntry{})),
		"consumer.id":                 o(unsafe.Offsetof(h.consumers[0].id), 8),
		"consumer.last_hb":            o(unsafe.Offsetof(h.consumers[0].lastHB), 8),
		"consumer.uid":                o(unsafe.Offsetof(h.consumers[0].uid), 40),
		"consumer.name":               o(unsafe.Offsetof(h.consumers[0].name), 32),
		"consumer.held":               o(unsafe.Offsetof(h.consumers[0].held), 32),
		"slot.write_lock":             o(unsafe.Offsetof(slotEntry{}.writeLock), 8),
		"slot.reader_count":           o(unsafe.Offsetof(slotEntry{}.readerCount), 4),
		"slot.state":                  o(unsafe.Offsetof(slotEntry{}.state), 4),
		"slot.generation":             o(unsafe.Offsetof(slotEntry{}.generation), 8),
		"slot.id":                     o(unsafe.Offsetof(slotEntry{}.id), 8),
		"slot.lock_since":             o(unsafe.Offsetof(slotEntry{}.lockSince), 8),
	}
}
