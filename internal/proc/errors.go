package proc

import "errors"

// Errors of package proc (errors.Is).
var (
	// ErrNoProcess is returned when the process named by a pid does not exist (or
	// is a zombie, which for every purpose of plh is dead).
	ErrNoProcess = errors.New("proc: no such process")
	// ErrClosed is returned by Watch.Add after Close.
	ErrClosed = errors.New("proc: watch closed")
)
