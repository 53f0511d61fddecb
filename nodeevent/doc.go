// Package nodeevent lets a program built on the hub library run as a node of
// a plh-sim scenario (`command = [...]` on a producer or consumer): it writes
// the public event contract of docs/events.md ("Your own program as a node")
// on stdout in a few calls (Ready, Written, Read, Notification, Exit), and
// reads what the engine tells the program through PLH_* environment
// variables (LoadEnv).
//
// An Emitter is a thin layer over the same line writer plh-hub and plh-node
// use (internal/event): one JSON object per line, stamped with
// CLOCK_MONOTONIC nanoseconds, one write per line, safe for concurrent use.
// It keeps the running totals that Exit reports. It knows nothing of the
// engine: the library never imports sim.
package nodeevent
