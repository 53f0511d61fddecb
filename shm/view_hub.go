package shm

import "fmt"

// View returns the start of b (a slot span from WriteSlot.Bytes or ReadSlot.Bytes,
// or Block.Flex) as a *T, for typed transactions built on the byte-slice API (the
// hub's Producer and Consumer). T must be plain fixed-size data (ErrNotPlain) and
// fit in b (ErrTooSmall). The pointer is valid only while the span is: until the
// slot is released, or the Block closed.
func View[T any](b []byte) (*T, error) {
	if err := checkPlain(typeOf[T]()); err != nil {
		return nil, err
	}
	n := sizeOf[T]()
	if n == 0 {
		return nil, nil
	}
	if n > len(b) {
		return nil, fmt.Errorf("%w: type of %d bytes, span of %d", ErrTooSmall, n, len(b))
	}
	return viewAs[T](b), nil
}
