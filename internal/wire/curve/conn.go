package curve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Write-side stages: what the bytes zmq4 writes are expected to be.
const (
	wGreeting = iota // zmq4's 64-byte NULL greeting, swallowed
	wReady           // zmq4's NULL READY command: its metadata goes into INITIATE/READY
	wMessages        // ZMTP frames, each sealed into one MESSAGE
)

// conn is the net.Conn handed to zmq4. Below it speaks ZMTP-CURVE to the peer;
// above it speaks ZMTP-NULL to zmq4: it answers zmq4's NULL greeting and READY
// locally (with the peer's metadata from the CURVE handshake) and translates every
// frame both ways (MORE and COMMAND flags move into and out of the box).
//
// Locks: wmu guards the send side (zmq4's writer and our PONG replies), rmu the
// receive side (zmq4's single reader). Both may be held together only in the
// order rmu then wmu (a PING answered from Read).
type conn struct {
	raw      net.Conn
	br       *bufio.Reader
	sess     *session
	log      *slog.Logger
	maxMsg   int
	deadline bool // a handshake deadline is still set on raw

	wmu    sync.Mutex
	wstage int
	wacc   []byte        // partial greeting or frame header from zmq4
	wplain []byte        // flags byte + payload of the frame being assembled
	wneed  int           // payload bytes still expected for wplain
	wout   []byte        // sealed MESSAGEs not yet written (storage reused)
	werr   error         // sticky send error
	wdl    time.Time     // the owner's write deadline (SetWriteDeadline), kept on raw between writes
	wspan  time.Duration // how far ahead the owner last set it (0: no deadline)

	rmu     sync.Mutex
	rbuf    []byte // bytes ready for zmq4
	rstore  []byte // reused plaintext storage behind rbuf
	rframe  []byte // reused ciphertext frame
	rready  bool   // peer READY/INITIATE processed (handshake complete on read side)
	rerr    error  // sticky receive error
	dropped sync.Once
}

func newConn(raw net.Conn, br *bufio.Reader, sess *session, log *slog.Logger, maxMsg int) *conn {
	c := &conn{raw: raw, br: br, sess: sess, log: log, maxMsg: maxMsg, deadline: !sess.server}
	// zmq4 expects a NULL greeting from its "peer"; we are that peer.
	c.rbuf = makeGreeting("NULL", false)
	if sess.server { // the client's metadata is already known from INITIATE
		c.rbuf = append(c.rbuf, commandFrame(cmdReady, sess.peerMeta)...)
		c.rready = true
	}
	return c
}

// Write consumes ZMTP-NULL bytes from zmq4, in any split.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.consume(p); err != nil {
		return 0, err
	}
	if err := c.flushOut(); err != nil {
		c.werr = c.fail("send", err)
		return 0, c.werr
	}
	return len(p), nil
}

// WriteBuffers is Write of the concatenation of bufs, with one network write
// for all of it (wire hands a Router's batch over this way, large frames by
// reference rather than copied together first).
func (c *conn) WriteBuffers(bufs [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, p := range bufs {
		if err := c.consume(p); err != nil {
			return err
		}
	}
	if err := c.flushOut(); err != nil {
		c.werr = c.fail("send", err)
		return c.werr
	}
	return nil
}

// consume runs p through the write stages, sealing every frame it completes
// (written out once flushAt bytes are sealed; the caller flushes the rest).
// Called with wmu held.
func (c *conn) consume(p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	for len(p) > 0 {
		var err error
		switch {
		case c.wstage == wGreeting:
			k := min(greetingLen-len(c.wacc), len(p))
			c.wacc, p = append(c.wacc, p[:k]...), p[k:]
			if len(c.wacc) == greetingLen {
				err = parseGreeting(c.wacc, "NULL")
				c.wacc, c.wstage = c.wacc[:0], wReady
			}
		case c.wneed > 0 && len(c.wplain) == 1 && len(p) >= c.wneed && c.wstage == wMessages:
			// The whole payload is here: sealed from where it is, not copied
			// behind the flags byte first.
			c.wout, err = c.sess.sealParts(c.wout, c.wplain[0], p[:c.wneed])
			p, c.wneed = p[c.wneed:], 0
		case c.wneed > 0:
			k := min(c.wneed, len(p))
			c.wplain, p, c.wneed = append(c.wplain, p[:k]...), p[k:], c.wneed-k
			if c.wneed == 0 {
				err = c.flushFrame()
			}
		default:
			need := 2
			if len(c.wacc) > 0 && c.wacc[0]&flagLong != 0 {
				need = 9
			}
			k := min(need-len(c.wacc), len(p))
			c.wacc, p = append(c.wacc, p[:k]...), p[k:]
			if len(c.wacc) == 2 && c.wacc[0]&flagLong != 0 {
				continue // need the remaining 7 size bytes
			}
			if len(c.wacc) == need {
				err = c.startFrame()
			}
		}
		if err == nil && len(c.wout) >= flushAt {
			err = c.flushOut()
		}
		if err != nil {
			c.werr = c.fail("send", err)
			return c.werr
		}
	}
	return nil
}

// flushAt bounds the sealed bytes gathered before they are written: every
// MESSAGE sealed from one Write goes out in one network write (a batch of
// messages from wire costs one syscall, not one per frame).
const flushAt = 256 << 10

// flushOut writes the MESSAGEs sealed so far.
func (c *conn) flushOut() error {
	if len(c.wout) == 0 {
		return nil
	}
	_, err := c.raw.Write(c.wout)
	c.wout = c.wout[:0]
	return err
}

// startFrame parses the header in wacc and prepares wplain.
func (c *conn) startFrame() error {
	f := c.wacc[0]
	var size uint64
	if f&flagLong != 0 {
		size = binary.BigEndian.Uint64(c.wacc[1:9])
	} else {
		size = uint64(c.wacc[1])
	}
	c.wacc = c.wacc[:0]
	if size > uint64(c.maxMsg) {
		return fmt.Errorf("%w: local frame of %d bytes, limit %d", ErrTooLarge, size, c.maxMsg)
	}
	var bf byte
	if f&flagMore != 0 {
		bf |= boxMore
	}
	if f&flagCommand != 0 {
		bf |= boxCommand
	}
	if cap(c.wplain) < int(size)+1 {
		c.wplain = make([]byte, 0, int(size)+1)
	}
	c.wplain = append(c.wplain[:0], bf)
	c.wneed = int(size)
	if size == 0 {
		return c.flushFrame()
	}
	return nil
}

// flushFrame sends the frame assembled in wplain.
func (c *conn) flushFrame() error {
	if c.wstage == wReady {
		body := c.wplain[1:]
		if c.wplain[0] != boxCommand || !bytes.HasPrefix(body, cmdReady) {
			return fmt.Errorf("%w: zmq4 did not send a NULL READY (is the socket using NULL security?)", ErrProtocol)
		}
		meta := body[len(cmdReady):]
		if err := validMetadata(meta); err != nil {
			return err
		}
		var (
			cmd []byte
			err error
		)
		if c.sess.server {
			cmd, err = c.sess.ready(meta)
		} else {
			cmd, err = c.sess.initiate(meta)
		}
		if err != nil {
			return err
		}
		c.wstage = wMessages
		_, err = c.raw.Write(commandFrame(cmd))
		return err
	}
	out, err := c.sess.sealMessage(c.wout, c.wplain)
	if err != nil {
		return err
	}
	c.wout = out // written by Write's flushOut
	return nil
}

// Read hands zmq4 the plaintext ZMTP-NULL stream.
func (c *conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.fill(); err != nil {
			c.rerr = c.fail("receive", err)
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	// Whole frames already buffered are translated too while p has room: one
	// Read hands over a burst, not one frame.
	for len(c.rbuf) == 0 && n < len(p) && c.rready && c.frameBuffered() {
		if err := c.fill(); err != nil {
			c.rerr = c.fail("receive", err) // returned by the next Read
			break
		}
		k := copy(p[n:], c.rbuf)
		c.rbuf, n = c.rbuf[k:], n+k
	}
	return n, nil
}

// frameBuffered reports whether a whole frame from the peer is in the read
// buffer (so fill will not wait for the network).
func (c *conn) frameBuffered() bool {
	b := c.br.Buffered()
	if b < 2 {
		return false
	}
	h, _ := c.br.Peek(min(b, 9))
	size, hl := uint64(h[1]), uint64(2)
	if h[0]&flagLong != 0 {
		if len(h) < 9 {
			return false
		}
		size, hl = binary.BigEndian.Uint64(h[1:9]), 9
	}
	return size <= uint64(b) && uint64(b)-size >= hl
}

// fill reads one frame from the peer and leaves its translation in rbuf.
func (c *conn) fill() error {
	limit := c.maxMsg + 64
	if !c.rready {
		limit = maxHandshakeFrame
	}
	_, body, err := readFrame(c.br, c.rframe, limit)
	c.rframe = body
	if err != nil {
		if !c.rready && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return fmt.Errorf("%w: server closed the connection before READY", ErrHandshake)
		}
		return err
	}
	if bytes.HasPrefix(body, cmdError) {
		reason, err := parseError(body)
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: ERROR %q", ErrRefused, reason)
	}
	if !c.rready { // client waiting for READY
		if err := c.sess.onReady(body); err != nil {
			return fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		c.rready = true
		if c.deadline {
			c.deadline = false
			if err := c.SetDeadline(time.Time{}); err != nil {
				return err
			}
		}
		c.rbuf = commandFrame(cmdReady, c.sess.peerMeta)
		return nil
	}
	// Plaintext lands at rstore[9]: the flags byte, then the payload; the ZMTP
	// header for zmq4 is written over the bytes just before the payload.
	if cap(c.rstore) < 9 {
		c.rstore = make([]byte, 9, 4096)
	}
	out, err := c.sess.openMessage(c.rstore[:9], body)
	if err != nil {
		return err
	}
	c.rstore = out
	bf, payload := out[9], out[10:]
	if bf&boxCommand != 0 {
		return c.command(payload)
	}
	var zf byte
	if bf&boxMore != 0 {
		zf = flagMore
	}
	if len(payload) > 255 {
		out[1] = zf | flagLong
		binary.BigEndian.PutUint64(out[2:10], uint64(len(payload)))
		c.rbuf = out[1:]
	} else {
		out[8], out[9] = zf, byte(len(payload))
		c.rbuf = out[8:]
	}
	return nil
}

// command handles a command the peer sent inside a MESSAGE box. zmq4 has no use
// for them (it would queue an unknown command as a message), so a PING (ZMTP 3.1
// heartbeat) is answered here and everything else is dropped.
func (c *conn) command(body []byte) error {
	if !bytes.HasPrefix(body, cmdPing) || len(body) < len(cmdPing)+2 {
		return nil
	}
	ctx := body[len(cmdPing)+2:]
	if len(ctx) > 16 {
		ctx = ctx[:16]
	}
	plain := append(append([]byte{boxCommand}, cmdPong...), ctx...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wstage != wMessages || c.werr != nil {
		return nil
	}
	out, err := c.sess.sealMessage(nil, plain)
	if err == nil {
		err = c.ownWrite(out)
	}
	if err != nil {
		c.werr = err
	}
	return err
}

// ownWrite writes a frame the conn sends on its own (a PONG), under wmu, with
// its own write deadline: now plus the span the owner last asked for (or
// defaultWriteTimeout when it asked for none). The owner's deadline may be long
// expired when a PING arrives on an idle connection (wire sets one before each of
// its writes), and the owner's next write must not inherit the PONG's, so the
// owner's deadline is put back afterwards.
func (c *conn) ownWrite(frame []byte) error {
	span := c.wspan
	if span <= 0 {
		span = defaultWriteTimeout
	}
	if err := c.raw.SetWriteDeadline(time.Now().Add(span)); err != nil {
		return err
	}
	_, err := c.raw.Write(frame)
	if derr := c.raw.SetWriteDeadline(c.wdl); err == nil {
		err = derr
	}
	return err
}

// fail logs why the connection is dropped (once), closes it and returns an error
// zmq4 recognises as fatal (a non-timeout net.Error makes it drop the Conn).
func (c *conn) fail(op string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && c.deadline {
		err = fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
	}
	c.dropped.Do(func() {
		lvl := slog.LevelWarn
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			lvl = slog.LevelDebug // the peer or zmq4 closed: ordinary
		}
		c.log.Log(context.Background(), lvl, "curve: dropping connection", "op", op, "peer", c.raw.RemoteAddr().String(), "server", c.sess.server, "err", err)
		_ = c.raw.Close()
	})
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return &net.OpError{Op: op, Net: Scheme, Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: err}
}

// Close closes the underlying connection. After fail already dropped it, Close
// is a no-op returning nil: the owner (zmq4, wire) closing a connection we
// dropped is ordinary, not an error of its Close.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.dropped.Do(func() { err = c.raw.Close() })
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// LocalAddr returns the local TCP address.
func (c *conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the peer's TCP address.
func (c *conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// SetDeadline sets the underlying deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.raw.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the underlying read deadline.
func (c *conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the owner's writes; the conn's
// own writes (PONG) use their own (ownWrite).
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wdl, c.wspan = t, 0
	if !t.IsZero() {
		c.wspan = max(time.Until(t), 0)
	}
	return c.raw.SetWriteDeadline(t)
}
