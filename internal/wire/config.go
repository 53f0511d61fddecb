package wire

import (
	"log/slog"
	"net"
	"time"
)

// Security is the seam where CURVE (internal/wire/curve) plugs in. A nil Security
// means NULL (plain ZMTP). wire never hands a raw connection to zmq4: every
// connection goes through wire's own transport, which calls Secure on the raw
// connection (with the handshake deadline already set on it) and then wraps the
// result in the guard (limits, write deadlines). The returned net.Conn must speak
// plain NULL-mechanism ZMTP to zmq4 (spec/protocol.md §3; notes/zmq4.md "what it has").
type Security interface {
	// Mechanism names the mechanism for logs, e.g. "CURVE".
	Mechanism() string
	// PublicKey is this side's public key, Z85 ("" when not applicable). A Router
	// reports it through Router.PublicKey so the broker can print it.
	PublicKey() string
	// Secure runs the security handshake on raw and returns the connection zmq4
	// will use. server is true on the listening side. It must return within the
	// deadline already set on raw (wire clears the deadline afterwards).
	Secure(raw net.Conn, server bool) (net.Conn, error)
}

// Config configures every socket of this package. The zero value is usable: each
// zero field takes the default documented beside it (see DefaultConfig).
type Config struct {
	// Security: nil = NULL (plain TCP).
	Security Security
	// MaxFrame is the largest frame accepted from a peer (default 1 MiB). A peer
	// announcing a larger frame is disconnected before anything is allocated
	// (zmq4 would allocate whatever length the header claims) and counted.
	MaxFrame int
	// MaxMessage is the largest sum of frame sizes of one message (default 4*MaxFrame).
	MaxMessage int
	// MaxFrames is the largest number of frames in one message (default 16).
	MaxFrames int
	// SendTimeout bounds every network write and every zmq4 Send (default 2 s).
	// A peer that does not drain its connection within it is disconnected.
	SendTimeout time.Duration
	// HandshakeTimeout bounds the ZMTP (and security) handshake of a new
	// connection (default 5 s). Silent connections are dropped after it.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the connections a listening socket (Router, Pub) is
	// handshaking with at once (default 256). At the cap the connection that
	// has got least far (silent, then part of its greeting), the oldest, is
	// closed for a new one that has got further (a client sends its whole
	// greeting at once) or once it is older than a quarter of the idle timeout;
	// otherwise the new one is refused. So idle or half-greeted connections
	// never lock new clients out; a connection that has not sent its whole
	// greeting within min(1 s, HandshakeTimeout) is closed anyway, and on TCP a
	// silent one is not even accepted from the kernel before then. See
	// internal/wire/admit.
	MaxHandshakes int
	// PeerQueue is the bounded number of messages queued per peer (Router) or per
	// socket (Dealer, Pub) before Send returns ErrQueueFull (default 1024).
	PeerQueue int
	// RecvQueue is the number of received messages buffered before the reader
	// stops reading the network (default 1024).
	RecvQueue int
	// RedialMin and RedialMax bound the exponential backoff of Dealer/Sub redials
	// (defaults 50 ms and 2 s).
	RedialMin, RedialMax time.Duration
	// Identity is the routing identity of a Dealer (default: 16 random bytes, kept
	// across redials so a ROUTER keeps addressing the same peer).
	Identity []byte
	// Logger receives diagnostics (nil → discard).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults that zero fields take.
func DefaultConfig() Config {
	return Config{
		MaxFrame:         1 << 20,
		MaxMessage:       4 << 20,
		MaxFrames:        16,
		SendTimeout:      2 * time.Second,
		HandshakeTimeout: 5 * time.Second,
		MaxHandshakes:    256,
		PeerQueue:        1024,
		RecvQueue:        1024,
		RedialMin:        50 * time.Millisecond,
		RedialMax:        2 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrame <= 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 4 * c.MaxFrame
	}
	if c.MaxFrames <= 0 {
		c.MaxFrames = d.MaxFrames
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = d.SendTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = d.MaxHandshakes
	}
	if c.PeerQueue <= 0 {
		c.PeerQueue = d.PeerQueue
	}
	if c.RecvQueue <= 0 {
		c.RecvQueue = d.RecvQueue
	}
	if c.RedialMin <= 0 {
		c.RedialMin = d.RedialMin
	}
	if c.RedialMax < c.RedialMin {
		c.RedialMax = max(d.RedialMax, c.RedialMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
