package report

import "errors"

// ErrWrite is returned when a file of the run folder cannot be written.
var ErrWrite = errors.New("cannot write run folder")
