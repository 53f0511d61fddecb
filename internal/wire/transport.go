package wire

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/transport"

	"github.com/pylabhub/plh/internal/wire/admit"
)

// wire registers two zmq4 transports, "plhtcp" and "plhipc". zmq4 only ever sees
// endpoints of these schemes: zmqEndpoint rewrites tcp://host:port to
// plhtcp://KEY@host:port, where KEY names the socket's entry in the registry
// below, so the transport knows the socket's Config (limits, timeouts, Security)
// and counters for every connection it makes.
const (
	schemeTCP = "plhtcp"
	schemeIPC = "plhipc"
)

func init() {
	for scheme, network := range map[string]string{schemeTCP: "tcp", schemeIPC: "unix"} {
		if err := zmq4.RegisterTransport(scheme, plhTransport{network: network}); err != nil {
			panic(err) // only possible if registered twice: a programming error
		}
	}
}

// sockOpts is what the transport needs to know about one socket.
type sockOpts struct {
	cfg *Config
	st  *counters
	typ zmq4.SocketType // checked against a connecting peer's Socket-Type

	mu        sync.Mutex
	listeners []*listener         // opened by Listen for this socket
	dialing   map[*guard]struct{} // dialled, zmq4's handshake not yet known to have succeeded
	peers     map[string]*guard   // accepted connections by the peer's routing identity (Router.sendLoop)

	// sink, set before the socket dials, receives the messages of its dialled
	// connections directly (deliver.go); nil leaves reading to zmq4.
	sink  deliverFunc
	alloc func(n int) []byte // storage of the bodies it assembles (nil: make)
}

// addPeer records g as the accepted connection of the peer with routing
// identity id (a later connection with the same identity replaces it, as a
// redialling Dealer's does).
func (so *sockOpts) addPeer(id string, g *guard) {
	if id == "" {
		return
	}
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.peers == nil {
		so.peers = map[string]*guard{}
	}
	so.peers[id] = g
}

// removePeer forgets g as the connection of id (if it still is).
func (so *sockOpts) removePeer(id string, g *guard) {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.peers[id] == g {
		delete(so.peers, id)
	}
}

// directPeer returns the connection to write id's messages to directly, or nil
// when there is none that zmq4 has finished its handshake on (then zmq4 sends).
func (so *sockOpts) directPeer(id string) *guard {
	so.mu.Lock()
	g := so.peers[id]
	so.mu.Unlock()
	if g == nil || !g.direct.Load() {
		return nil
	}
	return g
}

// endDial forgets the connections dialled for the socket registered under key
// once zmq4's Dial has returned, closing (and counting) them if it failed: zmq4
// does not close a connection whose handshake failed (a mechanism or version
// mismatch, a silent peer). After a successful Dial it returns the dialled
// connection (nil if it cannot tell which).
func endDial(key string, failed bool) *guard {
	v, ok := sockReg.Load(key)
	if !ok {
		return nil
	}
	so := v.(*sockOpts)
	so.mu.Lock()
	gs := so.dialing
	so.dialing = nil
	so.mu.Unlock()
	if failed {
		for g := range gs {
			so.st.handshakeFailures.Add(1)
			g.Close()
		}
		return nil
	}
	if len(gs) != 1 {
		return nil
	}
	for g := range gs {
		return g
	}
	return nil
}

// closeListeners closes every listener of the socket registered under key. A
// Router calls it before zmq4's Close: zmq4 closes the socket's connections
// first and its listener last (after a lock that may wait), and a peer
// redialling in between would be accepted by a socket being closed.
func closeListeners(key string) {
	v, ok := sockReg.Load(key)
	if !ok {
		return
	}
	so := v.(*sockOpts)
	so.mu.Lock()
	ls := so.listeners
	so.listeners = nil
	so.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
}

var (
	sockSeq atomic.Uint64
	sockReg sync.Map // key string → *sockOpts
)

func register(cfg *Config, st *counters, typ zmq4.SocketType) (string, *sockOpts) {
	key := strconv.FormatUint(sockSeq.Add(1), 10)
	so := &sockOpts{cfg: cfg, st: st, typ: typ}
	sockReg.Store(key, so)
	return key, so
}

func unregister(key string) { sockReg.Delete(key) }

// zmqEndpoint maps a public endpoint (tcp://host:port, ipc://path) to the zmq4
// endpoint of wire's transport for the socket registered under key. This is the
// only place endpoints are translated.
func zmqEndpoint(ep, key string) (string, error) {
	scheme, addr, ok := strings.Cut(ep, "://")
	if !ok || addr == "" {
		return "", fmt.Errorf("%w: %q", ErrBadEndpoint, ep)
	}
	switch scheme {
	case "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadEndpoint, ep, err)
		}
		if host == "*" {
			host = "0.0.0.0"
		}
		if port == "*" {
			port = "0"
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("%w: %q: bad port", ErrBadEndpoint, ep)
		}
		return schemeTCP + "://" + key + "@" + net.JoinHostPort(host, port), nil
	case "ipc":
		return schemeIPC + "://" + key + "@" + addr, nil
	default:
		return "", fmt.Errorf("%w: %q: scheme must be tcp or ipc", ErrBadEndpoint, ep)
	}
}

// publicEndpoint turns a listener address back into tcp://… or ipc://….
func publicEndpoint(a net.Addr) string {
	if a.Network() == "unix" {
		return "ipc://" + a.String()
	}
	return "tcp://" + a.String()
}

type plhTransport struct{ network string }

var _ transport.Transport = plhTransport{}

func (t plhTransport) Addr(ep string) (string, error) { return ep, nil }

func lookup(addr string) (*sockOpts, string, error) {
	key, inner, ok := strings.Cut(addr, "@")
	if !ok {
		return nil, "", fmt.Errorf("%w: %q has no socket key", ErrBadEndpoint, addr)
	}
	v, ok := sockReg.Load(key)
	if !ok {
		return nil, "", ErrClosed
	}
	return v.(*sockOpts), inner, nil
}

func (t plhTransport) Dial(ctx context.Context, d transport.Dialer, addr string) (net.Conn, error) {
	so, inner, err := lookup(addr)
	if err != nil {
		return nil, err
	}
	raw, err := d.DialContext(ctx, t.network, inner)
	if err != nil {
		return nil, err
	}
	if t.network == "tcp" && raw.LocalAddr().String() == raw.RemoteAddr().String() {
		// TCP self-connect: dialling a free local port in the ephemeral range can
		// connect the socket to itself, and DEALER-DEALER is a valid ZMTP pair.
		raw.Close()
		return nil, fmt.Errorf("wire: dial %s: connected to itself (nothing listening)", inner)
	}
	c, err := establish(raw, so, false)
	if err != nil {
		return nil, err
	}
	c.sink, c.alloc = so.sink, so.alloc
	so.mu.Lock()
	if so.dialing == nil {
		so.dialing = map[*guard]struct{}{}
	}
	so.dialing[c] = struct{}{}
	so.mu.Unlock()
	so.st.dialed.Add(1)
	return c, nil
}

func (t plhTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	so, inner, err := lookup(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen(t.network, inner)
	if err != nil {
		return nil, err
	}
	l := newListener(ln, so)
	so.mu.Lock()
	so.listeners = append(so.listeners, l)
	so.mu.Unlock()
	return l, nil
}

// establish runs the security handshake (if any) under the handshake deadline and
// wraps the result in a guard whose read deadline stays until the ZMTP handshake
// is done.
func establish(raw net.Conn, so *sockOpts, server bool) (*guard, error) {
	cfg := so.cfg
	_ = raw.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	c := raw
	if cfg.Security != nil {
		sc, err := cfg.Security.Secure(raw, server)
		if err != nil {
			if !server { // a listener counts its failures and closes them itself (admit), counted first
				raw.Close()
				so.st.handshakeFailures.Add(1)
			}
			return nil, fmt.Errorf("wire: %s handshake: %w", cfg.Security.Mechanism(), err)
		}
		c = sc
		_ = c.SetWriteDeadline(time.Time{})
		_ = c.SetReadDeadline(time.Now().Add(cfg.HandshakeTimeout))
	} else {
		_ = c.SetWriteDeadline(time.Time{})
	}
	return newGuard(c, cfg, so.st), nil
}

// listener hands zmq4 only connections whose ZMTP handshake, up to and
// including the peer's READY, has already been read and checked (see
// handshake), so zmq4's single accept loop never waits on a peer and never
// fails a connection it would then leave open. The handshakes run in
// internal/wire/admit (one goroutine each, at most MaxHandshakes at once).
type listener struct {
	*admit.Listener
	so *sockOpts

	mu   sync.Mutex
	live map[*guard]struct{} // connections handed to zmq4, closed with the listener
}

func newListener(ln net.Listener, so *sockOpts) *listener {
	l := &listener{so: so, live: map[*guard]struct{}{}}
	cfg := so.cfg
	l.Listener = admit.Listen(ln, admit.Config{
		Max:         cfg.MaxHandshakes,
		IdleTimeout: min(admit.DefaultIdleTimeout, cfg.HandshakeTimeout),
		Greeting:    greetingLen,
		Logger:      cfg.Logger,
		Name:        "wire",
		OnFail:      func(error) { so.st.handshakeFailures.Add(1) },
	}, l.handshake)
	return l
}

// handshake runs the security handshake (if any), then reads the peer's ZMTP
// greeting and READY through the guard and checks what zmq4 would check
// (signature, version 3, mechanism NULL, a READY command with a well-formed
// property list and a compatible Socket-Type). They are replayed to zmq4 from
// the guard's prefix.
func (l *listener) handshake(raw net.Conn) (net.Conn, error) {
	g, err := establish(raw, l.so, true)
	if err != nil {
		return nil, err
	}
	pre, id, err := readHandshake(g, l.so.typ, l.so.cfg.Security == nil)
	if err != nil {
		return nil, err // admit counts the failure, then closes the connection
	}
	g.prefix = pre
	l.so.addPeer(id, g)
	// zmq4 may finish its handshake and add the connection after the socket was
	// closed (its accept loop does not recheck); tracking every handed-over
	// connection lets Close close it anyway.
	l.mu.Lock()
	l.live[g] = struct{}{}
	l.mu.Unlock()
	g.onClose = func() {
		l.mu.Lock()
		delete(l.live, g)
		l.mu.Unlock()
		l.so.removePeer(id, g)
	}
	l.so.st.accepted.Add(1)
	return g, nil
}

// Close closes the listener, the connections in handshake and those handed to
// zmq4. Idempotent.
func (l *listener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	live := make([]*guard, 0, len(l.live))
	for g := range l.live {
		live = append(live, g)
	}
	l.mu.Unlock()
	for _, g := range live {
		g.Close()
	}
	return err
}
