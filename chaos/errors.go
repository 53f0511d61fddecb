package chaos

import "errors"

// Errors of the injectors.
var (
	// ErrNotDataBlock is returned when a segment does not carry the DataBlock
	// magic or its header describes a layout larger than the file.
	ErrNotDataBlock = errors.New("chaos: not a DataBlock segment")

	// ErrNoCommittedSlot is returned by CorruptSlot when no slot is in the
	// COMMITTED state (nothing written yet, or everything being rewritten).
	ErrNoCommittedSlot = errors.New("chaos: no committed slot to corrupt")

	// ErrBadSignal is returned by ParseSignal for an unknown signal name.
	ErrBadSignal = errors.New("chaos: unknown signal")

	// ErrClosed is returned by Proxy methods after Close.
	ErrClosed = errors.New("chaos: proxy closed")
)
