package wire

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// counters are the statistics of one socket; guards of its connections share them.
type counters struct {
	accepted, dialed, handshakeFailures, violations atomic.Uint64
	received, sent, queueFull, sendErrors, redials  atomic.Uint64
	oversized, dropped, recvErrors                  atomic.Uint64
	direct                                          atomic.Uint64 // of received: delivered by a guard itself (deliver.go)
}

// Stats is a snapshot of one socket's counters.
type Stats struct {
	Accepted          uint64 // connections accepted (Router, Pub)
	Dialed            uint64 // connections dialled (Dealer, Sub), first and redials
	HandshakeFailures uint64 // connections dropped during handshake (silent, bad greeting, security)
	Violations        uint64 // connections dropped because the peer broke a limit
	Oversized         uint64 // of Violations: frames or messages over MaxFrame/MaxMessage/MaxFrames
	Received          uint64 // messages delivered to Recv
	Sent              uint64 // messages handed to zmq4 successfully
	QueueFull         uint64 // messages refused because a bounded queue was full
	SendErrors        uint64 // zmq4 sends or network writes that failed
	Redials           uint64 // Dealer/Sub reconnect attempts after a loss
	Dropped           uint64 // messages received from the network but never delivered to Recv (no frames, or still in flight at Close)
	RecvErrors        uint64 // zmq4 receive errors on a listening socket (a peer's connection failed mid-read)
}

func (c *counters) snapshot() Stats {
	return Stats{
		Accepted: c.accepted.Load(), Dialed: c.dialed.Load(),
		HandshakeFailures: c.handshakeFailures.Load(), Violations: c.violations.Load(),
		Oversized: c.oversized.Load(), Received: c.received.Load(), Sent: c.sent.Load(),
		QueueFull: c.queueFull.Load(), SendErrors: c.sendErrors.Load(), Redials: c.redials.Load(),
		Dropped: c.dropped.Load(), RecvErrors: c.recvErrors.Load(),
	}
}

// ZMTP constants the guard needs.
const (
	greetingLen   = 64
	flagMore      = 0x01
	flagLong      = 0x02
	flagCommand   = 0x04
	sigFirstByte  = 0xFF
	sigLastByte   = 0x7F
	sigLastOffset = 9
)

// guard wraps every connection zmq4 uses. Its Read side parses the inbound ZMTP
// stream (greeting, then frame headers) without copying, and kills the connection
// before zmq4 allocates a frame larger than the limits; it clears the handshake
// read deadline once the peer's first command (READY) has been read. Its Write
// side puts SendTimeout on every write, so a peer that stops reading cannot block
// zmq4's writer (and with it every other peer of a ROUTER) for longer than that.
//
// Read is only called by one goroutine at a time (zmq4's handshake, then its
// reader), so the parser state needs no lock.
type guard struct {
	net.Conn
	cfg *Config
	st  *counters

	prefix      []byte // bytes pre-read by the listener, replayed first
	ownGreeting bool   // the listener already sent our greeting: zmq4's is dropped

	// parser state (reader goroutine only)
	pos       int // bytes of the greeting seen
	stage     int // 0 greeting, 1 flags, 2 size, 3 body
	flags     byte
	size      [8]byte
	sizeHave  int
	sizeNeed  int
	bodyLeft  uint64
	msgBytes  uint64
	msgFrames int
	handshook bool

	abuf  []byte // read-ahead storage (allocated once the handshake is done)
	ahead []byte // bytes read from the network, checked, not yet handed to zmq4

	// direct delivery (deliver.go): set on dialled Dealer connections
	sink     deliverFunc
	alloc    func(n int) []byte // storage of large frame bodies (nil: make)
	asm      assembler
	fed      uint64 // stream bytes through the limits parser
	readyEnd uint64 // stream offset just after the peer's READY
	given    uint64 // stream bytes handed to zmq4

	out    coalescer   // write side: one network write per message (coalesce.go)
	direct atomic.Bool // zmq4's handshake has gone out: Router writes directly (writeMsgs)

	closeOnce sync.Once
	onClose   func() // set before the guard is shared; called once by Close
}

func newGuard(c net.Conn, cfg *Config, st *counters) *guard {
	return &guard{Conn: c, cfg: cfg, st: st, out: newCoalescer()}
}

// readBuffer is the size of a guard's read-ahead buffer once the handshake is
// done: zmq4 reads every frame as a 2-byte header and then its body, so without
// it a 4 KiB message costs four read syscalls; with it a read takes whatever
// the socket holds (many messages when the peer streams).
const readBuffer = 64 << 10

func (g *guard) Read(p []byte) (int, error) {
	if g.directReady() {
		return g.readDirect()
	}
	n, err := g.readZMQ(p)
	g.given += uint64(n)
	return n, err
}

// readZMQ hands zmq4 the next bytes of the stream.
func (g *guard) readZMQ(p []byte) (int, error) {
	if len(g.prefix) > 0 {
		n := copy(p, g.prefix)
		g.prefix = g.prefix[n:]
		return n, nil
	}
	if len(g.ahead) > 0 {
		n := copy(p, g.ahead)
		g.ahead = g.ahead[n:]
		return n, nil
	}
	if !g.handshook || len(p) >= readBuffer { // unbuffered until READY: a silent peer costs no buffer
		return g.readChecked(p)
	}
	if g.abuf == nil {
		g.abuf = make([]byte, readBuffer)
	}
	n, err := g.readChecked(g.abuf)
	k := copy(p, g.abuf[:n])
	g.ahead = g.abuf[k:n]
	if k > 0 {
		err = nil // the error comes again at the next read of the network
	}
	return k, err
}

// readChecked reads from the network into p and runs the limits parser over
// what arrived, so a violation is found before zmq4 sees the bytes.
func (g *guard) readChecked(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 {
		if v := g.feed(p[:n]); v != nil {
			g.Close()
			return 0, v
		}
	}
	if err != nil && !g.handshook {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			g.Close()
			return n, &violation{"handshake not completed within " + g.cfg.HandshakeTimeout.String()}
		}
	}
	return n, err
}

func (g *guard) Write(p []byte) (int, error) { return g.coalescedWrite(p) }

func (g *guard) Close() error {
	var err error
	g.closeOnce.Do(func() {
		err = g.Conn.Close()
		if g.onClose != nil {
			g.onClose()
		}
	})
	return err
}

// feed advances the parser over b and returns a violation if the peer broke a limit.
func (g *guard) feed(b []byte) error {
	base, total := g.fed, len(b)
	g.fed += uint64(total)
	for len(b) > 0 {
		switch g.stage {
		case 0: // greeting: check the signature bytes, skip the rest
			for len(b) > 0 && g.pos < greetingLen {
				switch g.pos {
				case 0:
					if b[0] != sigFirstByte {
						return &violation{"not a ZMTP greeting"}
					}
				case sigLastOffset:
					if b[0] != sigLastByte {
						return &violation{"not a ZMTP greeting"}
					}
				}
				g.pos++
				b = b[1:]
			}
			if g.pos == greetingLen {
				g.stage = 1
			}
		case 1:
			g.flags = b[0]
			b = b[1:]
			if g.flags&^(flagMore|flagLong|flagCommand) != 0 {
				g.st.violations.Add(1)
				return &violation{"reserved frame flag bits set"}
			}
			g.sizeHave = 0
			g.sizeNeed = 1
			if g.flags&flagLong != 0 {
				g.sizeNeed = 8
			}
			g.stage = 2
		case 2:
			for len(b) > 0 && g.sizeHave < g.sizeNeed {
				g.size[g.sizeHave] = b[0]
				g.sizeHave++
				b = b[1:]
			}
			if g.sizeHave < g.sizeNeed {
				continue
			}
			size := frameSize(g.sizeNeed, &g.size)
			if v := g.checkFrame(size); v != nil {
				return v
			}
			g.bodyLeft = size
			g.stage = 3
			if size == 0 {
				g.endFrame(base + uint64(total-len(b)))
			}
		case 3:
			k := min(uint64(len(b)), g.bodyLeft)
			g.bodyLeft -= k
			b = b[k:]
			if g.bodyLeft == 0 {
				g.endFrame(base + uint64(total-len(b)))
			}
		}
	}
	return nil
}

func (g *guard) checkFrame(size uint64) error {
	if g.flags&flagCommand != 0 {
		if size > uint64(g.cfg.MaxFrame) {
			g.st.violations.Add(1)
			g.st.oversized.Add(1)
			return &violation{"command frame too large"}
		}
		return nil
	}
	g.msgFrames++
	g.msgBytes += size
	switch {
	case size > uint64(g.cfg.MaxFrame):
		g.st.violations.Add(1)
		g.st.oversized.Add(1)
		return &violation{"frame larger than MaxFrame"}
	case g.msgBytes > uint64(g.cfg.MaxMessage):
		g.st.violations.Add(1)
		g.st.oversized.Add(1)
		return &violation{"message larger than MaxMessage"}
	case g.msgFrames > g.cfg.MaxFrames:
		g.st.violations.Add(1)
		g.st.oversized.Add(1)
		return &violation{"message with more than MaxFrames frames"}
	}
	return nil
}

// endFrame ends the frame that ends at stream offset at.
func (g *guard) endFrame(at uint64) {
	g.stage = 1
	if g.flags&flagCommand != 0 {
		if !g.handshook {
			g.handshook, g.readyEnd = true, at
			_ = g.Conn.SetReadDeadline(time.Time{})
		}
		return
	}
	if g.flags&flagMore == 0 {
		g.msgBytes, g.msgFrames = 0, 0
	}
}
