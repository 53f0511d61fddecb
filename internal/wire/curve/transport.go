package curve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	zmqtransport "github.com/go-zeromq/zmq4/transport"
)

// Scheme is the zmq4 transport name: endpoints look like "curve://s1@127.0.0.1:5555".
const Scheme = "curve"

// Defaults for zero config fields.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxMessage       = 64 << 20
	DefaultMaxHandshakes    = 256
	// defaultWriteTimeout bounds a write the conn makes on its own (a PONG)
	// when its owner set no write deadline.
	defaultWriteTimeout = 5 * time.Second
)

// ServerConfig configures the server side of CURVE for one listening socket.
type ServerConfig struct {
	// Keys is the server's permanent key pair (required). Clients must know
	// Keys.Public. LoadOrCreate keeps one in a keys directory.
	Keys KeyPair
	// Allow, when not empty, is the set of client permanent public keys that may
	// connect; any other client gets an ERROR command and is dropped. Empty: any
	// client that knows the server key may connect (the original's behaviour).
	Allow []PublicKey
	// HandshakeTimeout bounds the whole handshake of each connection. 0: 5 s.
	HandshakeTimeout time.Duration
	// MaxMessage bounds one frame's payload in either direction. 0: 64 MiB.
	MaxMessage int
	// MaxHandshakes bounds connections handshaking at once. At the cap the
	// least advanced connection (silent, then part of a greeting), the oldest,
	// is closed for a new one that got further or once it is past its
	// probation, else the new one is refused (internal/wire/admit), so idle
	// connections cannot lock clients out. 0: 256.
	MaxHandshakes int
	// Logger receives one line per refused connection (at Warn at most once a
	// second, with the count of those not logged at Warn; the others at Debug)
	// and one per dropped connection. nil: discard.
	Logger *slog.Logger
}

// ClientConfig configures the client side of CURVE for one dialling socket.
type ClientConfig struct {
	// ServerKey is the server's permanent public key (required).
	ServerKey PublicKey
	// Keys is the client's permanent key pair. Zero: a fresh pair is generated
	// for every connection (the original's behaviour).
	Keys KeyPair
	// HandshakeTimeout bounds the handshake of each connection. 0: 5 s.
	HandshakeTimeout time.Duration
	// MaxMessage bounds one frame's payload in either direction. 0: 64 MiB.
	MaxMessage int
	// Logger receives one line per failed or dropped connection. nil: discard.
	Logger *slog.Logger
}

// Endpoint is a registered key handle plus a TCP address: String() is the
// address to give zmq4's Listen or Dial. Close releases the handle.
type Endpoint struct {
	handle string
	host   string // host:port as given
	server *ServerConfig
	client *ClientConfig
	allow  map[PublicKey]struct{}
	log    *slog.Logger
	bound  atomic.Pointer[string] // tcp://host:port once a listener is bound
}

// registry maps key handles to endpoints. It is process-global because zmq4's
// transport registry is: a transport cannot carry per-socket state otherwise.
var registry = struct {
	sync.Mutex
	next uint64
	eps  map[string]*Endpoint
}{eps: map[string]*Endpoint{}}

var registerOnce sync.Once

func register(e *Endpoint, kind string) error {
	var err error
	registerOnce.Do(func() { err = zmq4.RegisterTransport(Scheme, transport{}) })
	if err != nil {
		return fmt.Errorf("curve: register zmq4 transport: %w", err)
	}
	registry.Lock()
	defer registry.Unlock()
	registry.next++
	e.handle = kind + strconv.FormatUint(registry.next, 10)
	registry.eps[e.handle] = e
	return nil
}

func lookup(handle string) (*Endpoint, error) {
	registry.Lock()
	defer registry.Unlock()
	e, ok := registry.eps[handle]
	if !ok {
		return nil, fmt.Errorf("%w: unknown or released key handle %q", ErrEndpoint, handle)
	}
	return e, nil
}

func tcpHostPort(ep string) (string, error) {
	hp, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return "", fmt.Errorf("%w: %q is not tcp://host:port", ErrEndpoint, ep)
	}
	if _, _, err := net.SplitHostPort(hp); err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrEndpoint, ep, err)
	}
	return hp, nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// ServerEndpoint registers cfg under a new key handle and returns the endpoint
// for zmq4's Listen, e.g. "tcp://127.0.0.1:0" → "curve://s1@127.0.0.1:0". After
// Listen, BoundAddr reports the real port.
func ServerEndpoint(tcpEndpoint string, cfg ServerConfig) (*Endpoint, error) {
	hp, err := tcpHostPort(tcpEndpoint)
	if err != nil {
		return nil, err
	}
	if cfg.Keys.IsZero() {
		return nil, fmt.Errorf("%w: server key pair is required", ErrBadKey)
	}
	if err := checkAllow(cfg.Allow); err != nil {
		return nil, err
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	e := &Endpoint{host: hp, server: &cfg, log: logger(cfg.Logger)}
	if len(cfg.Allow) > 0 {
		e.allow = make(map[PublicKey]struct{}, len(cfg.Allow))
		for _, k := range cfg.Allow {
			e.allow[k] = struct{}{}
		}
	}
	return e, register(e, "s")
}

// ClientEndpoint registers cfg under a new key handle and returns the endpoint
// for zmq4's Dial, e.g. "tcp://127.0.0.1:5555" → "curve://c2@127.0.0.1:5555".
func ClientEndpoint(tcpEndpoint string, cfg ClientConfig) (*Endpoint, error) {
	hp, err := tcpHostPort(tcpEndpoint)
	if err != nil {
		return nil, err
	}
	if err := checkServerKey(cfg.ServerKey); err != nil {
		return nil, err
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	e := &Endpoint{host: hp, client: &cfg, log: logger(cfg.Logger)}
	return e, register(e, "c")
}

// String returns the zmq4 endpoint address.
func (e *Endpoint) String() string { return Scheme + "://" + e.handle + "@" + e.host }

// BoundAddr returns "tcp://host:port" of the most recent listener bound with this
// endpoint (the real port when the endpoint said :0), or "" before Listen.
func (e *Endpoint) BoundAddr() string {
	if p := e.bound.Load(); p != nil {
		return *p
	}
	return ""
}

// Close releases the key handle: later Listen/Dial with it fail (zmq4's
// auto-reconnect included). Listeners and connections already open keep working
// until zmq4 closes them. Nil-safe and idempotent.
func (e *Endpoint) Close() error {
	if e == nil {
		return nil
	}
	registry.Lock()
	delete(registry.eps, e.handle)
	registry.Unlock()
	return nil
}

// transport implements zmq4's transport.Transport for Scheme.
type transport struct{}

var _ zmqtransport.Transport = transport{}

// Addr checks the "handle@host:port" part of an endpoint and returns it as is.
func (transport) Addr(ep string) (string, error) {
	_, _, err := splitAddr(ep)
	return ep, err
}

func splitAddr(addr string) (*Endpoint, string, error) {
	handle, hp, ok := strings.Cut(addr, "@")
	if !ok {
		return nil, "", fmt.Errorf("%w: %q is not handle@host:port (make it with curve.ServerEndpoint/ClientEndpoint)", ErrEndpoint, addr)
	}
	e, err := lookup(handle)
	if err != nil {
		return nil, "", err
	}
	return e, hp, nil
}

// Listen binds a TCP listener whose Accept returns only connections that have
// completed the CURVE handshake.
func (transport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	e, hp, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if e.server == nil {
		return nil, fmt.Errorf("%w: %q is a client endpoint, cannot listen", ErrEndpoint, addr)
	}
	ln, err := net.Listen("tcp", hp)
	if err != nil {
		return nil, err
	}
	bound := "tcp://" + ln.Addr().String()
	e.bound.Store(&bound)
	return newListener(ln, e), nil
}

// Dial connects and runs the CURVE handshake up to WELCOME; INITIATE and READY
// follow when zmq4 sends its metadata over the returned conn.
func (transport) Dial(ctx context.Context, d zmqtransport.Dialer, addr string) (net.Conn, error) {
	e, hp, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	if e.client == nil {
		return nil, fmt.Errorf("%w: %q is a server endpoint, cannot dial", ErrEndpoint, addr)
	}
	raw, err := d.DialContext(ctx, "tcp", hp)
	if err != nil {
		return nil, err
	}
	c, err := clientHandshake(raw, e.client, e.log, true)
	if err != nil {
		_ = raw.Close()
		e.log.Warn("curve: handshake with server failed", "server", hp, "err", err)
		return nil, err
	}
	return c, nil
}

// clientHandshake runs greeting, HELLO and WELCOME; with setDeadline it bounds
// them (and the later wait for READY) by cfg.HandshakeTimeout itself.
func clientHandshake(raw net.Conn, cfg *ClientConfig, log *slog.Logger, setDeadline bool) (*conn, error) {
	if setDeadline {
		if err := raw.SetDeadline(time.Now().Add(cfg.HandshakeTimeout)); err != nil {
			return nil, err
		}
	}
	keys := cfg.Keys
	if keys.IsZero() {
		var err error
		if keys, err = GenerateKeyPair(); err != nil {
			return nil, err
		}
	}
	sess, err := newSession(false, keys, cfg.ServerKey, nil)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(raw, messageBuffer)
	if err := greet(raw, br, false); err != nil {
		return nil, err
	}
	if _, err := raw.Write(commandFrame(sess.hello())); err != nil {
		return nil, handshakeErr(err)
	}
	body, err := readCommand(br)
	if err != nil {
		return nil, err
	}
	if err := sess.onWelcome(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return newConn(raw, br, sess, log, cfg.MaxMessage), nil
}

// serverHandshake runs greeting, HELLO, WELCOME and INITIATE (allowlist
// included); with setDeadline it bounds them by cfg.HandshakeTimeout itself.
func serverHandshake(raw net.Conn, cfg *ServerConfig, allow map[PublicKey]struct{}, log *slog.Logger, setDeadline bool) (*conn, error) {
	if setDeadline {
		if err := raw.SetDeadline(time.Now().Add(cfg.HandshakeTimeout)); err != nil {
			return nil, err
		}
	}
	sess, err := newSession(true, cfg.Keys, PublicKey{}, allow)
	if err != nil {
		return nil, err
	}
	// Small until the client is authenticated (a peer costs little before);
	// the message phase gets the large one.
	br := bufio.NewReaderSize(raw, handshakeBuffer)
	if err := greet(raw, br, true); err != nil {
		return nil, err
	}
	body, err := readCommand(br)
	if err != nil {
		return nil, err
	}
	if err := sess.onHello(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	welcome, err := sess.welcome()
	if err != nil {
		return nil, err
	}
	if _, err := raw.Write(commandFrame(welcome)); err != nil {
		return nil, handshakeErr(err)
	}
	if body, err = readCommand(br); err != nil {
		return nil, err
	}
	if err := sess.onInitiate(body); err != nil {
		if errors.Is(err, ErrUnknownClient) {
			// libzmq answers a ZAP refusal with ERROR "400"; so do we.
			_, _ = raw.Write(errorCommand("400"))
		}
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if setDeadline {
		if err := raw.SetDeadline(time.Time{}); err != nil {
			return nil, err
		}
	}
	return newConn(raw, messageReader(raw, br), sess, log, cfg.MaxMessage), nil
}

// Reader buffer sizes: during the server handshake, and in the message phase.
const (
	handshakeBuffer = 512
	messageBuffer   = 32 << 10
)

// messageReader returns the message-phase reader of raw that continues where
// the handshake reader br stopped.
func messageReader(raw net.Conn, br *bufio.Reader) *bufio.Reader {
	n := br.Buffered()
	if n == 0 {
		return bufio.NewReaderSize(raw, messageBuffer)
	}
	rest, _ := br.Peek(n)
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), raw), messageBuffer)
}

// greet exchanges CURVE greetings.
func greet(raw net.Conn, br *bufio.Reader, asServer bool) error {
	if _, err := raw.Write(makeGreeting("CURVE", asServer)); err != nil {
		return handshakeErr(err)
	}
	var g [greetingLen]byte
	if _, err := io.ReadFull(br, g[:]); err != nil {
		return handshakeErr(err)
	}
	if err := parseGreeting(g[:], "CURVE"); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return nil
}

// readCommand reads one handshake command; an ERROR command becomes ErrRefused.
func readCommand(br *bufio.Reader) ([]byte, error) {
	_, body, err := readFrame(br, nil, maxHandshakeFrame)
	if err != nil {
		return nil, handshakeErr(err)
	}
	if strings.HasPrefix(string(body), string(cmdError)) {
		reason, err := parseError(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return nil, fmt.Errorf("%w: %w: ERROR %q", ErrHandshake, ErrRefused, reason)
	}
	return body, nil
}

// handshakeErr classifies an I/O error during the handshake.
func handshakeErr(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w: %w", ErrHandshake, ErrHandshakeTimeout, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: peer closed the connection mid-handshake (wrong key or not a CURVE peer?): %w", ErrHandshake, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: %w", ErrHandshake, err)
}
