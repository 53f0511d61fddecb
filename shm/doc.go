// Package shm is the DataBlock: a named POSIX shared-memory segment holding a 4 KiB
// header, a control zone (one 64-byte coordination entry and one 33-byte BLAKE2b
// checksum entry per slot), an optional flex zone and a ring of fixed-size slots,
// laid out byte for byte as spec/datablock.md §3–§5 (layout_test.go checks every
// offset). One process creates a Block (Create), others attach (Attach, with the
// shared secret); producers write through a Writer, consumers read through a Reader.
//
// Usage (byte-slice API, zero copy):
//
//	b, _ := shm.Create("lab.cam", shm.Config{PageSize: shm.Page4K, Capacity: 32,
//		Policy: shm.PolicyRingBuffer, Sync: shm.LatestOnly, Secret: s})
//	w, _ := b.NewWriter(shm.WaitOptions{})
//	slot, _ := w.AcquireWrite(ctx, 100*time.Millisecond)
//	n := copy(slot.Bytes(), frame)
//	slot.Commit(n); slot.Release()
//
//	c, _ := shm.Attach("lab.cam", s, nil)
//	r, _ := c.NewReader(shm.ReaderOptions{UID: "c1"})
//	rs, _ := r.AcquireRead(ctx, time.Second)
//	use(rs.Bytes()); err := rs.Release() // ErrOverwritten / ErrChecksum
//
// The typed API (TypedWriter, TypedReader) maps fixed-size plain structs onto the
// flex zone and the slots, with schema hashes checked at attach.
//
// No goroutines are started by this package. All coordination is lock-free atomics
// in the segment; each Writer and Reader has one process-local mutex serialising its
// own calls.
package shm
