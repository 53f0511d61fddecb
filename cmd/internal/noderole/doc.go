// Package noderole is the plh-node program as a library: one process that runs a
// producer or a consumer of one channel through the hub API, from flags, and
// reports what it sees as the event stream of docs/events.md on stdout (logs on
// stderr). cmd/plh-node and the scenario engine (which re-executes plh-sim with
// the node role) both call Main.
//
// Payload of every message (SHM slot or peer data message), size --slot-size:
// bytes 0..7 the sequence number (little endian, from 0), 8..15 the
// CLOCK_MONOTONIC send time in ns (latency), 16..23 the writer's pid (its
// incarnation), then a pattern that depends on the sequence and the offset
// (patternByte), verified by consumers.
//
// Accounting. A consumer tracks sequences per writer incarnation (seqTracker):
// a successor producer restarting at 0 is no reorder; on a split stream
// (Pipeline, Bidir round robin on the peer link) a jump is no loss of its own.
// Each read/written event holds one incarnation (from_pid). --status-file
// keeps running totals in a shared mapping (status.go) that the engine reads
// after a SIGKILL. bidir.go: Bidir's consumer-to-producer direction
// (--send-rate; a second aggregator, upstream events) and --churn.
//
// Goroutines: the role loop (Main's goroutine), the event aggregator's ticker
// (written/read every 100 ms; a second one for Bidir's upstream direction), the
// stats ticker (--stats-interval), the upstream sender (--send-rate), and the control reader on stdin (JSON lines of
// docs/scenarios.md "Node control on stdin": {"cmd":"set","delay_per_read":"20ms"},
// {"cmd":"hold_lock"}). The stdin reader cannot be interrupted; it ends with
// the process (Main returns, the process exits).
package noderole
