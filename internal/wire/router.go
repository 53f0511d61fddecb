package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Msg is one message received by a Router: the sender's routing identity and the
// frames after it.
type Msg struct {
	Peer   []byte
	Frames [][]byte
}

// Router is a bound ZeroMQ ROUTER socket with a bounded send queue per peer.
//
// Goroutines: one reader (zmq4 Recv → the receive channel) and, per peer with
// queued messages, one sender that drains that peer's queue (writing what is
// queued in one batch) and exits when it has been empty for senderLinger. zmq4 serialises ROUTER writes to all peers behind one mutex (its
// routerMWriter holds it during the network write), so sends to different peers
// cannot proceed concurrently inside zmq4; what bounds the damage of a stuck peer
// is the guard's write deadline (SendTimeout): the stuck peer's write fails, its
// connection is dropped, and the other senders proceed. Meanwhile Send never
// blocks: it only appends to the peer's bounded queue.
type Router struct {
	cfg  Config
	key  string
	so   *sockOpts
	st   counters
	sock zmq4.Socket
	ep   string

	in   chan Msg
	quit chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards peers, closed
	peers  map[string]chan outMsg
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// Listen binds a ROUTER to endpoint (tcp://host:port, port 0 = ephemeral, or
// ipc://path) and starts its reader.
func Listen(cfg Config, endpoint string) (*Router, error) {
	cfg = cfg.withDefaults()
	r := &Router{cfg: cfg, in: make(chan Msg, cfg.RecvQueue), quit: make(chan struct{}), peers: map[string]chan outMsg{}}
	r.key, r.so = register(&r.cfg, &r.st, zmq4.Router)
	zep, err := zmqEndpoint(endpoint, r.key)
	if err != nil {
		unregister(r.key)
		return nil, err
	}
	r.sock = zmq4.NewRouter(context.Background(), socketOptions(&r.cfg)...)
	if err := r.sock.Listen(zep); err != nil {
		r.sock.Close()
		unregister(r.key)
		return nil, fmt.Errorf("wire: listen %s: %w", endpoint, err)
	}
	r.ep = publicEndpoint(r.sock.Addr())
	r.wg.Add(1)
	go r.readLoop()
	return r, nil
}

// socketOptions are the zmq4 options every socket gets: a short send timeout
// (trap 3), no zmq4 auto-reconnect (trap 1; wire redials itself), no dial retries
// (a Dial fails fast), zmq4's logger silenced into ours.
func socketOptions(cfg *Config) []zmq4.Option {
	return []zmq4.Option{
		zmq4.WithTimeout(cfg.SendTimeout),
		zmq4.WithDialerTimeout(cfg.HandshakeTimeout),
		zmq4.WithDialerMaxRetries(0),
		zmq4.WithAutomaticReconnect(false),
		zmq4.WithLogger(newStdLogger(cfg.Logger)),
	}
}

// Endpoint returns the bound endpoint with the real port (tcp://127.0.0.1:41235).
func (r *Router) Endpoint() string { return r.ep }

// PublicKey returns the Security's public key ("" for NULL).
func (r *Router) PublicKey() string {
	if r.cfg.Security == nil {
		return ""
	}
	return r.cfg.Security.PublicKey()
}

// Stats returns a snapshot of the socket's counters.
func (r *Router) Stats() Stats { return r.st.snapshot() }

func (r *Router) readLoop() {
	defer r.wg.Done()
	for {
		m, err := r.sock.Recv()
		if err != nil {
			select {
			case <-r.quit:
				return
			default:
			}
			// A per-connection error (peer gone) surfaces here on some paths;
			// the socket itself stays usable.
			r.st.recvErrors.Add(1)
			r.cfg.Logger.Debug("wire: router recv", "err", err)
			continue
		}
		if len(m.Frames) < 1 {
			r.st.dropped.Add(1)
			continue
		}
		msg := Msg{Peer: m.Frames[0], Frames: m.Frames[1:]}
		select {
		case r.in <- msg:
			r.st.received.Add(1)
		case <-r.quit:
			r.st.dropped.Add(1)
			return
		}
	}
}

// Recv returns the next message, or ctx's error, or ErrClosed.
func (r *Router) Recv(ctx context.Context) (Msg, error) {
	select {
	case m := <-r.in:
		return m, nil
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	case <-r.quit:
		return Msg{}, ErrClosed
	}
}

// outMsg is one queued message: the peer's identity and the frames, and who to
// tell when they are no longer needed.
type outMsg struct {
	frames [][]byte
	rel    Releaser
}

// Releaser is told by SendRelease when the Router no longer needs a message's
// frames.
type Releaser interface{ Release() }

// SendRelease is Send for frames the caller wants back (a pooled buffer): once
// the message has been written (or its write failed) the Router calls
// rel.Release, after which it keeps no reference to the frames. When it
// returns an error the Router kept no reference and will not call Release; a
// message still queued when the Router closes is dropped without Release (its
// frames are left to the garbage collector).
func (r *Router) SendRelease(peer []byte, rel Releaser, frames ...[]byte) error {
	return r.enqueue(peer, rel, frames)
}

// Send queues frames for peer without blocking. It returns ErrQueueFull when the
// peer's queue holds PeerQueue messages (the message is dropped and counted),
// ErrTooLarge when the message breaks the limits, ErrClosed after Close. A message
// for a peer that is no longer connected is dropped silently by zmq4.
func (r *Router) Send(peer []byte, frames ...[]byte) error {
	return r.enqueue(peer, nil, frames)
}

func (r *Router) enqueue(peer []byte, rel Releaser, frames [][]byte) error {
	size := 0
	for _, f := range frames {
		size += len(f)
	}
	if size > r.cfg.MaxMessage || len(frames)+1 > r.cfg.MaxFrames {
		return ErrTooLarge
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	q, ok := r.peers[string(peer)]
	if !ok {
		q = make(chan outMsg, r.cfg.PeerQueue)
		r.peers[string(peer)] = q
		r.wg.Add(1)
		go r.sendLoop(string(peer), q)
	}
	all := make([][]byte, 0, len(frames)+1)
	all = append(all, peer)
	all = append(all, frames...)
	select {
	case q <- outMsg{frames: all, rel: rel}:
		return nil
	default:
		r.st.queueFull.Add(1)
		return ErrQueueFull
	}
}

// sendLoop drains one peer's queue. It lingers for senderLinger to twice that
// after the queue ran empty (a peer streaming messages keeps its sender, rather
// than costing a goroutine per message; the idle timer is re-armed once per
// period, not per batch), then exits, checked under r.mu so Send either sees
// the queue gone or this loop sees the new message. It takes whatever is
// queued (up to maxBatch messages or batchBytes) and writes it to the peer's
// connection in one network write (send).
func (r *Router) sendLoop(peer string, q chan outMsg) {
	defer r.wg.Done()
	var batch []outMsg
	idle := time.NewTimer(senderLinger)
	defer idle.Stop()
	busy := false
	for {
		select {
		case <-r.quit:
			return
		case m := <-q:
			batch = r.send(peer, gather(append(batch[:0], m), q))
			busy = true
		case <-idle.C:
			if busy {
				busy = false
				idle.Reset(senderLinger)
				continue
			}
			r.mu.Lock()
			if len(q) == 0 {
				delete(r.peers, peer)
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			idle.Reset(senderLinger)
		}
	}
}

// senderLinger is how long a peer's sender waits for more messages before it
// exits.
const senderLinger = 200 * time.Millisecond

// Batch bounds of one network write of a Router.
const (
	maxBatch   = 256
	batchBytes = 256 << 10
)

// gather appends to batch what q holds now, within the batch bounds.
func gather(batch []outMsg, q chan outMsg) []outMsg {
	size := msgSize(batch[0].frames)
	for len(batch) < maxBatch && size < batchBytes {
		select {
		case m := <-q:
			batch = append(batch, m)
			size += msgSize(m.frames)
		default:
			return batch
		}
	}
	return batch
}

func msgSize(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

// send writes batch (each message: the peer's identity, then its frames) to
// peer: directly on its connection once zmq4's handshake there is done (one
// write for the batch, no zmq4 goroutine or lock per message), else message by
// message through zmq4. Both are done with the frames when they return, so the
// messages' Releasers run then. It returns batch emptied, references cleared.
func (r *Router) send(peer string, batch []outMsg) []outMsg {
	sent := false
	if g := r.so.directPeer(peer); g != nil {
		err := g.writeMsgs(batch)
		switch {
		case err == nil:
			r.st.sent.Add(uint64(len(batch)))
			sent = true
		case !errors.Is(err, errNotDirect):
			r.st.sendErrors.Add(uint64(len(batch)))
			r.cfg.Logger.Debug("wire: router send", "err", err)
			sent = true
		}
	}
	for _, m := range batch {
		if !sent {
			if err := r.sock.SendMulti(zmq4.NewMsgFrom(m.frames...)); err != nil {
				r.st.sendErrors.Add(1)
				r.cfg.Logger.Debug("wire: router send", "err", err)
			} else {
				r.st.sent.Add(1)
			}
		}
		if m.rel != nil {
			m.rel.Release()
		}
	}
	clear(batch)
	return batch[:0]
}

// Close stops the reader and senders and closes the socket. Queued messages are
// dropped. Idempotent, nil-safe.
func (r *Router) Close() error {
	if r == nil {
		return nil
	}
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		close(r.quit)
		r.mu.Unlock()
		closeListeners(r.key) // accept nothing more before zmq4 drops the connections
		r.closeErr = r.sock.Close()
		r.wg.Wait()
		r.st.dropped.Add(drainZMQ(r.sock))
		unregister(r.key)
	})
	return r.closeErr
}

// drainZMQ empties zmq4's internal receive queue after Close so no zmq4 reader
// goroutine stays blocked on a full queue (notes/zmq4.md trap 7). After Close,
// Recv picks at random between the cancelled context and a queued message, so a
// bounded number of calls empties the 10-slot queue. It returns the number of
// messages it discarded (counted as Stats.Dropped).
func drainZMQ(s zmq4.Socket) uint64 {
	var n uint64
	for range 64 {
		if _, err := s.Recv(); err == nil {
			n++
		}
	}
	return n
}
