package hub

// Design of Producer and Consumer (the channel layer), beside the Messenger:
//
// Peer link. A consumer and its producer share one connection: the consumer's
// wire.Dealer (routing identity = its ConsumerIdentity.ID) to the producer's
// wire.Router. Control frames (HELLO, HELLO_ACK, BYE, PEER_HEARTBEAT, CREDIT and
// user types) and data frames travel on it in order (peer_proto.go). The channel
// registers DataEndpoint = CtrlEndpoint for PubSub/Pipeline and "" for Bidir.
// wire owns the zmq4 sockets (one writer goroutine per socket; our sends are
// queued through channels and never block); we run one receive goroutine per
// socket.
//
// Joining. Connect sends HELLO and returns once HELLO_ACK arrived. The producer
// counts a consumer joined when it handles HELLO, and only joined consumers get
// data; since HELLO_ACK and data share the ordered connection, nothing sent after
// the join is lost to the slow-joiner effect of PUB/SUB.
//
// Flow control. Each consumer grants a credit window (HELLO.window); every data
// message to it costs one credit; it returns credits (CREDIT) as its user consumes
// messages. PubSub Send waits until every joined consumer has credit; Pipeline
// Send picks one joined consumer with credit (round robin), so each message goes
// to exactly one consumer and a slow consumer gets fewer; both wait up to their
// deadline (backpressure) and then fail with ErrBackpressure / ErrNoConsumers.
// zmq4's PUSH (copies to every peer) and PUB (drops at its HWM) are not used.
//
// Goroutines. Producer: peerLoop (Router.Recv → HELLO/BYE/CREDIT/user types),
// tickLoop (prunes consumers silent for PeerTimeout, B-4), the callback goroutine
// while started, and with SHM the write goroutine while started (Push jobs or the
// real-time handler). Consumer: readLoop (Dealer.Recv → data queue / control),
// tickLoop (PEER_HEARTBEAT, unsent credits, redial events → HELLO again), the
// callback and data goroutines while started, and with SHM the read goroutine
// while started. Close stops all of them; Stop only the started ones.
//
// Locks. Producer.mu guards the consumer table, credits and the wake channel;
// Consumer.mu its credit counters and state. Neither is held while calling user
// code, the Messenger or blocking; wire sends are non-blocking. runMu (RW) orders
// Push against Stop so every accepted job runs before Stop returns.
//
// Dropped objects. Producer and Consumer are thin handles on an inner object that
// the goroutines use; a runtime.AddCleanup on the handle closes the inner object
// when the handle becomes unreachable without Close (so a dropped Consumer still
// sends BYE and deregisters). That happens after a garbage collection, not at
// once: call Close for determinism. A callback that captures the handle keeps it
// reachable.

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// cbQueue runs queued callbacks one at a time on its own goroutine, only between
// start and halt; what is submitted meanwhile waits (bounded; beyond it dropped
// and logged).
type cbQueue struct {
	log *slog.Logger
	q   chan func()

	mu   sync.Mutex // guards stop, done
	stop chan struct{}
	done chan struct{}
}

const maxQueuedPeerCallbacks = 4096

func newCBQueue(log *slog.Logger) *cbQueue {
	return &cbQueue{log: log, q: make(chan func(), maxQueuedPeerCallbacks)}
}

func (c *cbQueue) submit(what string, fn func()) {
	select {
	case c.q <- fn:
	default:
		c.log.Warn("hub: callback queue full, dropped", "callback", what)
	}
}

func (c *cbQueue) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		return
	}
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop(c.stop, c.done)
}

// halt stops the goroutine and waits for it (not from inside a callback).
func (c *cbQueue) halt() {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop, c.done = nil, nil
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (c *cbQueue) loop(stop, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case fn := <-c.q:
			safeCall(c.log, "peer callback", fn)
		}
	}
}

// safeCall runs fn, recovering and logging a panic.
func safeCall(log *slog.Logger, what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("hub: callback panicked", "callback", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}
