package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/pylabhub/plh/internal/wire"
)

// Consumer is connected to a channel: its peer link to the producer, its broker
// registration, and when it could attach, the channel's DataBlock (spec/api.md
// §5). Create it with Connect; it is safe for concurrent use.
type Consumer struct {
	*consumer
}

// consumer is the object the goroutines hold. It composes the channel's two
// halves and owns what joins them: the broker registration and its callbacks,
// Start/Stop and Close.
type consumer struct {
	*consumerLink // Dealer to the producer, HELLO/BYE, credit, data messages (consumer_peer.go)
	*ringReader   // attached DataBlock and read transactions (consumer_shm.go)

	m     *Messenger
	opts  ConsumerOptions
	log   *slog.Logger
	name  string
	cbs   *cbQueue
	unsub []func()

	infoMu sync.Mutex
	info   ChannelInfo // guarded by infoMu; the successor's after a producer restart

	closing    atomic.Bool
	closedNote atomic.Bool // OnChannelClosing fired
	chClosed   atomic.Bool // the broker closed the channel (CHANNEL_CLOSING_NOTIFY)

	// The follower (consumer_follow.go): after the link was lost, it looks for
	// a successor producer and moves the consumer to it.
	followCtx    context.Context
	followCancel context.CancelFunc
	followWG     sync.WaitGroup

	// Structure remap (remap.go): the follower moves the ring reader to the
	// layout of remapWant when remapKick fires.
	remapMu   sync.Mutex
	remapWant RemapNotice // guarded by remapMu
	remapKick chan struct{}

	runMu   sync.Mutex // guards running, stopCh, done
	running bool
	stopCh  chan struct{}
	done    sync.WaitGroup // data and read goroutines of one Start

	closeOnce sync.Once
	closeErr  error
}

// Connect discovers channel opts.Channel, checks the schema hash, attaches the
// DataBlock when the channel has one and opts.Secret is set (a failed attach,
// e.g. a wrong secret, is not an error: HasSHM is false and SHMError says why;
// but a ring that already has the one reader it allows refuses the Consumer:
// ErrRingReaderTaken, see doc.go "Ring readers"),
// connects to the producer, registers as a consumer with the broker and says
// HELLO; it returns once the producer acknowledged (HELLO_ACK), so every message
// the producer sends afterwards reaches it.
func Connect(ctx context.Context, m *Messenger, opts ConsumerOptions) (*Consumer, error) {
	opts = opts.withDefaults()
	name := opts.Channel
	const op = "connect consumer"
	if name == "" {
		return nil, fmt.Errorf("%s: %w: empty channel name", op, ErrInvalidArgument)
	}
	if m == nil {
		return nil, fmt.Errorf("%s %q: %w: nil Messenger", op, name, ErrInvalidArgument)
	}
	if err := validGroup(opts.Group); err != nil {
		return nil, fmt.Errorf("%s %q: %w: %w", op, name, ErrInvalidArgument, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, opts.Timeout)
	defer cancel()
	info, err := m.Discover(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if len(opts.ExpectedSchemaHash) > 0 && len(info.SchemaHash) == 32 && !bytes.Equal(opts.ExpectedSchemaHash, info.SchemaHash) {
		return nil, fmt.Errorf("%s %q: %w: channel has %s", op, name, ErrSchemaMismatch, info.SchemaHashHex)
	}
	if err := checkExpectedSchema(opts.ExpectedSchema, info.Schema); err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if info.CtrlEndpoint == "" {
		return nil, fmt.Errorf("%s %q: %w: channel has no peer endpoint", op, name, ErrBadReply)
	}
	if err := checkGroup(opts, info); err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	c := &consumer{m: m, opts: opts, log: opts.Logger.With("channel", name), name: name, info: info, remapKick: make(chan struct{}, 1)}
	c.cbs = newCBQueue(c.log)
	c.consumerLink = newConsumerLink(c)
	c.ringReader = newRingReader(c)
	c.attach(info)
	if refused := c.cur.Load().refused; refused != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, refused)
	}
	wcfg := opts.Wire
	if len(wcfg.Identity) == 0 {
		wcfg.Identity = newIdentity()
	}
	if wcfg.Security, err = consumerSecurity(opts, info); err != nil {
		c.detach()
		return nil, fmt.Errorf("%s %q: peer socket: %w", op, name, err)
	}
	d, err := wire.NewDealer(wcfg, info.CtrlEndpoint)
	if err != nil {
		c.detach()
		return nil, fmt.Errorf("%s %q: peer socket: %w", op, name, err)
	}
	c.setDealer(d)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.readLoop()
	fail := func(err error) (*Consumer, error) {
		c.consumerLink.stop()
		c.detach()
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if err := c.waitLink(ctx, d); err != nil {
		return fail(err)
	}
	c.wg.Add(1)
	go c.tickLoop() // after waitLink: from here on tickLoop reads the Dealer's events
	c.unsub = []func(){
		m.OnChannelClosing(name, c.onClosing),
		m.OnChannelError(name, c.onError),
		m.OnChannelEvent(name, c.onError),
		m.OnChannelEvent(name, c.onRemapNotice),
	}
	// Without a broker (brokerless discovery) the peer link is the only tie.
	if err := c.registerWithBroker(ctx); err != nil {
		c.log.Warn("hub: consumer registration failed (continuing)", "err", err)
	}
	if err := c.hello(); err != nil {
		c.unsubscribe()
		c.deregister()
		return fail(err)
	}
	select {
	case <-c.acked:
		if c.groupRefused.Load() {
			c.unsubscribe()
			c.deregister()
			return fail(fmt.Errorf("%w: the producer did not confirm group %q (it predates consumer groups)", ErrGroupUnsupported, opts.Group))
		}
	case <-ctx.Done():
		c.unsubscribe()
		c.deregister()
		return fail(fmt.Errorf("%w: no HELLO_ACK from the producer: %w", ErrTimeout, ctx.Err()))
	}
	c.startFollower()
	if info.HasSharedMemory && !m.idle() {
		c.kickRemap(RemapNotice{}) // a remap between our discovery and registration sent us no notice (remap.go)
	}
	c.log.Info("hub: consumer connected", "pattern", info.Pattern, "shm", c.HasSHM())
	h := &Consumer{c}
	runtime.AddCleanup(h, func(c *consumer) { c.close() }, c)
	return h, nil
}

// checkGroup refuses a consumer group where it cannot split the stream.
func checkGroup(opts ConsumerOptions, info ChannelInfo) error {
	switch {
	case opts.Group == "":
		return nil
	case info.Pattern == PatternBidir:
		return fmt.Errorf("%w: group %q: a Bidir consumer talks to its producer alone", ErrWrongPattern, opts.Group)
	}
	return nil
}

// Channel returns the channel name.
func (c *consumer) Channel() string { return c.name }

// Info returns what discovery said about the channel.
// After a producer restart it describes the successor.
func (c *consumer) Info() ChannelInfo {
	c.infoMu.Lock()
	defer c.infoMu.Unlock()
	return c.info
}

// Pattern returns the channel's pattern.
func (c *consumer) Pattern() Pattern { return c.consumerLink.info.Pattern }

// Messenger returns the Consumer's Messenger.
func (c *consumer) Messenger() *Messenger { return c.m }

// Valid reports whether the Consumer is usable (false for nil or closed).
func (c *Consumer) Valid() bool { return c != nil && c.consumer != nil && !c.closing.Load() }

// Start starts the callback goroutine (queued producer messages first), the data
// goroutine when OnData is set, and with SHM the read goroutine (read handler).
func (c *consumer) Start() error {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.closing.Load() {
		return fmt.Errorf("start %q: %w", c.name, ErrClosed)
	}
	if c.running {
		return fmt.Errorf("start %q: %w", c.name, ErrRunning)
	}
	c.running = true
	c.stopCh = make(chan struct{})
	c.cbs.start()
	if fn := c.opts.Callbacks.OnData; fn != nil {
		c.done.Add(1)
		go c.dataLoop(fn, c.stopCh, &c.done)
	}
	if c.HasSHM() {
		c.done.Add(1)
		go c.readShmLoop(c.stopCh, &c.done)
	}
	return nil
}

// Stop stops the goroutines Start started (the read goroutine at once, a read
// handler after its current call). Idempotent.
func (c *consumer) Stop() {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if !c.running {
		return
	}
	c.running = false
	close(c.stopCh)
	c.done.Wait()
	c.cbs.halt()
}

// Running reports whether the Consumer is started.
func (c *consumer) Running() bool {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	return c.running
}

// Close stops the Consumer, deregisters it (CONSUMER_DEREG_REQ), says BYE to the
// producer and detaches the DataBlock (freeing its heartbeat entry). Idempotent
// and nil-safe.
func (c *Consumer) Close() error {
	if c == nil || c.consumer == nil {
		return nil
	}
	return c.consumer.close()
}

func (c *consumer) close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.stopFollower()
		c.Stop()
		c.unsubscribe()
		if err := c.deregister(); err != nil {
			c.closeErr = fmt.Errorf("close consumer %q: %w", c.name, err)
		}
		c.bye()
		c.drain()
		c.consumerLink.stop()
		c.detach()
		c.log.Info("hub: consumer closed")
	})
	return c.closeErr
}

func (c *consumer) unsubscribe() {
	for _, u := range c.unsub {
		u()
	}
}

func (c *consumer) deregister() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	err := c.m.DeregisterConsumer(ctx, c.name)
	if err != nil && (errors.Is(err, ErrNotConnected) || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotRegistered)) {
		return nil
	}
	return err
}

// Broker callbacks (Messenger goroutine).

// onClosing fires OnChannelClosing once (see producer.onClosing).
func (c *consumer) onClosing(reason string) {
	c.chClosed.Store(true) // a closed channel is not followed
	if c.closing.Load() || c.opts.Callbacks.OnChannelClosing == nil || !c.closedNote.CompareAndSwap(false, true) {
		return
	}
	c.opts.Callbacks.OnChannelClosing(reason)
}

func (c *consumer) onError(n ChannelNotice) {
	if c.closing.Load() || c.opts.Callbacks.OnChannelError == nil {
		return
	}
	c.opts.Callbacks.OnChannelError(n)
}
