// Package support drives real plh binaries for the Ginkgo suites: it builds them
// once per suite, starts processes in their own process group, reads their event
// stream (docs/events.md) and stops or kills them. It is a normal package (not a
// test file) so every suite and the scenario engine's tests share it.
//
// Everything a Proc starts is stopped by Stop/Kill; Cleanup kills whatever a spec
// forgot. Segment names from UniqueName carry the pid and a counter, so parallel
// Ginkgo processes never collide.
package support
