package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// openFDs counts the descriptors of this process.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// eventually polls cond (a counter, not a timer) until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// greeting returns a 64-byte ZMTP greeting with the given version and mechanism.
func greeting(major, minor byte, mech string) []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, major, minor
	copy(g[12:32], mech)
	return g
}

// roundTrip sends one request from a fresh Dealer and waits for the Router's
// echo; it returns how long that took.
func roundTrip(t *testing.T, r *Router, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx := ctxT(t, timeout) // the request timeout covers dial, request and reply
	d, err := Dial(ctx, Config{}, r.Endpoint())
	if err != nil {
		t.Fatalf("dial not done within %v: %v", timeout, err)
	}
	defer d.Close()
	if err := d.Send(testMsg("PING", nil)...); err != nil {
		t.Fatal(err)
	}
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatalf("request not received within %v: %v", timeout, err)
	}
	if err := r.Send(m.Peer, m.Frames...); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Recv(ctx); err != nil {
		t.Fatalf("reply not received within %v: %v", timeout, err)
	}
	return time.Since(start)
}

// TestFailedHandshakesCloseTheirDescriptors: connections that send a ZMTP
// signature, a PLAIN greeting or a version 2.0 greeting and close must not
// leave a descriptor behind (zmq4 does not close a connection whose handshake
// it failed).
func TestFailedHandshakesCloseTheirDescriptors(t *testing.T) {
	r := mustRouter(t, Config{})
	base := openFDs(t)
	addr := strings.TrimPrefix(r.Endpoint(), "tcp://")
	sends := [][]byte{
		greeting(3, 0, "NULL")[:10], // signature only
		greeting(3, 0, "PLAIN"),     // another mechanism
		greeting(2, 0, "NULL"),      // an old version
		append(greeting(3, 0, "NULL"), 0x04, 6, 5, 'H', 'E', 'L', 'L', 'O'), // not READY
	}
	const n = 200
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(sends[i%len(sends)]); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	eventually(t, 20*time.Second, "descriptors back to the baseline", func() bool { return openFDs(t) <= base+2 })
	eventually(t, 20*time.Second, "failed handshakes counted", func() bool { return r.Stats().HandshakeFailures >= n })
	roundTrip(t, r, 5*time.Second)
}

// TestHalfOpenConnectionsDoNotDelayNewClients: 500 connections that stop in
// the middle of their greeting (or send nothing) must not delay a new client:
// its request is answered within its request timeout (the latency is logged).
func TestHalfOpenConnectionsDoNotDelayNewClients(t *testing.T) {
	r := mustRouter(t, Config{})
	addr := strings.TrimPrefix(r.Endpoint(), "tcp://")
	const n = 500
	var mu sync.Mutex
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		switch i % 3 {
		case 0: // the signature only
			_, err = c.Write(greeting(3, 0, "NULL")[:10])
		case 1: // the whole greeting, no READY
			_, err = c.Write(greeting(3, 0, "NULL"))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	const timeout = 3 * time.Second
	var worst time.Duration
	for range 5 {
		worst = max(worst, roundTrip(t, r, timeout))
	}
	t.Logf("with %d half-open connections: new client's first round trip (dial included) took at most %v", n, worst)
}

// TestLibzmqNullClient: libzmq sends its greeting in steps (signature, then the
// rest once ours arrived); the listener's own handshake must serve it.
func TestLibzmqNullClient(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import zmq").Run(); err != nil {
		t.Skipf("python3-zmq not available: %v", err)
	}
	r := mustRouter(t, Config{})
	go func() {
		for {
			m, err := r.Recv(context.Background())
			if err != nil {
				return
			}
			_ = r.Send(m.Peer, m.Frames...)
		}
	}()
	script := `import sys, zmq
s = zmq.Context().socket(zmq.DEALER); s.linger = 0; s.rcvtimeo = 5000
s.connect(sys.argv[1])
for i in range(3):
    s.send_multipart([b"req", b"%d" % i])
    assert s.recv_multipart() == [b"req", b"%d" % i]
print("ok")`
	out, err := exec.Command(python, "-c", script, r.Endpoint()).CombinedOutput()
	if err != nil {
		t.Fatalf("pyzmq NULL client: %v: %s", err, out)
	}
}

// TestFailedDialHandshakesCloseTheirDescriptors: a Dealer redialling a server
// whose handshake fails (here: it announces PLAIN) must close each failed
// connection; zmq4's Dial leaves it open.
func TestFailedDialHandshakesCloseTheirDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(greeting(3, 0, "PLAIN"))
			c.Close()
		}
	})
	defer func() { ln.Close(); wg.Wait() }()
	base := openFDs(t)
	d, err := NewDealer(Config{RedialMin: time.Millisecond, RedialMax: 5 * time.Millisecond}, "tcp://"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fails := 0
	for fails < 30 {
		select {
		case e := <-d.Events():
			if e.Kind == DialFailed {
				fails++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d failed dials seen", fails)
		}
	}
	if n := openFDs(t); n > base+3 {
		t.Fatalf("%d descriptors open after %d failed dials, %d before", n, fails, base)
	}
	if got := d.Stats().HandshakeFailures; got < uint64(fails) {
		t.Fatalf("HandshakeFailures = %d after %d failed dial handshakes", got, fails)
	}
}

// TestBadReadyRefused: each malformed READY is refused by the listener itself
// (connection closed, counted), never handed to zmq4, whose parser trusts it.
func TestBadReadyRefused(t *testing.T) {
	prop := func(k, v string) []byte {
		b := append([]byte{byte(len(k))}, k...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		return append(b, v...)
	}
	ready := func(meta ...[]byte) []byte { return append([]byte("\x05READY"), bytes.Join(meta, nil)...) }
	frame := func(flags byte, body []byte) []byte {
		if len(body) > 255 {
			return append(binary.BigEndian.AppendUint64([]byte{flags | 0x02}, uint64(len(body))), body...)
		}
		return append([]byte{flags, byte(len(body))}, body...)
	}
	cases := map[string][]byte{
		"socket type PUB":       frame(0x04, ready(prop("Socket-Type", "PUB"))),
		"unknown socket type":   frame(0x04, ready(prop("Socket-Type", "FOO"))), // zmq4 panics on it
		"no socket type":        frame(0x04, ready(prop("Identity", "x"))),
		"truncated property":    frame(0x04, append(ready(), 11, 'S', 'o')),
		"value past the end":    frame(0x04, append(ready(), append([]byte{1, 'X'}, 0, 0, 0x10, 0)...)),
		"zero-length name":      frame(0x04, append(ready(), 0, 0, 0, 0, 0)),
		"READY with MORE":       frame(0x05, ready(prop("Socket-Type", "DEALER"))),
		"a message, not READY":  frame(0x00, []byte("hello")),
		"READY over the limit":  binary.BigEndian.AppendUint64([]byte{0x06}, 1<<20),
		"READY larger than 255": frame(0x04, ready(prop("Socket-Type", "DEALER"), prop("X", strings.Repeat("x", 300)), prop("Socket-Type", "PUSH"))),
	}
	r := mustRouter(t, Config{})
	addr := strings.TrimPrefix(r.Endpoint(), "tcp://")
	n := uint64(0)
	for name, b := range cases {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append(greeting(3, 0, "NULL"), b...))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c) // our greeting, then EOF (or a reset: unread input)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection not closed by the listener", name)
		}
		c.Close()
		n++
		eventually(t, 10*time.Second, name+" counted", func() bool { return r.Stats().HandshakeFailures >= n })
	}
	if r.Stats().Accepted != 0 {
		t.Fatalf("a bad READY was handed to zmq4: %+v", r.Stats())
	}
	roundTrip(t, r, 5*time.Second)
}

// TestDialToServerWithUnknownSocketTypeFails: a server announcing a socket
// type zmq4 does not know (its IsCompatible panics) fails the dial instead of
// crashing the process.
func TestDialToServerWithUnknownSocketTypeFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("\x05READY\x0bSocket-Type")
	body = binary.BigEndian.AppendUint32(body, 3)
	body = append(body, "FOO"...)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(append(greeting(3, 0, "NULL"), append([]byte{0x04, byte(len(body))}, body...)...))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
			c.Close()
		}
	})
	defer func() { ln.Close(); wg.Wait() }()
	d, err := NewDealer(Config{}, "tcp://"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for {
		select {
		case e := <-d.Events():
			if e.Kind == DialFailed {
				if !errors.Is(e.Err, ErrHandshake) {
					t.Fatalf("dial failed with %v, want ErrHandshake", e.Err)
				}
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no DialFailed event")
		}
	}
}
