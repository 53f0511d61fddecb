// Package stress holds the slot and flex-zone types of the DataBlock stress
// behaviours (spec behaviours §8) shared by the shm suite and its worker process.
package stress

import "errors"

// Secret is the shared secret of the stress behaviours.
const Secret = 0xDEADBEEFCAFEBABE

// Flex is the flex-zone struct: the producer's pid.
type Flex struct {
	ProducerPid uint64 `blds:"producer_pid"`
}

// Slot is the 4096-byte slot struct.
type Slot struct {
	Sequence    uint64     `blds:"sequence"`
	AppChecksum uint32     `blds:"app_checksum"`
	Payload     [4084]byte `blds:"payload"`
}

// Fill writes the payload of seq and its app checksum.
func (s *Slot) Fill(seq uint64) {
	s.Sequence = seq
	var sum uint32
	for i := range s.Payload {
		b := byte(((seq*2654435761 + uint64(i)*1000003) >> 16) & 0xFF)
		s.Payload[i] = b
		sum ^= uint32(b) << (8 * (i % 4))
	}
	s.AppChecksum = sum
}

// ErrPayload is returned by Verify for a payload that does not match its sequence.
var ErrPayload = errors.New("stress: payload does not match sequence")

// Verify checks every payload byte and the app checksum.
func (s *Slot) Verify() error {
	var sum uint32
	for i := range s.Payload {
		b := byte(((s.Sequence*2654435761 + uint64(i)*1000003) >> 16) & 0xFF)
		if s.Payload[i] != b {
			return ErrPayload
		}
		sum ^= uint32(b) << (8 * (i % 4))
	}
	if sum != s.AppChecksum {
		return ErrPayload
	}
	return nil
}
