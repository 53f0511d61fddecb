// Package shm is the DataBlock: a named POSIX shared-memory segment (/dev/shm/NAME)
// holding a 4 KiB header, a control zone (one 64-byte coordination entry and one
// 33-byte BLAKE2b checksum entry per slot), an optional flex zone and a ring of
// fixed-size slots, laid out byte for byte as spec/datablock.md §3–§5
// (layout_test.go checks every offset, the header layout hash and the vectors).
//
//	b, _ := shm.Create("lab.cam", shm.Config{PageSize: shm.Page4K, Capacity: 32,
//		Policy: shm.PolicyRingBuffer, Sync: shm.LatestOnly, Secret: s})
//	w, _ := b.NewWriter(shm.WaitOptions{})
//	slot, _ := w.AcquireWrite(ctx, 100*time.Millisecond)
//	slot.Commit(copy(slot.Bytes(), frame)); slot.Release()
//
//	c, _ := shm.Attach("lab.cam", s, nil)                  // another process
//	r, _ := c.NewReader(shm.ReaderOptions{UID: "c1"})
//	rs, _ := r.AcquireRead(ctx, time.Second)
//	use(rs.Bytes()); err := rs.Release()                   // ErrOverwritten, ErrChecksum
//
// The typed API (CreateTyped, AttachTyped, TypedWriter, TypedReader) maps fixed-size
// plain structs onto the flex zone and the slots; schema hashes (BLDS, §12) are
// stored at create and checked at attach.
//
// # Concurrency
//
// The package starts no goroutine. Coordination between processes is lock-free
// atomics in the segment. A Writer serialises its own calls with a mutex (held
// across AcquireWrite's waits; it holds one slot at most); a Reader takes its mutex
// per attempt only, never while sleeping, so another goroutine can release a slot
// meanwhile. Block.mu guards only the set of open Writers/Readers closed by Close.
//
// Waiting is a bounded spin (WaitOptions.Spin, default 50 µs), then a sleep of at
// most 5 ms on a shared (non-private) futex in the segment: readers sleep on the low
// word of commit_index, writers on releaseSeq, which every reader release bumps.
// A waiter sets a sleeper flag (commitWaiters, releaseWaiters) before it sleeps, so
// wakers skip the syscall when nobody sleeps; the waiter re-reads the word after
// setting it, so no wake-up is lost, and the waker clears it when it wakes, so one
// sleep costs one wake-up call however many commits or releases come before the
// sleeper runs again. While spinning, a waiter reads the clock once per 32 pauses
// and between looks at the ring watches the futex word alone (a bounded number of
// loads); a writer loads releaseSeq only once the ring is full, then looks again
// before sleeping on it. Hot paths (acquire, commit, release, read) allocate nothing.
//
// Per message the hot paths touch the shared lines as little as the layout allows
// (commit_index and read_index share one line; every read counts itself on the
// writer's slot entry): a writer loads read_index only when the last value it saw
// leaves no room (read_index only advances); commit_index and read_index move by
// one compare-and-swap from the expected value (a load and a CAS otherwise); a
// slot no reader holds goes from COMMITTED straight to WRITING (both turn readers
// away, see drain; DRAINING is stored only when there are readers to wait for);
// a reader's first attempt does not load the futex word; a reader that waited
// stores the waiter's last clock reading as its heartbeat instead of reading the
// clock again (a clock read costs about as much as the rest of an acquisition).
//
// # Go extensions to the layout (all in bytes the spec leaves as pad or zero)
//
//   - Identities: every field the spec calls "pid" (write_lock, consumer entry pid,
//     producer heartbeat pid, spinlock owner) holds a packed internal/proc Identity
//     (pid + start time), so a recycled pid never passes for the dead process.
//   - Slot entry +12 is a 32-bit state word: byte 0 slot_state, 1 writer_waiting,
//     2 skipped. Slot entry +24 holds the id last committed in the slot, so a
//     reader never takes the previous lap's data for the id it waits for.
//   - Slot entry +32 (pad): lock_since, the CLOCK_MONOTONIC ns at which the
//     current holder took write_lock (stored right after the CAS, cleared before
//     the unlock), so a dead writer's stuck_duration_ms is real (B-22;
//     SlotDiagnosis.LockHeld/StuckDuration, Check, "plh-admin check", the reclaim
//     warnings). Slot entries are outside the header layout hash, so the hash and
//     compatibility with other implementations are kept; a lock taken by one that
//     does not store it reads as "unknown" (0).
//   - Consumer entry +88..+119 (pad): held[4], slot index+1 of every slot the
//     consumer holds. Recorded before reader_count++ and cleared after the
//     decrement, so a dead consumer's holds can be given back. (If a process dies
//     in the few instructions between the two, the count is given back once too
//     often; the other reader of that slot then sees ErrOverwritten at release —
//     detected, never silent.)
//   - reserved_header 2688/2692 futex sleeper flags, 2752 releaseSeq (own cache
//     lines), 2816 the creator's identity (Sweep).
//
// # Invariants and Go choices (spec §6–§10)
//
//   - Create validates everything first, creates an unnamed file (O_TMPFILE)
//     0600, preallocates (fallocate), checks its size, stores the magic last, and
//     only then links it under the name (claim.go). Spec §1 says "unlink any
//     existing segment first"; Go choice: an existing segment is replaced only
//     when it is stale (creator and producer dead, or not a valid segment), else
//     ErrSegmentInUse names the live owner; of racing creators exactly one wins;
//     Close unlinks the name only while it names the creator's own file.
//   - LockSoleReader: an OFD lock on the segment file for a reader that must be
//     alone (the hub takes it for Single_reader rings and Pipeline channels); the
//     kernel drops it when the Block closes or the process dies.
//   - Attach checks magic (waiting up to 5 s only while it is 0), version, size
//     against fstat, sane geometry, layout hash, layout checksum, secret (constant
//     time), then expectations; the header is checked from a pread copy first.
//   - Ordered policies (Single_reader, Sync_reader) take an id only while
//     write_index − read_index < N (CAS), so a writer never reaches a slot a reader
//     still needs. An id that will never be committed (abort, drain timeout, dead
//     writer found at read_index) becomes a skip marker: COMMITTED with skipped=1,
//     which readers step over. A lock timeout against a live writer still leaves a
//     hole (rare; only with several writers).
//   - A writer blocked on ring-full or on draining, and an ordered reader waiting,
//     reap every HeartbeatTimeout/4: heartbeat entries of dead consumers are freed
//     (their held reader counts returned, Sync_reader cursors dropped, read_index
//     recomputed), and a dead writer's unfinished slot at read_index is skipped.
//     Liveness is judged by identity (/proc start time), not by heartbeat age, so a
//     slow but live consumer is never robbed. A dead writer's lock is reclaimed by
//     the next writer reaching the slot.
//   - commit_index never moves back; read_index and Sync_reader cursors only
//     advance; Sync_reader read_index is recomputed on release, detach and reclaim.
//   - Checksums: None / Manual (explicit UpdateChecksum/VerifyChecksum only) /
//     Enforced (writer hashes slot and flex zone at commit, reader verifies at
//     release). Mutate the flex zone only inside write transactions (or with None
//     or Manual): a concurrent change makes readers' verification fail.
//
// # Consumer groups (B-7, group.go, group_segment.go)
//
// JoinGroup makes a Reader a member of a named group on an ordered ring: the
// members split the ring's committed ids, each read by exactly one member, while
// other groups and plain Readers each read everything. The group's state is a
// companion segment per (DataBlock, group), /dev/shm/NAME.g<FNV-1a hex of the
// group>, outside the DataBlock (whose layout is unchanged): a claim word and a
// finished word per ring slot (id+1, so one CAS decides each claim and laps are
// told apart), the group's done cursor, and 16 member entries with the identity and
// the id each holds. A member's slot release finishes the id for the group
// (Reader.group) instead of moving the member's cursor; every member keeps its
// Sync_reader cursor (Single_reader: read_index) at done, so the writer never
// reaches an id claimed and not finished, even when a member dies. A member that
// finds nothing to claim looks every 2 ms for claims of dead or departed members and
// takes them over by CAS. The companion is created unnamed and linked (O_EXCL by
// link), joined and left under an OFD lock, removed by the last member, replaced
// when its members are all dead or it belongs to an earlier DataBlock, and removed
// by Sweep once its members are dead.
//
// # A scribbled control zone
//
// Any process of the same user can change a word of a live segment. The ring
// never trusts the control zone to end a wait it cannot end:
//
//   - Attach validates a private copy of the header and takes every field from it
//     (geometry and the sync and checksum policies); the live header may change
//     meanwhile without effect. Policies are fixed per Block from then on.
//   - The checksum policy word is not covered by the layout checksum (spec §12.5
//     is kept byte for byte, with its test vector, for compatibility with other
//     implementations), so one byte could turn verification off for later
//     attachers: a consumer that relies on it sets AttachOptions.RequireChecksum.
//   - Waits check the bounds the protocol keeps (read_index ≤ write_index,
//     write_index − read_index ≤ N, commit_index < write_index, Sync_reader
//     cursors ≤ write_index, a slot's reader_count ≤ 64 and, when a drain gives
//     up, ≤ the holds registered consumers record) and return ErrCorrupt wrapped
//     with the field and values instead of waiting for good. A commit_index
//     beyond write_index (e.g. near 2^64, which "never move back" would keep for
//     ever) is set back by the writer's next publish, which reports ErrCorrupt
//     once; the channel goes on. Other fields are not guessed at: Check reports
//     them and the recovery calls repair them.
//   - A Reader checks that its heartbeat entry still holds its identity; when it
//     was taken over (ErrEntryLost) the Reader stops using it and Close leaves the
//     next owner's entry alone (entries are cleared under the reclaiming sentinel
//     before being freed). Entries left at the sentinel for 1 s are freed by the
//     next reap, and a new Reader that finds the pool full first reaps dead
//     consumers' entries (Latest_only writers never block, so never reap).
//     Readers of one process share one identity: a takeover by a sibling Reader
//     of the same process is not detected.
//
// # Faults
//
// Another process may shrink the file under the mapping; touching the lost pages
// raises SIGBUS. Every method that touches the mapping runs with
// debug.SetPanicOnFault and turns the fault into ErrFault; Block.CheckSize compares
// the file with the mapping. IMPORTANT: the spans returned by Bytes() are raw shared
// memory: code that reads them outside this package's calls and must survive a
// hostile peer should do the same (the typed API runs its callbacks guarded).
// Under the race detector sync/atomic operations run inside the race runtime (C on
// the system stack), where a fault cannot become a panic: there a shrink racing with
// an atomic access can still kill the process. Normal builds are not affected.
//
// Recovery and tools: Diagnose, ForceReset, ReleaseZombieReaders/Writer,
// CleanupDeadConsumers, Reap, Check (integrity, with in-place repair of hashes;
// reachable as "plh-admin check SEGMENT"), RepairSlotChecksum (one slot's hash
// recomputed in place while held as a reader: the hub's checksum Repair policy,
// B-16; dangerous, it blesses the bytes there), OwnedBy (creator or last
// committer is a given pid) and Sweep (removes leftover segments
// whose creator, producer and consumers are dead). Inspect/InspectFile read a
// snapshot of the header, slot entries and heartbeat entries with pread, without
// mapping, secret or registration: the one definition of the layout that tools
// and fault injectors (chaos) use instead of copying offsets.
package shm
