// Package proc tells whether another process on this host is alive, without the
// two classic mistakes: trusting kill(pid, 0), which reports zombies as alive, and
// trusting a bare pid, which the kernel reuses.
//
// A process is named by an Identity: its pid plus its start time in clock ticks
// since boot (field 22 of /proc/PID/stat). Two processes that ever held the same
// pid have different start times, so a recycled pid is never mistaken for the
// process that died. Identities pack into one uint64 (Pack/Unpack) so they fit the
// single atomic words of the shared-memory header.
//
// Exits are observed with a pidfd (pidfd_open(2)): the descriptor becomes readable
// when the process exits, so a Watch learns of a death within one scheduler tick
// instead of polling. A Watch has one goroutine for all the processes it watches:
// it waits in epoll_wait(2) over their pidfds plus an eventfd that wakes it for
// Close. Remove closes the process's pidfd at once, so a long-lived watcher that
// adds and removes the same live process forever holds one descriptor per process
// watched now, never one per Add.
//
// Now returns CLOCK_MONOTONIC nanoseconds, the time base that every plh process on
// a host shares (heartbeats in segments, event timestamps in scenario runs).
package proc
