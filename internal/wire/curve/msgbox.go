package curve

import (
	"encoding/binary"

	"golang.org/x/crypto/poly1305"
	"golang.org/x/crypto/salsa20/salsa"
)

// msgKey seals and opens the MESSAGE boxes of one direction: NaCl's
// crypto_box_afternm (XSalsa20-Poly1305 under the precomputed key, byte for
// byte what box.SealAfterPrecomputation and OpenAfterPrecomputation produce
// and accept) with the XSalsa20 subkey computed once. XSalsa20 derives it by
// HSalsa20 from the key and the nonce's first 16 bytes, which for MESSAGE are
// the direction's fixed prefix ("CurveZMQMESSAGEC"/"…S"): per message only
// the 8-byte short nonce changes, so secretbox's HSalsa20 per box (15% of the
// CPU of a 64-byte message's open) is spent once per connection.
//
// Seal also takes the plaintext in two parts, the flags byte and the payload,
// so a payload that arrived whole is sealed from where it is (no copy behind
// the flags byte first).
type msgKey struct {
	sub [32]byte // HSalsa20(shared, prefix)
}

// newMsgKey derives the subkey of the MESSAGE boxes whose nonces start with
// prefix (16 bytes).
func newMsgKey(shared *[32]byte, prefix string) *msgKey {
	var hn [16]byte
	copy(hn[:], prefix)
	k := new(msgKey)
	salsa.HSalsa20(&k.sub, &hn, shared, &salsa.Sigma)
	return k
}

// stream returns the Poly1305 key and the keystream of plaintext bytes 0..31
// of short nonce n, with counter set for plaintext byte 32 on.
func (k *msgKey) stream(n uint64, counter *[16]byte) (polyKey [32]byte, first [32]byte) {
	binary.BigEndian.PutUint64(counter[:8], n)
	var block [64]byte
	salsa.XORKeyStream(block[:], block[:], counter, &k.sub)
	counter[8] = 1
	copy(polyKey[:], block[:32])
	copy(first[:], block[32:])
	return polyKey, first
}

// seal appends the box of the plaintext flags‖payload under short nonce n to
// dst (16-byte tag, then the ciphertext). dst's new bytes must not overlap
// payload.
func (k *msgKey) seal(dst []byte, flags byte, payload []byte, n uint64) []byte {
	var counter [16]byte
	polyKey, first := k.stream(n, &counter)
	start := len(dst)
	dst = growBy(dst, boxOverhead+1+len(payload))
	ct := dst[start+boxOverhead:]
	ct[0] = flags ^ first[0]
	head := min(len(payload), 31)
	for i, x := range payload[:head] {
		ct[1+i] = x ^ first[1+i]
	}
	if rest := payload[head:]; len(rest) > 0 {
		salsa.XORKeyStream(ct[32:], rest, &counter, &k.sub)
	}
	var tag [16]byte
	poly1305.Sum(&tag, ct, &polyKey)
	copy(dst[start:], tag[:])
	return dst
}

// open checks the box (tag, ciphertext) under short nonce n and appends its
// plaintext to dst; false when it does not authenticate (dst unchanged). dst's
// new bytes must not overlap box.
func (k *msgKey) open(dst, box []byte, n uint64) ([]byte, bool) {
	if len(box) < boxOverhead {
		return dst, false
	}
	var counter [16]byte
	polyKey, first := k.stream(n, &counter)
	var tag [16]byte
	copy(tag[:], box)
	ct := box[boxOverhead:]
	if !poly1305.Verify(&tag, ct, &polyKey) {
		return dst, false
	}
	start := len(dst)
	dst = growBy(dst, len(ct))
	out := dst[start:]
	head := min(len(ct), 32)
	for i, x := range ct[:head] {
		out[i] = x ^ first[i]
	}
	if len(ct) > 32 {
		salsa.XORKeyStream(out[32:], ct[32:], &counter, &k.sub)
	}
	return dst, true
}

// growBy extends b by n bytes (their content undefined), reallocating only
// when its capacity is short.
func growBy(b []byte, n int) []byte {
	if total := len(b) + n; cap(b) >= total {
		return b[:total]
	}
	nb := make([]byte, len(b)+n, 2*len(b)+n)
	copy(nb, b)
	return nb
}
