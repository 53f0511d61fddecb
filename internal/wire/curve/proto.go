package curve

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/go-zeromq/zmq4"
)

// ZMTP 3 framing (RFC 23) as used below and above the CURVE layer.
const (
	greetingLen = 64
	flagMore    = 0x01 // ZMTP frame flag: more frames follow
	flagLong    = 0x02 // ZMTP frame flag: 8-byte size
	flagCommand = 0x04 // ZMTP frame flag: command frame

	// Inside a MESSAGE box the first byte carries libzmq's msg_t flags.
	boxMore    = 0x01
	boxCommand = 0x02

	// maxHandshakeFrame bounds every frame before the handshake completes, so a
	// hostile peer cannot make us allocate much before it has authenticated.
	maxHandshakeFrame = 64 << 10
	// maxMetadata bounds the metadata carried in INITIATE and READY.
	maxMetadata = 16 << 10
)

// Command names as they appear on the wire (length byte included).
var (
	cmdHello    = []byte("\x05HELLO")
	cmdWelcome  = []byte("\x07WELCOME")
	cmdInitiate = []byte("\x08INITIATE")
	cmdReady    = []byte("\x05READY")
	cmdMessage  = []byte("\x07MESSAGE")
	cmdError    = []byte("\x05ERROR")
	cmdPing     = []byte("\x04PING")
	cmdPong     = []byte("\x04PONG")
)

// Nonce prefixes of RFC 26.
const (
	prefixHello    = "CurveZMQHELLO---"
	prefixWelcome  = "WELCOME-"
	prefixCookie   = "COOKIE--"
	prefixInitiate = "CurveZMQINITIATE"
	prefixVouch    = "VOUCH---"
	prefixReady    = "CurveZMQREADY---"
	prefixMsgC     = "CurveZMQMESSAGEC" // messages sent by the client
	prefixMsgS     = "CurveZMQMESSAGES" // messages sent by the server
)

// Fixed command sizes.
const (
	helloLen       = 200
	welcomeLen     = 168
	cookieLen      = 96
	initiateMinLen = 257
	readyMinLen    = 30
	messageMinLen  = 33
	boxOverhead    = 16
)

// makeGreeting returns a ZMTP 3.0 greeting for mechanism mech. We announce 3.0,
// not 3.1, so libzmq sends subscriptions as messages, which zmq4 expects.
func makeGreeting(mech string, asServer bool) []byte {
	g := make([]byte, greetingLen)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 0
	copy(g[12:32], mech)
	if asServer {
		g[32] = 1
	}
	return g
}

// parseGreeting checks a peer greeting: ZMTP signature, major version 3 and the
// mechanism mech (NUL padded). The as-server byte is not checked: libzmq 4.3
// sends 0 from CURVE servers too; roles are enforced by the handshake itself.
func parseGreeting(g []byte, mech string) error {
	if len(g) != greetingLen || g[0] != 0xFF || g[9]&1 != 1 {
		return fmt.Errorf("%w: not a ZMTP greeting", ErrMechanism)
	}
	if g[10] < 3 {
		return fmt.Errorf("%w: ZMTP version %d.%d, need 3.x", ErrMechanism, g[10], g[11])
	}
	m := g[12:32]
	if i := bytes.IndexByte(m, 0); i >= 0 {
		if !allZero(m[i:]) {
			return fmt.Errorf("%w: mechanism field not NUL padded", ErrMechanism)
		}
		m = m[:i]
	}
	if string(m) != mech {
		return fmt.Errorf("%w: peer mechanism %q, want %q", ErrMechanism, m, mech)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendFrameHeader appends a ZMTP frame header (flags, short or long size).
func appendFrameHeader(dst []byte, flags byte, size int) []byte {
	if size > 255 {
		dst = append(dst, flags|flagLong)
		return binary.BigEndian.AppendUint64(dst, uint64(size))
	}
	return append(dst, flags&^flagLong, byte(size))
}

// readFrame reads one ZMTP frame into buf (grown as needed) and returns its
// flags and body. Frames larger than limit are refused before allocating.
func readFrame(r *bufio.Reader, buf []byte, limit int) (byte, []byte, error) {
	flags, err := r.ReadByte()
	if err != nil {
		return 0, buf, err
	}
	var size uint64
	if flags&flagLong != 0 {
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, buf, noEOF(err)
		}
		size = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := r.ReadByte()
		if err != nil {
			return 0, buf, noEOF(err)
		}
		size = uint64(b)
	}
	if size > uint64(limit) {
		return 0, buf, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, limit)
	}
	if uint64(cap(buf)) < size && size > growFrom {
		// Grow with the bytes that arrive, not with what the header claims.
		b := bytes.NewBuffer(buf[:0])
		_, err := io.CopyN(b, r, int64(size))
		if err != nil {
			return 0, b.Bytes(), noEOF(err)
		}
		return flags, b.Bytes(), nil
	}
	if uint64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, buf, noEOF(err)
	}
	return flags, buf, nil
}

// growFrom is the frame size above which readFrame grows its buffer as the
// bytes arrive instead of allocating the announced size at once.
const growFrom = 4 << 10

// noEOF turns an EOF in the middle of a frame into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// commandFrame returns a whole command frame (header and body).
func commandFrame(body ...[]byte) []byte {
	n := 0
	for _, b := range body {
		n += len(b)
	}
	out := appendFrameHeader(make([]byte, 0, n+9), flagCommand, n)
	for _, b := range body {
		out = append(out, b...)
	}
	return out
}

// errorCommand returns an ERROR command frame with reason (truncated to 255).
func errorCommand(reason string) []byte {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	return commandFrame(cmdError, []byte{byte(len(reason))}, []byte(reason))
}

// parseError returns the reason of an ERROR command body.
func parseError(body []byte) (string, error) {
	if !bytes.HasPrefix(body, cmdError) || len(body) < 7 || int(body[6]) != len(body)-7 {
		return "", fmt.Errorf("%w: ERROR command of %d bytes", ErrMalformed, len(body))
	}
	return string(printable(body[7:])), nil
}

// printable replaces non-printable bytes so peer text is safe to log.
func printable(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return out
}

// validMetadata checks a ZMTP property list: name-len (1..255), name, value-len
// (u32 BE), value, repeated, consuming every byte, and a Socket-Type zmq4
// knows. zmq4's own parser trusts its input and would panic on a malformed
// list, and its SocketType.IsCompatible panics on an unknown type, so we check
// before handing it up.
func validMetadata(b []byte) error {
	if len(b) > maxMetadata {
		return fmt.Errorf("%w: metadata of %d bytes, limit %d", ErrMalformed, len(b), maxMetadata)
	}
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return fmt.Errorf("%w: metadata property name truncated", ErrMalformed)
		}
		name := b[1 : 1+n]
		v := binary.BigEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if uint64(v) > uint64(len(b)) {
			return fmt.Errorf("%w: metadata property value truncated", ErrMalformed)
		}
		if bytes.EqualFold(name, []byte("Socket-Type")) && !zmqKnows(string(b[:v])) {
			return fmt.Errorf("%w: unknown socket type %q", ErrMalformed, b[:min(v, 32)])
		}
		b = b[v:]
	}
	return nil
}

// zmqKnows reports whether zmq4 knows socket type t (its IsCompatible panics
// on any other).
func zmqKnows(t string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	zmq4.SocketType(t).IsCompatible(zmq4.Pair)
	return true
}
