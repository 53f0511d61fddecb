package wire

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
)

// EventKind says what happened to a Dealer's (or Sub's) connection.
type EventKind int

// Connection events, delivered on Events().
const (
	Connected   EventKind = iota + 1 // first connection established
	Lost                             // connection lost (peer died, closed, or Reconnect was called)
	Reconnected                      // a connection is established again after Lost
	DialFailed                       // a dial attempt failed (redial continues with backoff)
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Lost:
		return "lost"
	case Reconnected:
		return "reconnected"
	case DialFailed:
		return "dial_failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one connection state change.
type Event struct {
	Kind EventKind
	Err  error // cause for Lost and DialFailed
}

// client is the dial side shared by Dealer and Sub: it owns the zmq4 socket of the
// current connection, dials with exponential backoff, notices the loss of the peer
// (zmq4's Recv error after the peer's connection ends) and redials with a fresh
// zmq4 socket (zmq4's own reconnect gives up silently, trap 1).
//
// Goroutines: run (dial/redial loop, owns the socket's lifetime), one reader per
// connection, and for Dealer one writer for the socket's life.
type client struct {
	cfg     Config
	key     string
	st      counters
	ep      string
	zep     string
	newSock func(ctx context.Context, opts ...zmq4.Option) zmq4.Socket
	setup   func(zmq4.Socket) error

	in     chan [][]byte
	events chan Event
	kick   chan struct{}
	quit   chan struct{}
	wg     sync.WaitGroup

	sink  atomic.Pointer[Sink]               // Dealer.SetSink
	alloc atomic.Pointer[func(n int) []byte] // Dealer.SetAlloc

	mu        sync.Mutex // guards sock, conn, connected, everUp
	sock      zmq4.Socket
	conn      *guard // sock's connection, when known (a Dealer writes on it directly)
	connected bool
	up        chan struct{} // closed while connected; replaced on loss

	closeOnce sync.Once
}

// newClient starts the dial loop. With direct set, the guard of each
// connection delivers its messages to the receive queue itself (deliver.go).
func newClient(cfg Config, endpoint string, newSock func(context.Context, ...zmq4.Option) zmq4.Socket, setup func(zmq4.Socket) error, direct bool) (*client, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Identity) == 0 {
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		cfg.Identity = id
	}
	c := &client{
		cfg: cfg, ep: endpoint, newSock: newSock, setup: setup,
		in: make(chan [][]byte, cfg.RecvQueue), events: make(chan Event, 64),
		kick: make(chan struct{}, 1), quit: make(chan struct{}), up: make(chan struct{}),
	}
	var so *sockOpts
	c.key, so = register(&c.cfg, &c.st, "")
	if direct {
		so.sink, so.alloc = c.deliver, c.body
	}
	zep, err := zmqEndpoint(endpoint, c.key)
	if err != nil {
		unregister(c.key)
		return nil, err
	}
	c.zep = zep
	c.wg.Add(1)
	go c.run()
	return c, nil
}

func (c *client) emit(e Event) {
	select {
	case c.events <- e:
	default: // nobody listening: state is still visible through Connected()
	}
}

func (c *client) dial() (zmq4.Socket, *guard, error) {
	opts := append(socketOptions(&c.cfg), zmq4.WithID(zmq4.SocketIdentity(c.cfg.Identity)))
	s := c.newSock(context.Background(), opts...)
	err := zmqDial(s, c.zep)
	g := endDial(c.key, err != nil)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if c.setup != nil {
		if err := c.setup(s); err != nil {
			s.Close()
			return nil, nil, err
		}
	}
	return s, g, nil
}

// zmqDial runs zmq4's synchronous Dial (connect and ZMTP handshake). zmq4
// panics on a peer Socket-Type it does not know (SocketType.IsCompatible); that
// is the peer's fault, so it becomes an ErrHandshake error, not a crash.
func zmqDial(s zmq4.Socket, ep string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: zmq4 refused the peer's handshake: %v", ErrHandshake, r)
		}
	}()
	return s.Dial(ep)
}

func (c *client) run() {
	defer c.wg.Done()
	backoff := c.cfg.RedialMin
	everUp := false
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		s, g, err := c.dial()
		if err != nil {
			c.emit(Event{Kind: DialFailed, Err: err})
			select {
			case <-c.quit:
				return
			case <-c.kick:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, c.cfg.RedialMax)
			continue
		}
		backoff = c.cfg.RedialMin
		lost := make(chan error, 1)
		c.mu.Lock()
		c.sock, c.conn, c.connected = s, g, true
		close(c.up)
		c.mu.Unlock()
		if everUp {
			c.emit(Event{Kind: Reconnected})
		} else {
			c.emit(Event{Kind: Connected})
			everUp = true
		}
		var rwg sync.WaitGroup
		rwg.Add(1)
		go c.read(s, lost, &rwg)
		var cause error
		select {
		case <-c.quit:
		case cause = <-lost:
		case <-c.kick:
			cause = fmt.Errorf("wire: reconnect requested")
		}
		c.mu.Lock()
		c.sock, c.conn, c.connected = nil, nil, false
		c.up = make(chan struct{})
		c.mu.Unlock()
		s.Close()
		rwg.Wait()
		c.st.dropped.Add(drainZMQ(s))
		select {
		case <-c.quit:
			return
		default:
		}
		c.st.redials.Add(1)
		c.emit(Event{Kind: Lost, Err: cause})
	}
}

func (c *client) read(s zmq4.Socket, lost chan<- error, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		m, err := s.Recv()
		if err != nil {
			lost <- fmt.Errorf("wire: connection to %s lost: %w", c.ep, err)
			return
		}
		if c.sunk(m.Frames) { // zmq4's frame list: never reused
			continue
		}
		select {
		case c.in <- m.Frames:
			c.st.received.Add(1)
		case <-c.quit:
			c.st.dropped.Add(1)
			return
		}
	}
}

// sunk offers frames to the sink (SetSink) and reports whether it took them.
func (c *client) sunk(frames [][]byte) bool {
	f := c.sink.Load()
	if f == nil || !(*f)(frames, c.quit) {
		return false
	}
	c.st.received.Add(1)
	return true
}

// deliver queues a message a guard read itself (direct delivery). The frame
// list is reused when the sink took the message (it keeps only the bodies).
func (c *client) deliver(frames [][]byte) (reuse bool, err error) {
	if c.sunk(frames) {
		c.st.direct.Add(1)
		return true, nil
	}
	select {
	case c.in <- frames:
		c.st.received.Add(1)
		c.st.direct.Add(1)
		return false, nil
	case <-c.quit:
		c.st.dropped.Add(1)
		return false, errStopped
	}
}

// body returns storage for a received frame body of n bytes (direct
// delivery): from the allocator set by SetAlloc, else a new slice.
func (c *client) body(n int) []byte {
	if f := c.alloc.Load(); f != nil {
		if b := (*f)(n); len(b) == n {
			return b
		}
	}
	return make([]byte, n)
}

func (c *client) recv(ctx context.Context) ([][]byte, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.quit:
		return nil, ErrClosed
	}
}

func (c *client) waitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		up := c.up
		c.mu.Unlock()
		select {
		case <-up:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%w to %s: %w", ErrNotConnected, c.ep, ctx.Err())
		case <-c.quit:
			return ErrClosed
		}
	}
}

func (c *client) isConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

func (c *client) reconnect() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *client) close() {
	c.closeOnce.Do(func() {
		close(c.quit)
		c.wg.Wait()
		unregister(c.key)
	})
}

// Dealer is a DEALER connected to one peer (the broker, a producer's ROUTER),
// redialled with backoff whenever the connection is lost. Messages sent while
// disconnected fail with ErrNotConnected instead of vanishing (trap 1).
type Dealer struct {
	c     *client
	sendq chan [][]byte
}

// NewDealer returns a Dealer that connects to endpoint in the background (and
// again after every loss). It fails only on a bad endpoint.
func NewDealer(cfg Config, endpoint string) (*Dealer, error) {
	c, err := newClient(cfg, endpoint, zmq4.NewDealer, nil, true)
	if err != nil {
		return nil, err
	}
	d := &Dealer{c: c, sendq: make(chan [][]byte, c.cfg.PeerQueue)}
	c.wg.Add(1)
	go d.writeLoop()
	return d, nil
}

// Dial is NewDealer followed by WaitConnected(ctx); on failure the Dealer is closed.
func Dial(ctx context.Context, cfg Config, endpoint string) (*Dealer, error) {
	d, err := NewDealer(cfg, endpoint)
	if err != nil {
		return nil, err
	}
	if err := d.WaitConnected(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// writeLoop writes the queued messages: once zmq4's handshake has gone out on
// the connection (zmq4 then writes nothing there on its own), whatever is
// queued goes out in one direct write (no zmq4 goroutine or lock per
// message), else message by message through zmq4.
func (d *Dealer) writeLoop() {
	c := d.c
	defer c.wg.Done()
	var batch []outMsg
	for {
		select {
		case <-c.quit:
			return
		case frames := <-d.sendq:
			c.mu.Lock()
			s, g := c.sock, c.conn
			c.mu.Unlock()
			if s == nil {
				c.st.sendErrors.Add(1)
				continue
			}
			if g != nil && g.direct.Load() {
				batch = d.writeDirect(s, g, append(batch[:0], outMsg{frames: append([][]byte{nil}, frames...)}))
				continue
			}
			if err := s.SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
				c.st.sendErrors.Add(1)
				c.cfg.Logger.Debug("wire: dealer send", "err", err)
				continue
			}
			c.st.sent.Add(1)
		}
	}
}

// writeDirect adds what else is queued to batch (within the Router's batch
// bounds) and writes it on g at once (each message's first frame stands for
// the routing identity writeMsgs leaves out). It returns batch emptied.
func (d *Dealer) writeDirect(s zmq4.Socket, g *guard, batch []outMsg) []outMsg {
	c := d.c
	size := msgSize(batch[0].frames)
more:
	for len(batch) < maxBatch && size < batchBytes {
		select {
		case frames := <-d.sendq:
			batch = append(batch, outMsg{frames: append([][]byte{nil}, frames...)})
			size += msgSize(frames)
		default:
			break more
		}
	}
	err := g.writeMsgs(batch)
	switch {
	case err == nil:
		c.st.sent.Add(uint64(len(batch)))
	case errors.Is(err, errNotDirect):
		for _, m := range batch {
			if err := s.SendMulti(zmq4.NewMsgFrom(m.frames[1:]...)); err != nil {
				c.st.sendErrors.Add(1)
				c.cfg.Logger.Debug("wire: dealer send", "err", err)
			} else {
				c.st.sent.Add(1)
			}
		}
	default:
		c.st.sendErrors.Add(uint64(len(batch)))
		c.cfg.Logger.Debug("wire: dealer send", "err", err)
	}
	clear(batch)
	return batch[:0]
}

// Send queues a message without blocking: ErrNotConnected when there is no live
// connection, ErrQueueFull when PeerQueue messages are waiting, ErrTooLarge, or
// ErrClosed.
func (d *Dealer) Send(frames ...[]byte) error {
	select {
	case <-d.c.quit:
		return ErrClosed
	default:
	}
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	if size > d.c.cfg.MaxMessage || len(frames) > d.c.cfg.MaxFrames {
		return ErrTooLarge
	}
	if !d.c.isConnected() {
		return fmt.Errorf("%w to %s", ErrNotConnected, d.c.ep)
	}
	select {
	case d.sendq <- frames:
		return nil
	default:
		d.c.st.queueFull.Add(1)
		return ErrQueueFull
	}
}

// Sink takes received messages before the receive queue, on the goroutine
// that read them (no hand-off to a reader of Recv): it returns true when it
// took frames, false to queue them for Recv. When it returns true it keeps the
// frame bodies only: the list frames itself is reused for the next message.
// It may block while the owner cannot take a message yet, but must return
// once closed is closed (the Dealer is closing).
type Sink func(frames [][]byte, closed <-chan struct{}) bool

// SetSink installs fn (nil: none) for the messages received from now on.
func (d *Dealer) SetSink(fn Sink) {
	if fn == nil {
		d.c.sink.Store(nil)
		return
	}
	d.c.sink.Store(&fn)
}

// SetAlloc installs fn (nil: none) as the source of storage for the bodies
// of received frames over 64 bytes that the Dealer's connection assembles
// itself (every message once the handshake is done): fn(n) returns a slice
// of length n that nothing else uses (its content is overwritten; a result of
// another length is ignored and a new slice made). With it an owner that is
// done with a body can hand its storage to the next one (hub's receive buffer
// pool) instead of leaving every body to the garbage collector.
func (d *Dealer) SetAlloc(fn func(n int) []byte) {
	if fn == nil {
		d.c.alloc.Store(nil)
		return
	}
	d.c.alloc.Store(&fn)
}

// Recv returns the next message's frames, ctx's error, or ErrClosed.
func (d *Dealer) Recv(ctx context.Context) ([][]byte, error) { return d.c.recv(ctx) }

// Events delivers connection changes (buffered; when nobody reads, events are
// dropped and Connected() still tells the state).
func (d *Dealer) Events() <-chan Event { return d.c.events }

// Connected reports whether the Dealer has a live connection now.
func (d *Dealer) Connected() bool { return d.c.isConnected() }

// WaitConnected blocks until the Dealer is connected, ctx ends (ErrNotConnected
// wrapping ctx's error) or the Dealer is closed.
func (d *Dealer) WaitConnected(ctx context.Context) error { return d.c.waitConnected(ctx) }

// Reconnect drops the current connection (if any) and dials again at once. The
// Messenger calls it when its liveness probe of a silent peer times out: a
// stopped (not dead) peer never closes the TCP connection.
func (d *Dealer) Reconnect() { d.c.reconnect() }

// Identity returns the routing identity the peer's ROUTER sees.
func (d *Dealer) Identity() []byte { return d.c.cfg.Identity }

// Endpoint returns the endpoint the Dealer dials.
func (d *Dealer) Endpoint() string { return d.c.ep }

// Stats returns a snapshot of the socket's counters.
func (d *Dealer) Stats() Stats { return d.c.st.snapshot() }

// Close stops every goroutine and closes the socket. Idempotent, nil-safe.
func (d *Dealer) Close() error {
	if d == nil {
		return nil
	}
	d.c.close()
	return nil
}
