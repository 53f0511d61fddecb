// Package noderole is the plh-node program as a library: one process that runs a
// producer or a consumer of one channel through the hub API, from flags, and
// reports what it sees as the event stream of docs/events.md on stdout (logs on
// stderr). cmd/plh-node and the scenario engine (which re-executes plh-sim with
// the node role) both call Main.
//
// Payload of every message (SHM slot or peer data message), size --slot-size:
// bytes 0..7 the sequence number (little endian, from 0), 8..15 the
// CLOCK_MONOTONIC send time in ns (latency), then a pattern that depends on the
// sequence and the offset (patternByte), verified by consumers.
//
// Goroutines: the role loop (Main's goroutine), the event aggregator's ticker
// (written/read every 100 ms), and the control reader on stdin (JSON lines of
// docs/scenarios.md "Node control on stdin": {"cmd":"set","delay_per_read":"20ms"},
// {"cmd":"hold_lock"}). The stdin reader cannot be interrupted; it ends with
// the process (Main returns, the process exits).
package noderole
