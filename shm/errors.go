package shm

import "errors"

// Errors of Create (configuration).
var (
	// ErrInvalidConfig is returned when a Config field is unset or out of range.
	ErrInvalidConfig = errors.New("shm: invalid config")
	// ErrInvalidName is returned when a segment name is empty, too long or has a '/'.
	ErrInvalidName = errors.New("shm: invalid segment name")
)

// Errors of Attach, in the order the checks run. Each is wrapped with the segment name.
var (
	// ErrNotFound is returned when no segment of that name exists.
	ErrNotFound = errors.New("shm: segment not found")
	// ErrNotInitialized is returned when the magic number did not appear within the
	// attach wait: the creator may have crashed while creating the segment.
	ErrNotInitialized = errors.New("shm: segment not initialised (creator may have crashed)")
	// ErrBadMagic is returned when the segment starts with a foreign magic number.
	ErrBadMagic = errors.New("shm: bad magic number")
	// ErrVersion is returned when the header version is not one this build reads.
	ErrVersion = errors.New("shm: unsupported header version")
	// ErrTruncated is returned when the file is smaller than the header says (or than
	// a header): someone truncated it.
	ErrTruncated = errors.New("shm: segment truncated")
	// ErrCorruptHeader is returned when header fields are out of range or disagree
	// with each other (absurd sizes, capacity, policies).
	ErrCorruptHeader = errors.New("shm: corrupt header")
	// ErrLayoutHash is returned when the stored header layout hash differs from this
	// build's (the creator uses another header ABI).
	ErrLayoutHash = errors.New("shm: header layout hash mismatch")
	// ErrLayoutChecksum is returned when the layout checksum does not match the
	// header's geometry fields.
	ErrLayoutChecksum = errors.New("shm: layout checksum mismatch")
	// ErrSecret is returned when the caller's shared secret differs from the segment's.
	ErrSecret = errors.New("shm: shared secret mismatch")
	// ErrConfigMismatch is returned when AttachOptions.Expect disagrees with the header.
	ErrConfigMismatch = errors.New("shm: config mismatch")
	// ErrSchemaMismatch is returned when an expected schema hash or version differs.
	ErrSchemaMismatch = errors.New("shm: schema mismatch")
)

// Errors of slot operations.
var (
	// ErrTimeout is returned when a slot could not be acquired before the timeout.
	// It is returned unwrapped so the hot path does not allocate.
	ErrTimeout = errors.New("shm: timeout")
	// ErrClosed is returned by methods of a closed Block, Writer or Reader.
	ErrClosed = errors.New("shm: closed")
	// ErrSlotHeld is returned when a Writer already holds a slot, or a Reader holds
	// as many slots as it may.
	ErrSlotHeld = errors.New("shm: slot already held")
	// ErrReleased is returned by methods of a slot handle after its release.
	ErrReleased = errors.New("shm: slot released")
	// ErrRange is returned when a write or commit exceeds the slot size.
	ErrRange = errors.New("shm: out of slot range")
	// ErrOverwritten is returned by ReadSlot.Release when the writer overwrote the
	// slot while it was held (generation changed).
	ErrOverwritten = errors.New("shm: slot overwritten while read")
	// ErrChecksum is returned when a slot or flex-zone checksum does not verify.
	ErrChecksum = errors.New("shm: checksum mismatch")
	// ErrNoConsumerEntry is returned when all 8 consumer heartbeat entries are taken
	// and the policy needs one (Sync_reader).
	ErrNoConsumerEntry = errors.New("shm: no free consumer heartbeat entry")
	// ErrFault is returned when touching the mapping faulted (the file was shrunk
	// under it). The Block is unusable afterwards.
	ErrFault = errors.New("shm: memory fault on segment (file shrunk?)")
	// ErrReadOnly is returned when a diagnostic attachment tries to write slots.
	ErrReadOnly = errors.New("shm: attached for diagnostics only")
	// ErrNoFlexZone is returned when the block has no flex zone.
	ErrNoFlexZone = errors.New("shm: no flex zone")
	// ErrCorrupt is returned when a wait finds the control zone in a state the
	// protocol never produces (read_index beyond write_index, more than N slots in
	// flight, commit_index beyond write_index, a cursor ahead of write_index, a
	// reader count nobody can own): another process scribbled on the segment.
	// It is wrapped with the field and its values; waiting would never end.
	ErrCorrupt = errors.New("shm: control zone corrupt")
	// ErrEntryLost is returned by a Reader whose consumer heartbeat entry no
	// longer holds its identity (reclaimed and given to another consumer after a
	// scribble). The Reader can no longer read; close it and make a new one.
	ErrEntryLost = errors.New("shm: consumer heartbeat entry lost")
)

// Errors of the typed API and schemas.
var (
	// ErrNotPlain is returned when a type has pointers, or is not fixed-size data.
	ErrNotPlain = errors.New("shm: type is not plain fixed-size data")
	// ErrTooSmall is returned when a typed struct does not fit the slot or flex zone.
	ErrTooSmall = errors.New("shm: type larger than the slot or flex zone")
)

// Errors of segment ownership (claim.go).
var (
	// ErrSegmentInUse is returned by Create when a segment of that name exists and
	// a live process owns it (its creator or last producer, pid plus start time);
	// the message names that process. The segment is left alone.
	ErrSegmentInUse = errors.New("shm: segment in use by a live process")
	// ErrReaderLocked is returned by LockSoleReader when another attachment is
	// the segment's sole reader.
	ErrReaderLocked = errors.New("shm: the segment already has its sole reader")
)

// Errors of consumer groups (group.go).
var (
	// ErrGroupUnsupported is returned by JoinGroup on a ring whose sync policy is
	// not ordered (Latest_only), and on heap or diagnostic blocks.
	ErrGroupUnsupported = errors.New("shm: consumer group not supported on this ring")
	// ErrGroupFull is returned by JoinGroup when the group has its maximum number
	// of live members (16).
	ErrGroupFull = errors.New("shm: consumer group full")
)
