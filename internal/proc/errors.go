package proc

import "errors"

// Errors of package proc (errors.Is).
var (
	// ErrNoProcess is returned when the process named by a pid does not exist (or
	// is a zombie, which for every purpose of plh is dead).
	ErrNoProcess = errors.New("proc: no such process")
	// ErrNotWatchable is returned by Watch.Add when a live process cannot be
	// watched (no descriptor left for its pidfd, for one): its exit will not be
	// reported, and the caller must judge its liveness another way.
	ErrNotWatchable = errors.New("proc: process cannot be watched")
	// ErrClosed is returned by Watch.Add after Close.
	ErrClosed = errors.New("proc: watch closed")
)
