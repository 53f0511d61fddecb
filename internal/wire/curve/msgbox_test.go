package curve

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// msgKey's boxes are NaCl's crypto_box_afternm boxes byte for byte: what it
// seals box.OpenAfterPrecomputation opens, what box.SealAfterPrecomputation
// seals it opens, for plaintexts around every block boundary and large ones;
// a flipped bit anywhere, another nonce or a short box is refused.
func TestMsgKeyIsNaClBox(t *testing.T) {
	var shared [32]byte
	_, _ = rand.Read(shared[:])
	for _, pfx := range []string{prefixMsgC, prefixMsgS} {
		k := newMsgKey(&shared, pfx)
		sizes := []int{0, 1, 30, 31, 32, 33, 63, 64, 65, 94, 95, 96, 97, 127, 128, 129, 4095, 70000}
		for range 40 {
			sizes = append(sizes, mrand.IntN(3000))
		}
		for _, size := range sizes {
			plain := make([]byte, 1+size)
			_, _ = rand.Read(plain)
			n := mrand.Uint64()
			dst := []byte("head") // sealed after what dst holds
			ours := k.seal(dst, plain[0], plain[1:], n)
			if !bytes.Equal(ours[:4], []byte("head")) {
				t.Fatal("seal changed dst's bytes")
			}
			theirs := box.SealAfterPrecomputation(nil, plain, shortNonce(pfx, n), &shared)
			if !bytes.Equal(ours[4:], theirs) {
				t.Fatalf("%s size %d: seal differs from box.SealAfterPrecomputation", pfx, size)
			}
			got, ok := k.open([]byte("x"), theirs, n)
			if !ok || !bytes.Equal(got[1:], plain) || got[0] != 'x' {
				t.Fatalf("%s size %d: open of NaCl's box failed (%v)", pfx, size, ok)
			}
			if _, ok := k.open(nil, theirs, n+1); ok {
				t.Fatalf("size %d: opened under another nonce", size)
			}
			bad := append([]byte(nil), theirs...)
			bad[mrand.IntN(len(bad))] ^= 1 << mrand.IntN(8)
			if out, ok := k.open([]byte("y"), bad, n); ok || string(out) != "y" {
				t.Fatalf("size %d: a flipped bit opened (or dst changed)", size)
			}
		}
		if _, ok := k.open(nil, make([]byte, boxOverhead-1), 1); ok {
			t.Fatal("a box shorter than its tag opened")
		}
	}
}
