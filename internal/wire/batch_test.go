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
// order, over NULL and CURVE, and the direct paths were taken (the Router's
// writes, the Dealer's delivery).
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
	// The counter moves just after the hand-off to Recv: wait for the last one.
	for d.c.st.direct.Load() != n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d messages delivered directly by the Dealer's connection", d.c.st.direct.Load(), n)
		case <-time.After(time.Millisecond):
		}
	}
	st := r.Stats()
	if st.Sent < n || st.SendErrors != 0 {
		t.Fatalf("router stats %+v", st)
	}
}

// A Dealer's connection delivering messages itself keeps every limit: a frame
// over its MaxFrame, or a message of more than MaxFrames frames, drops the
// connection (counted, nothing delivered), and the Dealer redials.
func TestDirectDeliveryKeepsLimits(t *testing.T) {
	r := mustRouter(t, Config{})
	d := mustDial(t, Config{MaxFrame: 1024, MaxFrames: 4}, r.Endpoint())
	ctx := ctxT(t, 30*time.Second)
	hello := func() []byte {
		t.Helper()
		if err := d.Send([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		m, err := r.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m.Peer
	}
	peer := hello()
	for _, bad := range [][][]byte{
		{{'A'}, make([]byte, 2048)},         // frame over MaxFrame
		{{1}, {2}, {3}, {4}, {5}, {6}, {7}}, // more than MaxFrames frames
	} {
		before, redials := d.Stats().Oversized, d.Stats().Redials
		if err := r.Send(peer, bad...); err != nil {
			t.Fatal(err)
		}
		for d.Stats().Oversized == before {
			select {
			case <-ctx.Done():
				t.Fatal("violation not counted")
			case <-time.After(5 * time.Millisecond): // polling a counter, not waiting for an event
			}
		}
		for !d.Connected() || d.Stats().Redials == redials {
			select {
			case <-ctx.Done():
				t.Fatal("no redial")
			case <-time.After(5 * time.Millisecond):
			}
		}
		peer = hello()
		if err := r.Send(peer, []byte("ok")); err != nil {
			t.Fatal(err)
		}
		got, err := d.Recv(ctx)
		if err != nil || len(got) != 1 || string(got[0]) != "ok" {
			t.Fatalf("after the violation got %q, %v", got, err)
		}
	}
}
