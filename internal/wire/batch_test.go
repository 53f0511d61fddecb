package wire

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/wire/curve"
)

// Router sends go out in batches written directly on the peer's connection:
// a stream of messages of mixed sizes and frame counts arrives complete and in
// order, over NULL and CURVE, and the direct path was taken.
func TestRouterBatchedStream(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "NULL", true: "CURVE"}[secure]
		t.Run(name, func(t *testing.T) {
			rcfg, dcfg := Config{PeerQueue: 4096}, Config{RecvQueue: 4096}
			if secure {
				keys, err := curve.GenerateKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				ss, err := curve.NewServerSecurity(curve.ServerConfig{Keys: keys})
				if err != nil {
					t.Fatal(err)
				}
				cs, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: keys.Public})
				if err != nil {
					t.Fatal(err)
				}
				rcfg.Security, dcfg.Security = ss, cs
			}
			streamBatches(t, rcfg, dcfg)
		})
	}
}

func streamBatches(t *testing.T, rcfg, dcfg Config) {
	ctx := ctxT(t, 60*time.Second)
	r, err := Listen(rcfg, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := Dial(ctx, dcfg, r.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The Router learns the Dealer's connection from its first message.
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 64, 255, 256, 3000, 4096, 70000, 300000}
	const n = 2000
	go func() {
		for i := range n {
			body := make([]byte, sizes[i%len(sizes)])
			if len(body) >= 4 {
				binary.BigEndian.PutUint32(body, uint32(i))
			}
			frames := [][]byte{{'A'}, body}
			if i%3 == 0 {
				frames = append(frames, []byte("tail"))
			}
			for {
				err := r.Send(m.Peer, frames...)
				if err == nil {
					break
				}
				if err != ErrQueueFull {
					t.Errorf("send %d: %v", i, err)
					return
				}
				time.Sleep(time.Millisecond) // the queue is bounded: let the writer drain it
			}
		}
	}()
	for i := range n {
		got, err := d.Recv(ctx)
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		want := 2
		if i%3 == 0 {
			want = 3
		}
		size := sizes[i%len(sizes)]
		if len(got) != want || !bytes.Equal(got[0], []byte{'A'}) || len(got[1]) != size {
			t.Fatalf("message %d: %d frames, body %d bytes (want %d frames, %d bytes)", i, len(got), len(got[1]), want, size)
		}
		if size >= 4 && binary.BigEndian.Uint32(got[1]) != uint32(i) {
			t.Fatalf("message %d arrived as %d", i, binary.BigEndian.Uint32(got[1]))
		}
		if want == 3 && string(got[2]) != "tail" {
			t.Fatalf("message %d: last frame %q", i, got[2])
		}
	}
	if g := r.so.directPeer(string(m.Peer)); g == nil {
		t.Fatal("the Router did not write directly on the peer's connection")
	}
	st := r.Stats()
	if st.Sent < n || st.SendErrors != 0 {
		t.Fatalf("router stats %+v", st)
	}
}
