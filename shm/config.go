package shm

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
)

// Policy is the informational buffer policy (spec §2). Go values are the wire value
// plus one, so the zero value means "unset" and is rejected.
type Policy uint8

// Buffer policies.
const (
	PolicyUnset Policy = iota
	PolicySingle
	PolicyDoubleBuffer
	PolicyRingBuffer
)

// SyncPolicy is the consumer synchronisation policy (spec §8). Zero is unset.
type SyncPolicy uint8

// Consumer sync policies.
const (
	SyncUnset SyncPolicy = iota
	// LatestOnly: any number of readers, each sees the newest commit; no backpressure.
	LatestOnly
	// SingleReader: one logical consumer, strict FIFO, writer blocks on a full ring.
	SingleReader
	// SyncReader: up to 8 consumers with their own cursors; the slowest holds the writer.
	SyncReader
)

func (p SyncPolicy) String() string {
	switch p {
	case LatestOnly:
		return "Latest_only"
	case SingleReader:
		return "Single_reader"
	case SyncReader:
		return "Sync_reader"
	}
	return "Unset"
}

// ordered reports whether the policy gives backpressure and FIFO delivery.
func (p SyncPolicy) ordered() bool { return p == SingleReader || p == SyncReader }

// ChecksumPolicy says who computes slot checksums (spec §10). Zero means the default,
// Enforced.
type ChecksumPolicy uint8

// Checksum policies.
const (
	ChecksumDefault ChecksumPolicy = iota
	ChecksumNone
	ChecksumManual
	ChecksumEnforced
)

func (p ChecksumPolicy) String() string {
	switch p {
	case ChecksumNone:
		return "None"
	case ChecksumManual:
		return "Manual"
	case ChecksumEnforced:
		return "Enforced"
	}
	return "Default"
}

// ChecksumType is the checksum algorithm. Only BLAKE2b-256 exists; zero is BLAKE2b.
type ChecksumType uint8

// Checksum types.
const (
	ChecksumBLAKE2b ChecksumType = 0
	ChecksumUnset   ChecksumType = 255
)

// Page sizes accepted for Config.PageSize.
const (
	Page4K  = 4096
	Page4M  = 4 << 20
	Page16M = 16 << 20
)

// Config describes a DataBlock to create (spec §2). Zero fields take the defaults
// noted; fields the spec requires (PageSize, Capacity, Policy, Sync) have none.
type Config struct {
	Secret       uint64         // shared secret; 0 = random (nobody can attach by secret)
	PageSize     uint32         // physical page size: Page4K, Page4M or Page16M (required)
	SlotSize     uint32         // logical unit (slot stride); 0 = PageSize; else a multiple of it
	Capacity     uint32         // slot count, ≥ 1 (required)
	Policy       Policy         // informational buffer policy (required)
	Sync         SyncPolicy     // consumer sync policy (required)
	ChecksumType ChecksumType   // 0 = BLAKE2b; ChecksumUnset is rejected
	Checksum     ChecksumPolicy // 0 = Enforced
	FlexSize     uint32         // flex-zone bytes, rounded up to 4096 (0 = none)

	HubUID, HubName, ProducerUID, ProducerName string // stored in the header, truncated

	FlexSchema *Schema // optional: hash stored in the header
	SlotSchema *Schema // optional: hash and version stored in the header

	Logger *slog.Logger // nil = discard
}

// maxTotalSize bounds segments to something a machine can map (1 TiB).
const maxTotalSize = 1 << 40

// stride returns the resolved slot stride.
func (c *Config) stride() uint32 {
	if c.SlotSize == 0 {
		return c.PageSize
	}
	return c.SlotSize
}

func (c *Config) checksumPolicy() ChecksumPolicy {
	if c.Checksum == ChecksumDefault {
		return ChecksumEnforced
	}
	return c.Checksum
}

// validate checks every field before anything touches shared memory.
func (c *Config) validate() (layout, error) {
	bad := func(format string, a ...any) (layout, error) {
		return layout{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	switch c.PageSize {
	case Page4K, Page4M, Page16M:
	case 0:
		return bad("page size unset")
	default:
		return bad("page size %d is not 4096, 4194304 or 16777216", c.PageSize)
	}
	if c.Capacity == 0 {
		return bad("capacity 0 (need ≥ 1 slot)")
	}
	if c.Policy == PolicyUnset || c.Policy > PolicyRingBuffer {
		return bad("buffer policy unset or unknown (%d)", c.Policy)
	}
	if c.Sync == SyncUnset || c.Sync > SyncReader {
		return bad("consumer sync policy unset or unknown (%d)", c.Sync)
	}
	if c.ChecksumType != ChecksumBLAKE2b {
		return bad("checksum type %d (only BLAKE2b = 0)", c.ChecksumType)
	}
	if c.Checksum > ChecksumEnforced {
		return bad("checksum policy %d", c.Checksum)
	}
	s := c.stride()
	if s < c.PageSize || s%c.PageSize != 0 {
		return bad("slot size %d is not a multiple of page size %d", s, c.PageSize)
	}
	if uint64(c.FlexSize) > math.MaxUint32-4095 {
		return bad("flex size %d too large", c.FlexSize)
	}
	l := computeLayout(uint64(c.Capacity), uint64(s), uint64(c.FlexSize))
	if l.totalSize > maxTotalSize {
		return bad("segment of %d bytes exceeds %d", l.totalSize, maxTotalSize)
	}
	return l, nil
}

// validName checks a segment name: non-empty, no '/' after an optional leading one,
// at most 200 bytes.
func validName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	if n == "" || len(n) > 200 || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return n, nil
}

// AttachOptions tunes Attach. The zero value (or nil) attaches as a consumer-side
// handle with no expectations.
type AttachOptions struct {
	// Expect, when set, must agree with the header on rounded flex size, capacity,
	// page size, stride and checksum type (spec §6.3 step 4).
	Expect *Config
	// FlexSchema / SlotSchema, when set, must match the stored hashes (and for the
	// slot schema the major version).
	FlexSchema, SlotSchema *Schema
	// RequireChecksum, when set, must equal the segment's checksum policy
	// (ErrConfigMismatch otherwise). The policy word is not covered by the layout
	// checksum (spec §12.5), so a consumer that relies on verification says so
	// here. ChecksumDefault accepts any policy.
	RequireChecksum ChecksumPolicy
	// InitWait bounds the wait for the creator's magic number; 0 = 5 s.
	InitWait time.Duration
	Logger   *slog.Logger // nil = discard
}

// WaitOptions tunes how a Writer or Reader waits. Zero fields take defaults.
type WaitOptions struct {
	// Spin is how long a waiter spins before sleeping on the futex; 0 = 50 µs,
	// negative = never spin.
	Spin time.Duration
	// HeartbeatTimeout bounds how long a blocked writer (ring full, or draining a slot)
	// or a reader waiting at a hole goes without checking for dead consumers and
	// writers: it checks every HeartbeatTimeout/4 and reclaims what dead processes
	// held. 0 = 1 s.
	HeartbeatTimeout time.Duration
}

func (o WaitOptions) spin() time.Duration {
	switch {
	case o.Spin == 0:
		return 50 * time.Microsecond
	case o.Spin < 0:
		return 0
	}
	return o.Spin
}

func (o WaitOptions) reapEvery() time.Duration {
	if o.HeartbeatTimeout <= 0 {
		return 250 * time.Millisecond
	}
	return o.HeartbeatTimeout / 4
}
