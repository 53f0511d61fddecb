package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire/wiretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testMsg returns the frames of a three-frame message [tag][typ][body]: wire
// moves opaque frames, so its tests only need some multi-frame message.
func testMsg(typ string, body []byte) [][]byte {
	return [][]byte{{'C'}, []byte(typ), body}
}

func mustRouter(t *testing.T, cfg Config) *Router {
	t.Helper()
	r, err := Listen(cfg, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mustDial(t *testing.T, cfg Config, ep string) *Dealer {
	t.Helper()
	d, err := Dial(ctxT(t, 10*time.Second), cfg, ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestRouterDealerRoundTrip(t *testing.T) {
	for _, ep := range []string{"tcp://127.0.0.1:0", "ipc://" + t.TempDir() + "/s"} {
		t.Run(strings.SplitN(ep, ":", 2)[0], func(t *testing.T) {
			r, err := Listen(Config{}, ep)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if strings.HasSuffix(r.Endpoint(), ":0") {
				t.Fatalf("endpoint %q lacks the real port", r.Endpoint())
			}
			d := mustDial(t, Config{}, r.Endpoint())
			if err := d.Send(testMsg("PING_REQ", []byte("{}"))...); err != nil {
				t.Fatal(err)
			}
			m, err := r.Recv(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Peer, d.Identity()) {
				t.Fatalf("peer %q, want %q", m.Peer, d.Identity())
			}
			if len(m.Frames) != 3 || string(m.Frames[1]) != "PING_REQ" {
				t.Fatalf("got %q", m.Frames)
			}
			if err := r.Send(m.Peer, testMsg("PING_ACK", []byte("{}"))...); err != nil {
				t.Fatal(err)
			}
			got, err := d.Recv(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || string(got[1]) != "PING_ACK" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestBadEndpoint(t *testing.T) {
	for _, ep := range []string{"", "tcp://", "udp://x:1", "tcp://127.0.0.1", "tcp://h:99999", "inproc://x"} {
		if _, err := Listen(Config{}, ep); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("Listen(%q) = %v", ep, err)
		}
		if _, err := NewDealer(Config{}, ep); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("NewDealer(%q) = %v", ep, err)
		}
	}
}

func TestDialNoPeerFailsFast(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ep := "tcp://" + ln.Addr().String()
	ln.Close()
	d, err := NewDealer(Config{}, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Send([]byte("x")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send = %v, want ErrNotConnected", err)
	}
	if err := d.WaitConnected(ctxT(t, 300*time.Millisecond)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("WaitConnected = %v", err)
	}
}

func waitEvent(t *testing.T, d *Dealer, k EventKind) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	for {
		select {
		case e := <-d.Events():
			if e.Kind == k {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %v event", k)
		}
	}
}

func TestDealerRedialsAfterPeerLost(t *testing.T) {
	r, err := Listen(Config{}, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := r.Endpoint()
	d := mustDial(t, Config{RedialMax: 200 * time.Millisecond}, ep)
	waitEvent(t, d, Connected)
	r.Close()
	waitEvent(t, d, Lost)
	if err := d.Send([]byte("x")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send while lost = %v (connected=%v, stats %+v)", err, d.Connected(), d.Stats())
	}
	r2, err := Listen(Config{}, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	waitEvent(t, d, Reconnected)
	if err := d.Send(testMsg("X", nil)...); err != nil {
		t.Fatal(err)
	}
	m, err := r2.Recv(ctxT(t, 5*time.Second))
	if err != nil || !bytes.Equal(m.Peer, d.Identity()) {
		t.Fatalf("recv after redial: %v", err)
	}
	if d.Stats().Redials == 0 {
		t.Fatal("redial not counted")
	}
}

func TestReconnectForced(t *testing.T) {
	r := mustRouter(t, Config{})
	d := mustDial(t, Config{}, r.Endpoint())
	waitEvent(t, d, Connected)
	d.Reconnect()
	waitEvent(t, d, Lost)
	waitEvent(t, d, Reconnected)
}

// rawZMTP connects with a plain TCP socket and sends a NULL greeting + READY so
// the test can then write hand-made frames.
func rawZMTP(t *testing.T, ep string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 0
	copy(g[12:], "NULL")
	body := []byte{5}
	body = append(body, "READY"...)
	prop := func(k, v string) {
		body = append(body, byte(len(k)))
		body = append(body, k...)
		body = binary.BigEndian.AppendUint32(body, uint32(len(v)))
		body = append(body, v...)
	}
	prop("Socket-Type", "DEALER")
	prop("Identity", "rawpeer")
	c.Write(g)
	c.Write(append([]byte{0x04, byte(len(body))}, body...))
	return c
}

func TestOversizedFrameDropsConnectionNotProcess(t *testing.T) {
	r := mustRouter(t, Config{MaxFrame: 1024})
	c := rawZMTP(t, r.Endpoint())
	// A long frame announcing 2^60 bytes: zmq4 alone would try to allocate it.
	hdr := []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(hdr[1:], 1<<60)
	c.Write(hdr)
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().Oversized == 0 {
		if time.Now().After(deadline) {
			t.Fatal("oversized frame not counted")
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, not waiting for an event
	}
	// The router still serves others.
	d := mustDial(t, Config{}, r.Endpoint())
	d.Send(testMsg("X", nil)...)
	if _, err := r.Recv(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestSilentClientDoesNotBlockAccept(t *testing.T) {
	r := mustRouter(t, Config{HandshakeTimeout: 300 * time.Millisecond})
	silent, err := net.Dial("tcp", strings.TrimPrefix(r.Endpoint(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	d := mustDial(t, Config{}, r.Endpoint())
	d.Send(testMsg("X", nil)...)
	if _, err := r.Recv(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The silent one is dropped after the handshake deadline.
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		// zmq4 never writes before reading the signature, so any read success is wrong
		t.Fatal("silent client got data")
	}
	// The connection is closed before the failure is counted: poll the counter.
	deadline := time.Now().Add(10 * time.Second)
	for r.Stats().HandshakeFailures == 0 {
		if time.Now().After(deadline) {
			t.Fatal("handshake failure not counted")
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, not waiting for an event
	}
}

func TestStuckPeerDoesNotStallOthers(t *testing.T) {
	r := mustRouter(t, Config{SendTimeout: 500 * time.Millisecond, PeerQueue: 64})
	stuck := rawZMTP(t, r.Endpoint()) // never reads
	_ = stuck
	d := mustDial(t, Config{}, r.Endpoint())
	d.Send(testMsg("HELLO", nil)...)
	// Learn both identities.
	seen := map[string]bool{}
	for len(seen) < 1 {
		m, err := r.Recv(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		seen[string(m.Peer)] = true
	}
	big := make([]byte, 512<<10)
	for range 64 {
		_ = r.Send([]byte("rawpeer"), big) // fills kernel buffers, then times out
	}
	for i := range 20 {
		if err := r.Send(d.Identity(), testMsg("N", []byte{byte(i)})...); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t, 20*time.Second)
	for range 20 {
		if _, err := d.Recv(ctx); err != nil {
			t.Fatalf("healthy peer starved: %v", err)
		}
	}
}

func TestRouterQueueFull(t *testing.T) {
	r := mustRouter(t, Config{PeerQueue: 1})
	var full bool
	for range 1000 {
		if err := r.Send([]byte("nobody"), []byte("x")); errors.Is(err, ErrQueueFull) {
			full = true
			break
		}
	}
	if !full || r.Stats().QueueFull == 0 {
		t.Fatal("queue never full")
	}
	if err := r.Send([]byte("p"), make([]byte, 8<<20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func TestClosedSockets(t *testing.T) {
	r, _ := Listen(Config{}, "tcp://127.0.0.1:0")
	d, _ := NewDealer(Config{}, r.Endpoint())
	r.Close()
	r.Close()
	d.Close()
	d.Close()
	if err := r.Send([]byte("p"), nil); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := r.Recv(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := d.Send(nil); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	var nr *Router
	var nd *Dealer
	nr.Close()
	nd.Close()
}

func TestPubSub(t *testing.T) {
	p, err := ListenPub(Config{}, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := NewSub(Config{}, p.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitConnected(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Slow joiner: resend until one arrives.
	ctx := ctxT(t, 10*time.Second)
	for {
		p.Send([][]byte{[]byte("hi")}...)
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		m, err := s.Recv(rctx)
		cancel()
		if err == nil {
			if len(m) != 1 || string(m[0]) != "hi" {
				t.Fatalf("got %q", m)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatal("nothing received")
		}
	}
}

func FuzzGuard(f *testing.F) {
	f.Add([]byte{0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F})
	f.Fuzz(func(t *testing.T, b []byte) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		g := newGuard(c1, &Config{MaxFrame: 100, MaxMessage: 200, MaxFrames: 4}, &counters{})
		full := append(append([]byte{0xFF}, make([]byte, 8)...), 0x7F)
		full = append(full, make([]byte, 54)...)
		_ = g.feed(full)
		_ = g.feed(b)
	})
}
