package wire

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// A Dealer with an allocator (SetAlloc) assembles every received body over 64
// bytes in the storage the allocator returned (a result of the wrong length is
// ignored), large bodies read straight from the network included; the frame
// list a Sink took is reused, yet messages queued for Recv keep their own
// frames intact while later ones arrive.
func TestDealerAlloc(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	r := mustRouter(t, Config{PeerQueue: 4096})
	d := mustDial(t, Config{RecvQueue: 4096}, r.Endpoint())
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type given struct {
		p *byte
		n int
	}
	allocs := make(chan given, 1) // the reader goroutine allocates and delivers in turn
	calls := 0
	d.SetAlloc(func(n int) []byte {
		calls++
		if calls%5 == 0 {
			return make([]byte, n+1) // wrong length: the Dealer makes its own
		}
		b := make([]byte, n, n+7)
		select {
		case allocs <- given{&b[0], n}:
		default:
			t.Errorf("two bodies allocated before one was delivered")
		}
		return b
	})
	sunk := make(chan error, 1000)
	fromAlloc := 0
	d.SetSink(func(frames [][]byte, closed <-chan struct{}) bool {
		body := frames[1]
		select {
		case g := <-allocs:
			if string(frames[0]) != "S" {
				return false
			}
			if &body[0] != g.p || len(body) != g.n || cap(body) != g.n+7 {
				sunk <- fmt.Errorf("sunk body is not the allocator's storage")
				return true
			}
			fromAlloc++
		default: // the wrong-length call: the Dealer's own slice
			if string(frames[0]) != "S" {
				return false
			}
		}
		sunk <- checkBody(body)
		return true
	})
	const n = 400
	for i := range n {
		kind := []byte("S")
		if i%4 == 0 {
			kind = []byte("Q")
		}
		if err := r.Send(m.Peer, kind, allocBody(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if i%4 == 0 {
			continue
		}
		select {
		case err := <-sunk:
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		case <-ctx.Done():
			t.Fatalf("sink: message %d missing", i)
		}
	}
	for i := 0; i < n; i += 4 { // queued meanwhile: every frame list still its own
		got, err := d.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got[0]) != "Q" {
			t.Fatalf("Recv got %d frames, first %q", len(got), got[0])
		}
		if err := checkBody(got[1]); err != nil || binary.BigEndian.Uint32(got[1]) != uint32(i) {
			t.Fatalf("Recv message %d: %v (index %d)", i, err, binary.BigEndian.Uint32(got[1]))
		}
	}
	if fromAlloc < n/2 {
		t.Fatalf("%d of %d sunk bodies came from the allocator", fromAlloc, 3*n/4)
	}
}

// allocBody is message i's body: 70 to about 40 KiB (large ones are read from
// the network straight into their storage), every byte derived from i.
func allocBody(i int) []byte {
	b := make([]byte, 70+(i*7919)%40000)
	for k := range b {
		b[k] = byte(i + k*31)
	}
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// checkBody reports whether b is allocBody of the index it starts with.
func checkBody(b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("body of %d bytes", len(b))
	}
	want := allocBody(int(binary.BigEndian.Uint32(b)))
	if string(want) != string(b) {
		return fmt.Errorf("body of %d bytes (index %d) corrupted", len(b), binary.BigEndian.Uint32(b))
	}
	return nil
}
