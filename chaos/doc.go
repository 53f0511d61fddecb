// Package chaos holds the fault primitives of the scenario engine. Each is a
// small, synchronous operation on a real system object (a process group, a
// DataBlock segment, a TCP link, a node's control input); it knows nothing of
// scenarios, schedules or timelines. The engine (package sim) decides when to
// call one and records when it really fired.
//
// What it offers:
//
//   - Signals (signal.go): ParseSignal, SignalGroup: kill with any signal, pause (SIGSTOP) and resume
//     (SIGCONT). They act on a whole process group: every role process runs in
//     its own group, so helpers it may have spawned are hit too.
//   - Segment damage (segment.go): flip bytes in the payload of a committed slot
//     of a DataBlock in /dev/shm (the checksum path), inspect which slot write
//     locks are held by dead processes (after "writer killed holding the lock"),
//     and run shm's integrity check on a segment (CheckSegment, for a killed
//     producer's segment). The layout has one definition, in shm: the injectors
//     read it with shm.InspectFile (pread, no mapping, no secret, no party
//     registered) and change bytes at the offsets it gives with pwrite, so a bad
//     segment cannot fault us and a layout change in shm cannot silently miss.
//   - Control-zone scribbles (control_zone.go): CorruptControl changes one word
//     of a live segment's control zone as a process of the same user could
//     (targets: indices, reader_counts, locks, heartbeats, random), at the
//     offset shm.Inspection.Offset gives; the corrupt_control fault kind.
//   - Lock reclaim (reclaim.go): WatchLock attaches to a real segment with its
//     secret (through shm, mapped) while a slot's write lock holder is alive and
//     notes the holder and the recovery counters; after the holder's death
//     Reclaim acts as the next writer (takes slots and aborts them, publishing
//     nothing) until the dead holder's lock is gone, and reports who reclaimed
//     it (its own Block's warnings are tapped), how (lock takeover or skip
//     marker) and the counter rises.
//   - Link faults (proxy.go): a TCP Proxy placed between a node and the broker.
//     SetDelay adds latency to every byte in both directions from now on; Reset
//     aborts every open connection with RST and may refuse new ones for a while.
//   - Control commands (control.go): the JSON lines the engine writes on a node's
//     stdin (SetDelay for a slow consumer, HoldLock), the contract of
//     docs/scenarios.md.
//
// No Fault or Injector type. A fault kind is not a chaos type: injecting one
// needs the engine's state (which process is current, the proxies, the
// timeline), and some kinds combine several primitives (kill_holding_lock:
// control line, WatchLock, SignalGroup, HeldLocks, Reclaim). So the kinds are
// one table in the engine (sim's faultTable: per kind its name, inject and
// undo), validated per kind by sim/scenario, and chaos stays a set of
// primitives with no interface to implement.
//
// Goroutines: only the Proxy has any (LockWatch runs on the caller's): one
// accept loop, and per proxied connection two pumps (one per direction) plus,
// per direction, one delayed writer. Close stops and waits for all of them.
// Lock order: Proxy.mu only (never held across I/O); logTap.mu is a leaf.
package chaos
