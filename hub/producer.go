package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/shm"
)

// Producer owns a channel: its registration with the broker, its peer socket, and
// optionally its DataBlock (spec/api.md §4). Create it with NewProducer; it is
// safe for concurrent use. See channel.go for the design.
type Producer struct {
	*producer
}

// producer is the object the goroutines hold (see "Dropped objects").
type producer struct {
	m     *Messenger
	opts  ProducerOptions
	log   *slog.Logger
	name  string
	pat   Pattern
	r     *wire.Router
	block *shm.Block // nil without SHM
	cbs   *cbQueue
	unsub []func()

	ctx    context.Context // cancelled by Close: ends Router.Recv
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent    atomic.Uint64 // messages accepted by Router.Send (for the close drain)
	dropped atomic.Uint64 // malformed peer messages
	skipped atomic.Uint64 // PubSub deliveries skipped at the deadline

	mu         sync.Mutex // guards peers, order, rr, wake, closed
	peers      map[string]*peerState
	order      []*peerState // join order (round robin)
	rr         int
	wake       chan struct{} // closed and replaced when credits or membership change
	closed     bool
	closing    atomic.Bool // set first thing in Close: suppresses broker callbacks
	closedNote atomic.Bool // OnChannelClosing fired

	runMu   sync.RWMutex // orders Push against Stop; guards running, stopCh
	running bool
	stopCh  chan struct{} // closed by Stop
	drainCh chan struct{} // closed by Stop once no Push can add a job
	wdone   chan struct{} // closed when the write goroutine exits

	jobs    chan func(*WriteTxn) error
	handler atomic.Pointer[writeHandler]
	kick    chan struct{} // handler changed
	writers chan *pooledWriter

	closeOnce sync.Once
	closeErr  error
}

// peerState is one joined consumer. Guarded by producer.mu.
type peerState struct {
	id       ConsumerIdentity
	key      string
	credit   int
	window   int
	hb       time.Duration // announced heartbeat period (0 = none)
	lastSeen time.Time
}

// NewProducer creates channel opts.Channel: the DataBlock first (when opts.SHM is
// set), then the peer socket, then the broker registration; any failure undoes
// what was done (the segment is removed). ErrNotConnected without a broker,
// ErrSchemaMismatch when the channel exists with another schema.
func NewProducer(ctx context.Context, m *Messenger, opts ProducerOptions) (*Producer, error) {
	opts = opts.withDefaults()
	name := opts.Channel
	const op = "create producer"
	if name == "" {
		return nil, fmt.Errorf("%s: %w: empty channel name", op, ErrInvalidArgument)
	}
	if m == nil {
		return nil, fmt.Errorf("%s %q: %w: nil Messenger", op, name, ErrInvalidArgument)
	}
	if !m.Connected() {
		return nil, fmt.Errorf("%s %q: %w", op, name, ErrNotConnected)
	}
	p := &producer{m: m, opts: opts, log: opts.Logger.With("channel", name), name: name, pat: opts.Pattern,
		peers: map[string]*peerState{}, wake: make(chan struct{}), kick: make(chan struct{}, 1),
		jobs: make(chan func(*WriteTxn) error, 1024), writers: make(chan *pooledWriter, 4)}
	p.cbs = newCBQueue(p.log)
	undo := func() {
		if p.r != nil {
			p.r.Close()
		}
		if p.block != nil {
			p.block.Close()
		}
	}
	if opts.SHM != nil {
		cfg := *opts.SHM
		if cfg.Logger == nil {
			cfg.Logger = opts.Logger
		}
		b, err := shm.Create(name, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", op, name, err)
		}
		p.block = b
	}
	wcfg := opts.Wire
	sec, err := opts.peerSecurity()
	if err != nil {
		undo()
		return nil, fmt.Errorf("%s %q: peer socket: %w", op, name, err)
	}
	wcfg.Security = sec
	r, err := wire.Listen(wcfg, opts.Endpoint)
	if err != nil {
		undo()
		return nil, fmt.Errorf("%s %q: peer socket: %w", op, name, err)
	}
	p.r = r
	info := ProducerInfo{SchemaHash: opts.SchemaHash, SchemaVersion: opts.SchemaVersion, HasSharedMemory: p.block != nil,
		Pattern: p.pat, CtrlEndpoint: r.Endpoint(), PubKey: r.PublicKey()}
	if p.block != nil {
		info.ShmName = name
	}
	if p.pat != PatternBidir {
		info.DataEndpoint = r.Endpoint()
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(2)
	go p.peerLoop()
	go p.tickLoop()
	// Broker callbacks before registering, so no notification is missed.
	p.unsub = []func(){
		m.OnChannelClosing(name, p.onClosing),
		m.OnConsumerDied(name, p.onDied),
		m.OnChannelError(name, p.onError),
		m.OnChannelEvent(name, p.onError),
	}
	rctx, rcancel := withDefaultTimeout(ctx, opts.Timeout)
	err = m.RegisterProducer(rctx, name, info)
	rcancel()
	if err != nil {
		p.stopCore()
		undo()
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	p.log.Info("hub: producer created", "pattern", p.pat, "shm", p.block != nil, "endpoint", r.Endpoint(), "curve", sec != nil)
	h := &Producer{p}
	runtime.AddCleanup(h, func(p *producer) { p.close() }, p)
	return h, nil
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// Channel returns the channel name.
func (p *producer) Channel() string { return p.name }

// Pattern returns the channel's pattern.
func (p *producer) Pattern() Pattern { return p.pat }

// HasSHM reports whether the channel has a DataBlock.
func (p *producer) HasSHM() bool { return p.block != nil }

// SHM returns the DataBlock (nil without one). IMPORTANT: it is closed by Close.
func (p *producer) SHM() *shm.Block { return p.block }

// Endpoint returns the bound peer endpoint.
func (p *producer) Endpoint() string { return p.r.Endpoint() }

// Messenger returns the Messenger the channel is registered with.
func (p *producer) Messenger() *Messenger { return p.m }

// Valid reports whether the Producer is usable (false for nil or closed).
func (p *Producer) Valid() bool { return p != nil && p.producer != nil && p.producer.Valid() }

// Valid reports whether the producer is not closed.
func (p *producer) Valid() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed
}

// ChannelStats are a channel's peer counters.
type ChannelStats struct {
	Consumers int    // joined consumers now
	Sent      uint64 // peer messages queued for sending
	Dropped   uint64 // malformed peer messages dropped
	Skipped   uint64 // PubSub deliveries skipped for lack of credit at the deadline
}

// Stats returns the channel's counters.
func (p *producer) Stats() ChannelStats {
	p.mu.Lock()
	n := len(p.order)
	p.mu.Unlock()
	return ChannelStats{Consumers: n, Sent: p.sent.Load(), Dropped: p.dropped.Load(), Skipped: p.skipped.Load()}
}

// Start delivers peer callbacks (those queued first) and, with SHM, starts the
// write goroutine (Push jobs, or the write handler). ErrRunning when running,
// ErrClosed after Close.
func (p *producer) Start() error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	if !p.Valid() {
		return fmt.Errorf("start %q: %w", p.name, ErrClosed)
	}
	if p.running {
		return fmt.Errorf("start %q: %w", p.name, ErrRunning)
	}
	p.running = true
	p.stopCh, p.drainCh, p.wdone = make(chan struct{}), make(chan struct{}), make(chan struct{})
	p.cbs.start()
	if p.block != nil {
		go p.writeLoop(p.stopCh, p.drainCh, p.wdone)
	} else {
		close(p.wdone)
	}
	return nil
}

// Stop stops delivering peer callbacks and stops the write goroutine: in queue
// mode after every accepted Push job ran, in real-time mode after the current
// handler call returned. Idempotent. Broker heartbeats continue (they belong to
// the Messenger).
func (p *producer) Stop() {
	p.runMu.RLock()
	running, stopCh := p.running, p.stopCh
	p.runMu.RUnlock()
	if !running {
		return
	}
	select {
	case <-stopCh:
	default:
		close(stopCh) // wakes Push callers blocked on a full queue
	}
	p.runMu.Lock()
	if !p.running {
		p.runMu.Unlock()
		return
	}
	p.running = false
	close(p.drainCh)
	wdone := p.wdone
	p.runMu.Unlock()
	<-wdone
	p.cbs.halt()
}

// Running reports whether the Producer is started.
func (p *producer) Running() bool {
	p.runMu.RLock()
	defer p.runMu.RUnlock()
	return p.running
}

// Close stops the Producer, says BYE to its consumers, unregisters the channel
// (DEREG_REQ; the name can be registered again at once) and removes the
// DataBlock. Idempotent and nil-safe; returns the first error.
func (p *Producer) Close() error {
	if p == nil || p.producer == nil {
		return nil
	}
	return p.producer.close()
}

func (p *producer) close() error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		p.Stop()
		for _, u := range p.unsub {
			u()
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
		err := p.m.UnregisterChannel(ctx, p.name)
		if err != nil && !errors.Is(err, ErrNotConnected) && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotRegistered) {
			p.closeErr = fmt.Errorf("close producer %q: %w", p.name, err)
		}
		cancel()
		p.mu.Lock()
		p.closed = true
		peers := append([]*peerState(nil), p.order...)
		p.order, p.peers = nil, map[string]*peerState{}
		close(p.wake)
		p.wake = make(chan struct{})
		p.mu.Unlock()
		for _, ps := range peers {
			p.send(ps.id.ID, proto.ControlFrames(TypeBye, nil)...)
		}
		p.drain()
		p.stopCore()
		for {
			select {
			case w := <-p.writers:
				w.w.Close()
				continue
			default:
			}
			break
		}
		if p.block != nil {
			if err := p.block.Close(); err != nil && p.closeErr == nil {
				p.closeErr = fmt.Errorf("close producer %q: %w", p.name, err)
			}
		}
		p.log.Info("hub: producer closed")
	})
	return p.closeErr
}

// drain waits (up to CloseDrain) until the Router wrote what we queued.
func (p *producer) drain() {
	deadline := time.Now().Add(p.opts.CloseDrain)
	for time.Now().Before(deadline) {
		st := p.r.Stats()
		if st.Sent+st.SendErrors >= p.sent.Load() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.log.Warn("hub: close: peer messages still queued after the drain time")
}

// stopCore ends the peer goroutines and closes the socket.
func (p *producer) stopCore() {
	p.cancel()
	p.r.Close()
	p.wg.Wait()
}

// send queues frames for one consumer and counts them.
func (p *producer) send(id []byte, frames ...[]byte) error {
	if err := p.r.Send(id, frames...); err != nil {
		return err
	}
	p.sent.Add(1)
	return nil
}

// Broker callbacks (Messenger goroutine).

// onClosing fires OnChannelClosing once: the broker has forgotten the channel
// (a Messenger that both produces and consumes it hears the notice twice).
func (p *producer) onClosing(reason string) {
	if p.closing.Load() || p.opts.Callbacks.OnChannelClosing == nil || !p.closedNote.CompareAndSwap(false, true) {
		return
	}
	p.opts.Callbacks.OnChannelClosing(reason)
}

func (p *producer) onDied(pid uint64, reason string) {
	if p.closing.Load() {
		return
	}
	p.dropPid(pid)
	if fn := p.opts.Callbacks.OnConsumerDied; fn != nil {
		fn(pid, reason)
	}
}

func (p *producer) onError(n ChannelNotice) {
	if p.closing.Load() || p.opts.Callbacks.OnChannelError == nil {
		return
	}
	p.opts.Callbacks.OnChannelError(n)
}
