// Package event is the line protocol between plh processes and whoever watches
// them: every role process (plh-hub, plh-node) writes one JSON object per line on
// stdout for every event, and the scenario engine (sim) and the test suites read
// exactly that stream. docs/events.md lists every kind and its fields.
//
// An event is flat JSON: three fixed keys, then the kind's own fields.
//
//	{"t":123456789,"node":"c1","kind":"notification","type":"CHANNEL_CLOSING_NOTIFY","channel":"lab.cam"}
//
// t is CLOCK_MONOTONIC in nanoseconds (proc.Now), comparable across processes on
// one host, so streams from many processes merge into one timeline.
//
// A Writer is safe for concurrent use and writes each event with one Write call,
// so lines never interleave. Decode is strict about the fixed keys and tolerant of
// extra fields (a newer writer may add fields an older reader ignores).
package event
