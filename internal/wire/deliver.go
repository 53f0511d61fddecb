package wire

import "errors"

// Direct delivery on a dialled connection (Dealer, Sub).
//
// zmq4 reads a message frame by frame (a header read, then a body allocated and
// read), queues it on its own channel, and our reader goroutine moves it to the
// socket's receive queue: per message a handful of allocations and two
// goroutine hand-offs. Once zmq4's handshake on a dialled connection is over,
// zmq4's reader only ever calls Read to get the next message, so the guard
// serves that call itself: it reads the network, assembles whole messages
// (every byte has passed the limits parser first) and hands each to the
// socket's receive queue (sink), returning to zmq4 only with the connection's
// error, which zmq4 then reports as the loss of the peer as before.

// errStopped is what Read returns to zmq4 when the socket closed while a message
// was being delivered.
var errStopped = errors.New("wire: socket closed during delivery")

// smallFrame: frames up to this size share one slab allocation; larger bodies
// come from the socket's allocator (Dealer.SetAlloc) or make.
const (
	smallFrame = 64
	slabSize   = 4 << 10
)

// assembler cuts the checked inbound stream into messages. Reader goroutine only.
type assembler struct {
	alloc  func(n int) []byte // storage of bodies over smallFrame (nil: make)
	stage  int                // 0 flags, 1 size, 2 body
	flags  byte
	size   [8]byte
	have   int
	need   int
	body   []byte // frame being filled
	fill   int
	frames [][]byte
	slab   []byte // storage for small frames
	big    bool   // the message being assembled has a body of directMin or more
	// lastBig: so had the last message delivered; the next read asks for
	// little more than the next headers (headAhead), so its body too comes
	// from the network straight into its storage instead of through abuf.
	lastBig bool
}

// headAhead bounds a read into the read-ahead buffer after a message with a
// large body: enough for the next message's small frames and headers.
const headAhead = 512

// deliverFunc hands one whole message on; reuse reports that the receiver kept
// only the frame bodies, so the frame list may hold the next message.
type deliverFunc func(frames [][]byte) (reuse bool, err error)

// push consumes b (already fed through the limits parser) and calls deliver
// for every complete message. Command frames (a peer's PING) are dropped, as
// zmq4's reader would not hand them to the socket either.
func (a *assembler) push(b []byte, deliver deliverFunc) error {
	for len(b) > 0 {
		switch a.stage {
		case 0:
			a.flags, b = b[0], b[1:]
			a.have, a.need = 0, 1
			if a.flags&flagLong != 0 {
				a.need = 8
			}
			a.stage = 1
		case 1:
			k := copy(a.size[a.have:a.need], b)
			a.have, b = a.have+k, b[k:]
			if a.have < a.need {
				continue
			}
			a.startBody(int(frameSize(a.need, &a.size)))
			if len(a.body) == 0 {
				if err := a.endFrame(deliver); err != nil {
					return err
				}
			}
		case 2:
			k := copy(a.body[a.fill:], b)
			a.fill, b = a.fill+k, b[k:]
			if a.fill == len(a.body) {
				if err := a.endFrame(deliver); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// startBody makes room for a frame body of n bytes (n is within MaxFrame: the
// limits parser has seen the header).
func (a *assembler) startBody(n int) {
	a.stage, a.fill = 2, 0
	if n >= directMin {
		a.big = true
	}
	if n > smallFrame {
		if a.alloc != nil {
			a.body = a.alloc(n)
		} else {
			a.body = make([]byte, n)
		}
		return
	}
	if len(a.slab) < n {
		a.slab = make([]byte, slabSize)
	}
	a.body, a.slab = a.slab[:n:n], a.slab[n:]
}

func (a *assembler) endFrame(deliver deliverFunc) error {
	a.stage = 0
	body := a.body
	a.body = nil
	if a.flags&flagCommand != 0 {
		return nil
	}
	a.frames = append(a.frames, body)
	if a.flags&flagMore != 0 {
		return nil
	}
	msg := a.frames
	a.lastBig, a.big = a.big, false
	reuse, err := deliver(msg)
	if reuse {
		clear(msg)
		a.frames = msg[:0]
	} else {
		a.frames = make([][]byte, 0, len(msg))
	}
	return err
}

// readDirect is Read once the guard delivers messages itself: it returns only
// with an error (the connection's, a limit violation, or errStopped).
func (g *guard) readDirect() (int, error) {
	if g.abuf == nil {
		g.abuf = make([]byte, readBuffer)
	}
	g.asm.alloc = g.alloc
	if len(g.ahead) > 0 {
		b := g.ahead
		g.ahead = nil
		if err := g.asm.push(b, g.sink); err != nil {
			return 0, err
		}
	}
	for {
		if room := g.asm.room(); room != nil { // the rest of a large frame: no copy through abuf
			n, err := g.readChecked(room)
			if n > 0 {
				if derr := g.asm.filled(n, g.sink); derr != nil {
					return 0, derr
				}
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		buf := g.abuf
		if g.asm.lastBig {
			buf = buf[:headAhead]
		}
		n, err := g.readChecked(buf)
		if n > 0 {
			if derr := g.asm.push(buf[:n], g.sink); derr != nil {
				return 0, derr
			}
		}
		if err != nil {
			return 0, err
		}
	}
}

// directMin: when at least this much of a frame body is still to come, the
// guard reads it from the network straight into the body.
const directMin = 8 << 10

// room returns the unfilled rest of the frame body being assembled when it is
// at least directMin bytes, else nil.
func (a *assembler) room() []byte {
	if a.stage != 2 || len(a.body)-a.fill < directMin {
		return nil
	}
	return a.body[a.fill:]
}

// filled records n bytes read into room() (already through the limits parser)
// and delivers the message if they completed it.
func (a *assembler) filled(n int, deliver deliverFunc) error {
	a.fill += n
	if a.fill < len(a.body) {
		return nil
	}
	return a.endFrame(deliver)
}

// directReady reports whether zmq4 has read everything up to the end of the
// peer's READY (so its handshake is done and the next Read is its reader's).
func (g *guard) directReady() bool {
	return g.sink != nil && g.handshook && g.given == g.readyEnd
}
