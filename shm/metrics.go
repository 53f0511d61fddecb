package shm

import (
	"runtime/debug"
	"sync/atomic"
)

// Metrics is a snapshot of the header's counters and indices.
type Metrics struct {
	WriteIndex, CommitIndex, ReadIndex uint64 // CommitIndex = MaxUint64: nothing committed
	ActiveConsumers                    uint32

	WriterTimeoutCount, WriterLockTimeoutCount, WriterReaderTimeoutCount uint64
	WriteLockContention                                                  uint64
	ReaderNotReadyCount, ReaderRaceDetected, ReaderValidationFailed      uint64
	ReaderPeakCount, ReaderTimeoutCount                                  uint64
	LastErrorTimestampNs                                                 uint64
	SlotAcquireErrors, ChecksumFailures, RecoveryActions, SchemaMismatch uint64
	TotalSlotsWritten, TotalSlotsRead, TotalBytesRead                    uint64
	CreationTimestampNs                                                  uint64
	ProducerHeartbeatNs                                                  uint64
}

// Metrics reads the counters (zero Metrics if the mapping faults).
func (b *Block) Metrics() (m Metrics) {
	defer guard(new(error))
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return m
	}
	h := b.h
	ld := atomic.LoadUint64
	return Metrics{
		WriteIndex: ld(&h.writeIndex), CommitIndex: ld(&h.commitIndex), ReadIndex: ld(&h.readIndex),
		ActiveConsumers:          atomic.LoadUint32(&h.activeConsumer),
		WriterTimeoutCount:       ld(&h.writerTimeoutCount),
		WriterLockTimeoutCount:   ld(&h.writerLockTimeoutCount),
		WriterReaderTimeoutCount: ld(&h.writerReaderTimeoutCount),
		WriteLockContention:      ld(&h.writeLockContention),
		ReaderNotReadyCount:      ld(&h.readerNotReadyCount),
		ReaderRaceDetected:       ld(&h.readerRaceDetected),
		ReaderValidationFailed:   ld(&h.readerValidationFailed),
		ReaderPeakCount:          ld(&h.readerPeakCount),
		ReaderTimeoutCount:       ld(&h.readerTimeoutCount),
		LastErrorTimestampNs:     ld(&h.lastErrorTimestampNs),
		SlotAcquireErrors:        ld(&h.slotAcquireErrors),
		ChecksumFailures:         ld(&h.checksumFailures),
		RecoveryActions:          ld(&h.recoveryActionsCount),
		SchemaMismatch:           ld(&h.schemaMismatchCount),
		TotalSlotsWritten:        ld(&h.totalSlotsWritten),
		TotalSlotsRead:           ld(&h.totalSlotsRead),
		TotalBytesRead:           ld(&h.totalBytesRead),
		CreationTimestampNs:      ld(&h.creationTimestampNs),
		ProducerHeartbeatNs:      ld(&h.producerHB),
	}
}

// ResetMetrics zeroes the counters (not the indices).
func (b *Block) ResetMetrics() (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return ErrClosed
	}
	h := b.h
	for _, p := range []*uint64{&h.writerTimeoutCount, &h.writerLockTimeoutCount, &h.writerReaderTimeoutCount,
		&h.writerBlockedTotalNs, &h.writeLockContention, &h.writeGenerationWraps, &h.readerNotReadyCount,
		&h.readerRaceDetected, &h.readerValidationFailed, &h.readerPeakCount, &h.readerTimeoutCount,
		&h.lastErrorTimestampNs, &h.slotAcquireErrors, &h.slotCommitErrors, &h.checksumFailures,
		&h.zmqSendFailures, &h.zmqRecvFailures, &h.zmqTimeoutCount, &h.recoveryActionsCount,
		&h.schemaMismatchCount, &h.totalSlotsWritten, &h.totalSlotsRead, &h.totalBytesWritten, &h.totalBytesRead} {
		atomic.StoreUint64(p, 0)
	}
	return nil
}

// ChannelIdentity is the hub identity stored in the header.
type ChannelIdentity struct {
	HubUID, HubName, ProducerUID, ProducerName string
}

// Identity returns the identity strings stored at creation.
func (b *Block) Identity() (id ChannelIdentity) {
	defer guard(new(error))
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return id
	}
	h := b.h
	return ChannelIdentity{cstring(h.hubUID[:]), cstring(h.hubName[:]), cstring(h.producerUID[:]), cstring(h.producerName[:])}
}

// ConsumerInfo describes one registered consumer heartbeat entry.
type ConsumerInfo struct {
	Entry       int
	Pid         int
	StartTime   uint64
	HeartbeatNs uint64 // CLOCK_MONOTONIC ns of the last heartbeat
	UID, Name   string
	Position    uint64 // Sync_reader cursor
	Held        int    // slots currently held
	Reclaiming  bool   // the entry is being given back (Inspection only; no Pid)
}

// Consumers lists the registered consumers.
func (b *Block) Consumers() (out []ConsumerInfo) {
	defer guard(new(error))
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return nil
	}
	for i := range b.h.consumers {
		if c, ok := consumerAt(b.h, i, false); ok {
			out = append(out, c)
		}
	}
	return out
}

// ProducerAlive reports whether the producer heartbeat names a live process and is
// fresh (≤ 5 s).
func (b *Block) ProducerAlive() (ok bool) {
	defer guard(new(error))
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return false
	}
	id := atomic.LoadUint64(&b.h.producerID)
	fresh := monoNow()-int64(atomic.LoadUint64(&b.h.producerHB)) <= producerStale
	return fresh && b.alive(id)
}
