package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/go-zeromq/zmq4"
)

// maxReady bounds the peer's READY command read before zmq4 takes over.
const maxReady = 64 << 10

// nullGreeting is the ZMTP 3.0 NULL greeting zmq4 sends (version 3.0, as-server 0).
func nullGreeting() []byte {
	g := make([]byte, greetingLen)
	g[0], g[sigLastOffset], g[10], g[11] = sigFirstByte, sigLastByte, 3, 0
	copy(g[12:32], "NULL")
	return g
}

// readHandshake reads the peer's greeting and READY command from g and checks
// them as zmq4 would (so zmq4's handshake over the replayed bytes cannot fail
// and leave the connection open): ZMTP signature and version >= 3.0, mechanism
// NULL (the Security, if any, speaks NULL upward), one READY command frame whose
// property list is well formed and whose Socket-Type is compatible with typ. It
// returns the bytes read, to be replayed to zmq4, and the peer's routing
// identity (its Identity property, "" if none).
//
// With greet set (NULL), our greeting is written once the peer's signature has
// arrived (a libzmq peer waits for ours before sending the rest of its own), and
// zmq4's is dropped by the guard; nothing is sent to a peer that is silent or
// not ZMTP.
func readHandshake(g *guard, typ zmq4.SocketType, greet bool) ([]byte, string, error) {
	buf := make([]byte, greetingLen+9, greetingLen+9+256)
	if _, err := io.ReadFull(g, buf[:sigLastOffset+1]); err != nil {
		return nil, "", fmt.Errorf("%w: signature: %w", ErrHandshake, err)
	}
	if greet {
		g.ownGreeting = true
		if _, err := g.rawWrite(nullGreeting()); err != nil {
			return nil, "", fmt.Errorf("%w: send greeting: %w", ErrHandshake, err)
		}
	}
	if _, err := io.ReadFull(g, buf[sigLastOffset+1:greetingLen]); err != nil {
		return nil, "", fmt.Errorf("%w: greeting: %w", ErrHandshake, err)
	}
	if buf[10] < 3 {
		return nil, "", fmt.Errorf("%w: ZMTP version %d.%d, need 3.x", ErrHandshake, buf[10], buf[11])
	}
	if mech := string(bytes.TrimRight(buf[12:32], "\x00")); mech != "NULL" {
		return nil, "", fmt.Errorf("%w: mechanism %q, want NULL", ErrHandshake, mech)
	}
	hdr := buf[greetingLen : greetingLen+2]
	if _, err := io.ReadFull(g, hdr); err != nil {
		return nil, "", fmt.Errorf("%w: READY: %w", ErrHandshake, err)
	}
	if hdr[0]&^flagLong != flagCommand {
		return nil, "", fmt.Errorf("%w: expected a READY command, got frame flags %#x", ErrHandshake, hdr[0])
	}
	size := uint64(hdr[1])
	if hdr[0]&flagLong != 0 {
		hdr = buf[greetingLen : greetingLen+9]
		if _, err := io.ReadFull(g, hdr[2:]); err != nil {
			return nil, "", fmt.Errorf("%w: READY: %w", ErrHandshake, err)
		}
		size = binary.BigEndian.Uint64(hdr[1:])
	}
	if size > maxReady {
		return nil, "", fmt.Errorf("%w: READY of %d bytes, limit %d", ErrHandshake, size, maxReady)
	}
	out := bytes.NewBuffer(buf[:greetingLen+len(hdr)])
	if _, err := io.CopyN(out, g, int64(size)); err != nil { // grows with what arrives
		return nil, "", fmt.Errorf("%w: READY: %w", ErrHandshake, err)
	}
	body := out.Bytes()[greetingLen+len(hdr):]
	if !bytes.HasPrefix(body, []byte("\x05READY")) {
		return nil, "", fmt.Errorf("%w: expected READY, got command %q", ErrHandshake, body[:min(len(body), 12)])
	}
	peer, id, err := readyProps(body[6:])
	if err != nil {
		return nil, "", err
	}
	if typ != "" && !compatible(peer, typ) {
		return nil, "", fmt.Errorf("%w: peer socket type %q cannot talk to %s", ErrHandshake, peer[:min(len(peer), 32)], typ)
	}
	return out.Bytes(), id, nil
}

// readyProps walks a ZMTP property list (name-len 1..255, name, value-len u32
// BE, value; zmq4's parser trusts it) and returns the Socket-Type and Identity
// values.
func readyProps(b []byte) (typ, id string, err error) {
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return "", "", fmt.Errorf("%w: READY property name truncated", ErrHandshake)
		}
		name := string(b[1 : 1+n])
		v := binary.BigEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if uint64(v) > uint64(len(b)) {
			return "", "", fmt.Errorf("%w: READY property value truncated", ErrHandshake)
		}
		switch {
		case strings.EqualFold(name, "Socket-Type"):
			typ = string(b[:v])
		case strings.EqualFold(name, "Identity"):
			id = string(b[:v])
		}
		b = b[v:]
	}
	return typ, id, nil
}

// compatible reports whether zmq4 lets a peer of socket type peer talk to a
// socket of type typ. zmq4's IsCompatible panics on a type it does not know
// (one READY could crash the process); that counts as not compatible.
func compatible(peer string, typ zmq4.SocketType) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return zmq4.SocketType(peer).IsCompatible(typ)
}
