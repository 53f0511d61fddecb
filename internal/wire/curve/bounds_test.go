package curve

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionsDoNotLockOut: more silent connections than MaxHandshakes
// must not keep a real client out (the cap once closed every new connection).
func TestIdleConnectionsDoNotLockOut(t *testing.T) {
	srv := mustKeys(t)
	addr := startRouter(t, ServerConfig{Keys: srv, MaxHandshakes: 64})
	for range 100 {
		c, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	d, err := dialDealer(t, addr, ClientConfig{ServerKey: srv.Public})
	if err != nil {
		t.Fatalf("client locked out by idle connections: %v", err)
	}
	echoOnce(t, d)
}

// TestNoServerKeyBeforeHello: the server makes its transient key pair only
// for WELCOME, after HELLO proved the client knows the server key.
func TestNoServerKeyBeforeHello(t *testing.T) {
	s, err := newSession(true, mustKeys(t), PublicKey{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.tSec != [32]byte{} || s.tPub != [32]byte{} {
		t.Fatal("server session made a transient key before HELLO")
	}
}

// TestHandshakeFrameGrowsWithData: a frame header claiming 60,000 bytes
// followed by 16 does not allocate 60,000 bytes.
func TestHandshakeFrameGrowsWithData(t *testing.T) {
	hdr := binary.BigEndian.AppendUint64([]byte{flagCommand | flagLong}, 60000)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(make([]byte, 16))), handshakeBuffer)
	_, buf, err := readFrame(r, nil, maxHandshakeFrame)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	if cap(buf) > 4<<10 {
		t.Fatalf("allocated %d bytes for 16 received", cap(buf))
	}
}

// TestFailureWarningsRateLimited: a burst of failed handshakes gives one Warn
// line (the rest at Debug), not one each.
func TestFailureWarningsRateLimited(t *testing.T) {
	var lb logBuf
	addr := startRouter(t, ServerConfig{Keys: mustKeys(t), Logger: lb.logger(), HandshakeTimeout: 5 * time.Second})
	const n = 30
	for range n {
		c, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // not ZMTP
		c.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(lb.String(), "handshake failed") < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d failures logged", strings.Count(lb.String(), "handshake failed"))
		}
		time.Sleep(10 * time.Millisecond) // polling the log, not waiting for time
	}
	if w := strings.Count(lb.String(), "level=WARN"); w > 2 {
		t.Fatalf("%d Warn lines for %d failures in a burst", w, n)
	}
}
