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
				rcfg.Security, dcfg.Security = curvePair(t)
			}
			streamBatches(t, rcfg, dcfg)
		})
	}
}

func streamBatches(t *testing.T, rcfg, dcfg Config) {
	ctx := ctxT(t, 60*time.Second)
	r := mustRouter(t, rcfg)
	d := mustDial(t, dcfg, r.Endpoint())
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
			fillBody(body, i)
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
		want1 := make([]byte, size)
		fillBody(want1, i)
		if !bytes.Equal(got[1], want1) {
			t.Fatalf("message %d: body differs (first bytes %x)", i, got[1][:min(8, size)])
		}
		if want == 3 && string(got[2]) != "tail" {
			t.Fatalf("message %d: last frame %q", i, got[2])
		}
	}
	g := r.so.directPeer(string(m.Peer))
	if g == nil {
		t.Fatal("the Router did not write directly on the peer's connection")
	}
	// Large frames went out by reference: writev on the socket itself (under
	// the listener's wrapper), or one WriteBuffers through CURVE.
	if _, ok := g.Conn.(BuffersWriter); rcfg.Security != nil && !ok {
		t.Fatalf("the CURVE connection (%T) takes no buffers", g.Conn)
	}
	if rcfg.Security == nil && g.vectorConn() == nil {
		t.Fatalf("no writev on the NULL connection (%T)", g.Conn)
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

// fillBody fills b with bytes derived from i (i itself in the first 4).
func fillBody(b []byte, i int) {
	for k := range b {
		b[k] = byte(i*31 + k*7)
	}
	if len(b) >= 4 {
		binary.BigEndian.PutUint32(b, uint32(i))
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

// A Dealer's Sink takes the messages it wants on the connection's reader, the
// rest reach Recv; each stream keeps its order. A Sink blocked waiting for
// room is released by Close.
func TestDealerSink(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	r := mustRouter(t, Config{})
	d := mustDial(t, Config{}, r.Endpoint())
	sunk := make(chan []byte, 1000)
	d.SetSink(func(frames [][]byte, closed <-chan struct{}) bool {
		if string(frames[0]) != "S" {
			return false
		}
		select {
		case sunk <- frames[1]:
			return true
		case <-closed:
			return false
		}
	})
	if err := d.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	for i := range n {
		kind := []byte("S")
		if i%3 == 0 {
			kind = []byte("Q")
		}
		if err := r.Send(m.Peer, kind, binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 3 {
		got, err := d.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[0]) != "Q" || binary.BigEndian.Uint32(got[1]) != uint32(i) {
			t.Fatalf("Recv got %q %x, want Q %d", got[0], got[1], i)
		}
	}
	for i := range n {
		if i%3 == 0 {
			continue
		}
		select {
		case b := <-sunk:
			if binary.BigEndian.Uint32(b) != uint32(i) {
				t.Fatalf("sink got %d, want %d", binary.BigEndian.Uint32(b), i)
			}
		case <-ctx.Done():
			t.Fatalf("sink: message %d missing", i)
		}
	}
	// A Sink that waits for room nobody makes: Close still returns.
	full, entered := make(chan []byte), make(chan struct{}, 1)
	d.SetSink(func(frames [][]byte, closed <-chan struct{}) bool {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case full <- frames[1]:
			return true
		case <-closed:
			return false
		}
	})
	if err := r.Send(m.Peer, []byte("S"), []byte("stuck")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the sink never saw the message")
	}
	closed := make(chan struct{})
	go func() { d.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close blocked behind a waiting Sink")
	}
}

// A Dealer writes what is queued directly on its connection once zmq4's
// handshake is out: a stream of mixed sizes reaches the Router intact and in
// order, over NULL and CURVE.
func TestDealerWritesDirect(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "NULL", true: "CURVE"}[secure], func(t *testing.T) {
			rcfg, dcfg := Config{RecvQueue: 4096}, Config{PeerQueue: 4096}
			if secure {
				rcfg.Security, dcfg.Security = curvePair(t)
			}
			ctx := ctxT(t, 60*time.Second)
			r := mustRouter(t, rcfg)
			d := mustDial(t, dcfg, r.Endpoint())
			d.c.mu.Lock()
			g := d.c.conn
			d.c.mu.Unlock()
			if g == nil || !g.direct.Load() {
				t.Fatal("the Dealer does not know its connection, or zmq4's handshake is not out on it")
			}
			sizes := []int{0, 5, 300, 4096, 70000}
			const n = 1000
			go func() {
				for i := range n {
					body := make([]byte, sizes[i%len(sizes)])
					fillBody(body, i)
					for {
						err := d.Send([]byte{'A'}, body)
						if err == nil {
							break
						}
						if err != ErrQueueFull {
							t.Errorf("send %d: %v", i, err)
							return
						}
						time.Sleep(time.Millisecond)
					}
				}
			}()
			for i := range n {
				m, err := r.Recv(ctx)
				if err != nil {
					t.Fatalf("recv %d: %v", i, err)
				}
				want := make([]byte, sizes[i%len(sizes)])
				fillBody(want, i)
				if len(m.Frames) != 2 || !bytes.Equal(m.Frames[1], want) {
					t.Fatalf("message %d: %d frames, body of %d bytes differs", i, len(m.Frames), len(m.Frames[len(m.Frames)-1]))
				}
			}
			if st := d.Stats(); st.SendErrors != 0 {
				t.Fatalf("dealer stats %+v", st)
			}
		})
	}
}

// curvePair returns a CURVE server security and a client security that
// trusts it, for the two ends of one link.
func curvePair(t *testing.T) (server, client Security) {
	t.Helper()
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
	return ss, cs
}
