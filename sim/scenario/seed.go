package scenario

import (
	"crypto/rand"
	"encoding/binary"
)

// NewSeed returns a random seed for a scenario without one (below 2^63, so
// it reads the same as a signed integer).
func NewSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return binary.LittleEndian.Uint64(b[:]) >> 1
}
