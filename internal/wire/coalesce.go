package wire

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/pylabhub/plh/internal/wire/admit"
)

// coalescer gathers zmq4's writes of one message into one network write.
//
// zmq4 writes every frame as two Writes (header, body), and net.Buffers cannot
// use writev through a wrapped net.Conn, so a 3-frame control message costs six
// write syscalls (and six CURVE boxes) where a bare TCP socket costs one. The
// coalescer parses the outbound ZMTP stream (greeting, then frame headers and
// bodies) and holds bytes only while the stream is inside a message: when a
// command frame or the last frame of a message (MORE clear) ends, everything held
// goes out in one write. So nothing a peer waits for is ever held back, and the
// bytes on the wire are exactly zmq4's. Bodies over coalesceMax are written
// directly after what is held (no copy).
type coalescer struct {
	mu       sync.Mutex // guards everything below (zmq4 serialises writes per connection anyway)
	greeting int        // greeting bytes still to pass (written through)
	stage    int        // 0 flags, 1 size, 2 body
	flags    byte
	size     [8]byte
	have     int // size bytes seen
	need     int // size bytes needed (1 or 8)
	left     uint64
	final    bool // the stream is at a message boundary
	command  bool // a command (zmq4's READY) has passed
	held     []byte
	bufs     net.Buffers // reused by writeMsgs
}

// coalesceMax bounds the bytes held (larger writes are not copied).
const coalesceMax = 16 << 10

func newCoalescer() coalescer { return coalescer{greeting: greetingLen, final: true} }

// feed advances the parser over p; afterwards c.final says whether the stream is
// at a message boundary.
func (c *coalescer) feed(p []byte) {
	for len(p) > 0 {
		switch c.stage {
		case 0:
			c.flags = p[0]
			p = p[1:]
			c.have, c.need = 0, 1
			if c.flags&flagLong != 0 {
				c.need = 8
			}
			c.stage, c.final = 1, false
		case 1:
			k := copy(c.size[c.have:c.need], p)
			c.have += k
			p = p[k:]
			if c.have < c.need {
				continue
			}
			c.left = frameSize(c.need, &c.size)
			c.stage = 2
			if c.left == 0 {
				c.endFrame()
			}
		case 2:
			k := min(uint64(len(p)), c.left)
			c.left -= k
			p = p[k:]
			if c.left == 0 {
				c.endFrame()
			}
		}
	}
}

// frameSize decodes a ZMTP frame size of need (1 or 8) bytes.
func frameSize(need int, b *[8]byte) uint64 {
	if need == 1 {
		return uint64(b[0])
	}
	return binary.BigEndian.Uint64(b[:])
}

func (c *coalescer) endFrame() {
	c.stage = 0
	c.final = c.flags&flagCommand != 0 || c.flags&flagMore == 0
	c.command = c.command || c.flags&flagCommand != 0
}

// coalescedWrite sends p through the connection, holding it while the stream is
// inside a message.
func (g *guard) coalescedWrite(p []byte) (int, error) {
	c := &g.out
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.greeting > 0 { // greeting bytes are written through (the handshake waits on them)
		k := min(c.greeting, len(p))
		c.greeting -= k
		n, err := k, error(nil)
		if !g.ownGreeting {
			n, err = g.rawWrite(p[:k])
		}
		if err != nil || k == len(p) {
			return n, err
		}
		m, err := g.coalesceLocked(p[k:])
		g.markDirect()
		return n + m, err
	}
	n, err := g.coalesceLocked(p)
	g.markDirect()
	return n, err
}

// markDirect notes (under out.mu) that zmq4's handshake has gone out: from now
// on zmq4 writes nothing on its own on an accepted connection, so a Router may
// write its messages directly (writeMsgs).
func (g *guard) markDirect() {
	if g.out.command && g.out.final && len(g.out.held) == 0 && !g.direct.Load() {
		g.direct.Store(true)
	}
}

// inlineMax: frames up to this size are copied next to their headers; larger
// ones go out from the caller's memory (writev) where the connection allows.
const inlineMax = 2 << 10

// writeMsgs frames msgs (each a Router's message: its first frame, the routing
// identity, is left out) as ZMTP and writes them in one network write: writev
// over TCP and ipc, one WriteBuffers through a wrapping connection that takes
// buffers (CURVE's, which seals them and writes once), else one copied buffer.
// Frames over inlineMax go out from the caller's memory where the connection
// takes buffers. The caller is the connection's only writer
// (Router.sendLoop, after markDirect). A failed or partial write drops the
// connection, as rawWrite does.
func (g *guard) writeMsgs(msgs []outMsg) error {
	c := &g.out
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.final || len(c.held) != 0 {
		return errNotDirect
	}
	vec, bw := g.vectorConn(), BuffersWriter(nil)
	if vec == nil {
		bw, _ = g.Conn.(BuffersWriter)
	}
	byRef := vec != nil || bw != nil
	need := 0
	for _, m := range msgs {
		for _, f := range m.frames[1:] {
			need += 9
			if !byRef || len(f) <= inlineMax {
				need += len(f)
			}
		}
	}
	if cap(c.held) < need {
		c.held = make([]byte, 0, need)
	}
	buf, start := c.held[:0], 0
	bufs := c.bufs[:0]
	for _, m := range msgs {
		frames := m.frames[1:]
		for i, f := range frames {
			buf = appendHeader(buf, f, i < len(frames)-1)
			if !byRef || len(f) <= inlineMax {
				buf = append(buf, f...)
				continue
			}
			bufs = append(bufs, buf[start:], f)
			start = len(buf)
		}
	}
	if start < len(buf) {
		bufs = append(bufs, buf[start:])
	}
	c.bufs = bufs[:0]
	_ = g.Conn.SetWriteDeadline(time.Now().Add(g.cfg.SendTimeout))
	var err error
	switch {
	case len(bufs) == 1:
		_, err = g.Conn.Write(bufs[0])
	case vec != nil:
		_, err = bufs.WriteTo(vec)
	default:
		err = bw.WriteBuffers(bufs)
	}
	clear(c.bufs[:cap(c.bufs)]) // drop references to the callers' frames
	if err != nil {
		g.st.sendErrors.Add(1)
		g.Close() // a partial write corrupts the stream: drop the connection
	}
	return err
}

// BuffersWriter is implemented by a Security's connection that takes several
// buffers of the outbound stream in one call (and writes them to the network
// at once), so a Router's batch reaches it without being copied together first.
type BuffersWriter interface {
	WriteBuffers(bufs [][]byte) error
}

// vectorConn returns the socket under the guard when writev can reach it (TCP
// or unix, also under the listener's accept-time wrapper), else nil.
func (g *guard) vectorConn() net.Conn {
	c := g.Conn
	if a, ok := c.(*admit.Conn); ok {
		c = a.Conn
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return c
	}
	return nil
}

// appendHeader appends the ZMTP header of message frame f.
func appendHeader(b, f []byte, more bool) []byte {
	var fl byte
	if more {
		fl = flagMore
	}
	if len(f) > 255 {
		b = append(b, fl|flagLong)
		return binary.BigEndian.AppendUint64(b, uint64(len(f)))
	}
	return append(b, fl, byte(len(f)))
}

func (g *guard) coalesceLocked(p []byte) (int, error) {
	c := &g.out
	c.feed(p)
	if !c.final && len(p) <= coalesceMax && len(c.held)+len(p) <= coalesceMax {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(c.held) == 0 {
		return g.rawWrite(p)
	}
	if len(p) <= coalesceMax { // one Write (also through a wrapping conn such as CURVE's)
		c.held = append(c.held, p...)
		_, err := g.rawWrite(c.held)
		c.held = c.held[:0]
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	_ = g.Conn.SetWriteDeadline(time.Now().Add(g.cfg.SendTimeout))
	bufs := net.Buffers{c.held, p}
	var err error
	if v := g.vectorConn(); v != nil { // writev
		_, err = bufs.WriteTo(v)
	} else {
		_, err = bufs.WriteTo(g.Conn)
	}
	c.held = c.held[:0]
	if err != nil {
		g.st.sendErrors.Add(1)
		g.Close() // a partial write corrupts the stream: drop the connection
		return 0, err
	}
	return len(p), nil
}

func (g *guard) rawWrite(p []byte) (int, error) {
	_ = g.Conn.SetWriteDeadline(time.Now().Add(g.cfg.SendTimeout))
	n, err := g.Conn.Write(p)
	if err != nil {
		g.st.sendErrors.Add(1)
		g.Close() // a partial write corrupts the stream: drop the connection
	}
	return n, err
}
