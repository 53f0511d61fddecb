package wire

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// countConn records each Write that reaches the network.
type countConn struct {
	net.Conn
	writes [][]byte
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}
func (c *countConn) SetWriteDeadline(time.Time) error { return nil }

// zmq4 writes each frame as header then body; the guard sends one message (or
// command) per network write, byte for byte, and holds nothing at a boundary.
func TestGuardCoalescesOneMessagePerWrite(t *testing.T) {
	cfg := Config{}.withDefaults()
	cc := &countConn{}
	g := newGuard(cc, &cfg, &counters{})
	var want [][]byte
	write := func(parts ...[]byte) {
		var all []byte
		for _, p := range parts {
			if _, err := g.Write(p); err != nil {
				t.Fatal(err)
			}
			all = append(all, p...)
		}
		want = append(want, all)
	}
	greeting := make([]byte, greetingLen)
	greeting[0], greeting[sigLastOffset] = sigFirstByte, sigLastByte
	write(greeting[:10])
	write(greeting[10:])
	write([]byte{flagCommand, 5}, []byte("READY"))                                   // a command goes out alone
	write([]byte{flagMore, 1}, []byte("C"), []byte{flagMore, 8}, []byte("DISC_REQ"), // 3 frames: one write
		[]byte{0, 2}, []byte("{}"))
	long := bytes.Repeat([]byte("x"), 300)
	hdr := []byte{flagLong, 0, 0, 0, 0, 0, 0, 1, 44}
	write([]byte{flagMore, 1}, []byte("A"), hdr, long) // long last frame
	write([]byte{0, 0})                                // empty single frame
	if len(cc.writes) != len(want) {
		t.Fatalf("%d network writes, want %d: %q", len(cc.writes), len(want), cc.writes)
	}
	for i := range want {
		if !bytes.Equal(cc.writes[i], want[i]) {
			t.Fatalf("write %d = %q, want %q", i, cc.writes[i], want[i])
		}
	}
	if len(g.out.held) != 0 {
		t.Fatalf("%d bytes held at a message boundary", len(g.out.held))
	}
}
