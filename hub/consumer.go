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
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/shm"
)

// Consumer is connected to a channel: its peer link to the producer, its broker
// registration, and when it could attach, the channel's DataBlock (spec/api.md
// §5). Create it with Connect; it is safe for concurrent use.
type Consumer struct {
	*consumer
}

type consumer struct {
	m      *Messenger
	opts   ConsumerOptions
	log    *slog.Logger
	name   string
	info   ChannelInfo
	d      *wire.Dealer
	block  *shm.Block  // nil when not attached
	reader *shm.Reader // nil when not attached
	shmErr error       // why not attached (nil when attached or not tried)
	cbs    *cbQueue
	unsub  []func()

	data      chan []byte   // data messages for Recv / OnData
	acked     chan struct{} // closed at the first HELLO_ACK
	ackOne    sync.Once
	byeAcked  chan struct{} // closed at BYE_ACK
	byeAckOne sync.Once

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent       atomic.Uint64 // messages accepted by Dealer.Send
	dropped    atomic.Uint64
	owed       atomic.Int64 // consumed messages whose credit is not returned yet
	byeOnce    sync.Once
	closing    atomic.Bool
	lastHB     atomic.Int64 // unix ns of the last explicit reader heartbeat
	closedNote atomic.Bool  // OnChannelClosing fired
	producerB  atomic.Bool  // the producer said BYE; written under peerEndMu
	producerL  atomic.Bool  // OnProducerLost decided; written under peerEndMu
	peerEndMu  sync.Mutex   // orders the BYE and lost decisions (consumer_lost.go)

	runMu   sync.Mutex // guards running, stopCh, done
	running bool
	stopCh  chan struct{}
	done    sync.WaitGroup // data and read goroutines of one Start
	handler atomic.Pointer[readHandler]
	kick    chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Connect discovers channel opts.Channel, checks the schema hash, attaches the
// DataBlock when the channel has one and opts.Secret is set (a failed attach,
// e.g. a wrong secret, is not an error: HasSHM is false and SHMError says why),
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
	ctx, cancel := withDefaultTimeout(ctx, opts.Timeout)
	defer cancel()
	info, err := m.Discover(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if len(opts.ExpectedSchemaHash) > 0 && len(info.SchemaHash) == 32 && !bytes.Equal(opts.ExpectedSchemaHash, info.SchemaHash) {
		return nil, fmt.Errorf("%s %q: %w: channel has %s", op, name, ErrSchemaMismatch, info.SchemaHashHex)
	}
	if info.CtrlEndpoint == "" {
		return nil, fmt.Errorf("%s %q: %w: channel has no peer endpoint", op, name, ErrBadReply)
	}
	c := &consumer{m: m, opts: opts, log: opts.Logger.With("channel", name), name: name, info: info,
		data: make(chan []byte, opts.Window+16), acked: make(chan struct{}), byeAcked: make(chan struct{}), kick: make(chan struct{}, 1)}
	c.cbs = newCBQueue(c.log)
	c.attach()
	wcfg := opts.Wire
	if len(wcfg.Identity) == 0 {
		wcfg.Identity = newIdentity()
	}
	if wcfg.Security, err = consumerSecurity(opts, info); err != nil {
		c.detach()
		return nil, fmt.Errorf("%s %q: peer socket: %w", op, name, err)
	}
	c.d, err = wire.NewDealer(wcfg, info.CtrlEndpoint)
	if err != nil {
		c.detach()
		return nil, fmt.Errorf("%s %q: peer socket: %w", op, name, err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.readLoop()
	fail := func(err error) (*Consumer, error) {
		c.cancel()
		c.d.Close()
		c.wg.Wait()
		c.detach()
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	if err := c.waitLink(ctx, c.d); err != nil {
		return fail(err)
	}
	c.wg.Add(1)
	go c.tickLoop() // after waitLink: from here on tickLoop reads the Dealer's events
	c.unsub = []func(){
		m.OnChannelClosing(name, c.onClosing),
		m.OnChannelError(name, c.onError),
		m.OnChannelEvent(name, c.onError),
	}
	if err := m.RegisterConsumer(ctx, name); err != nil {
		c.log.Warn("hub: consumer registration failed (continuing)", "err", err)
	}
	if err := c.hello(); err != nil {
		c.unsubscribe()
		c.deregister()
		return fail(err)
	}
	select {
	case <-c.acked:
	case <-ctx.Done():
		c.unsubscribe()
		c.deregister()
		return fail(fmt.Errorf("%w: no HELLO_ACK from the producer: %w", ErrTimeout, ctx.Err()))
	}
	c.log.Info("hub: consumer connected", "pattern", info.Pattern, "shm", c.block != nil)
	h := &Consumer{c}
	runtime.AddCleanup(h, func(c *consumer) { c.close() }, c)
	return h, nil
}

func newIdentity() []byte {
	id := make([]byte, 16)
	if _, err := randRead(id); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return id
}

// attach maps the DataBlock when the channel has one and a secret is given.
func (c *consumer) attach() {
	if !c.info.HasSharedMemory || c.opts.Secret == 0 || c.info.ShmName == "" {
		if c.info.HasSharedMemory {
			c.shmErr = errors.New("no secret given")
		}
		return
	}
	b, err := shm.Attach(c.info.ShmName, c.opts.Secret, &shm.AttachOptions{Expect: c.opts.ExpectSHM, Logger: c.opts.Logger})
	if err != nil {
		c.shmErr = err
		c.log.Warn("hub: shared memory not attached; continuing without it", "err", err)
		return
	}
	r, err := b.NewReader(shm.ReaderOptions{UID: c.opts.UID, Name: c.opts.Name, Wait: c.opts.Wait})
	if err != nil {
		b.Close()
		c.shmErr = err
		c.log.Warn("hub: shared memory reader failed; continuing without it", "err", err)
		return
	}
	c.block, c.reader = b, r
}

func (c *consumer) detach() {
	if c.reader != nil {
		c.reader.Close()
	}
	if c.block != nil {
		c.block.Close()
	}
}

func (c *consumer) hello() error {
	self := proc.Self()
	hb := int64(0)
	if c.opts.PeerHeartbeat > 0 {
		hb = max(c.opts.PeerHeartbeat.Milliseconds(), 1)
	}
	body := mustJSON(helloBody{ConsumerPid: c.m.Pid(), ConsumerStartTime: startTimeFor(c.m, self), ConsumerUID: c.opts.UID,
		ConsumerName: c.opts.Name, Window: c.opts.Window, HeartbeatMs: hb})
	return c.send(proto.ControlFrames(TypeHello, body)...)
}

// startTimeFor is the start time sent in HELLO: ours unless the Messenger acts as
// another process.
func startTimeFor(m *Messenger, self proc.Identity) uint64 {
	if id := m.cfg.Identity; id.Pid != self.Pid {
		return id.StartTime
	}
	return self.StartTime
}

func (c *consumer) send(frames ...[]byte) error {
	if err := c.d.Send(frames...); err != nil {
		return err
	}
	c.sent.Add(1)
	return nil
}

// Channel returns the channel name.
func (c *consumer) Channel() string { return c.name }

// Info returns what discovery said about the channel.
func (c *consumer) Info() ChannelInfo { return c.info }

// Pattern returns the channel's pattern.
func (c *consumer) Pattern() Pattern { return c.info.Pattern }

// HasSHM reports whether the DataBlock is attached.
func (c *consumer) HasSHM() bool { return c.block != nil }

// SHM returns the attached DataBlock (nil when not attached).
func (c *consumer) SHM() *shm.Block { return c.block }

// SHMError says why the channel's DataBlock is not attached (nil when it is, or
// when the channel has none).
func (c *consumer) SHMError() error { return c.shmErr }

// Identity returns the routing identity the producer knows this consumer by.
func (c *consumer) Identity() []byte { return c.d.Identity() }

// Messenger returns the Consumer's Messenger.
func (c *consumer) Messenger() *Messenger { return c.m }

// Valid reports whether the Consumer is usable (false for nil or closed).
func (c *Consumer) Valid() bool { return c != nil && c.consumer != nil && !c.closing.Load() }

// ProducerGone reports whether the producer said BYE (closed its channel).
func (c *consumer) ProducerGone() bool { return c.producerB.Load() }

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
		go c.dataLoop(fn, c.stopCh)
	}
	if c.reader != nil {
		c.done.Add(1)
		go c.readShmLoop(c.stopCh)
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
		c.Stop()
		c.unsubscribe()
		if err := c.deregister(); err != nil {
			c.closeErr = fmt.Errorf("close consumer %q: %w", c.name, err)
		}
		c.bye()
		c.drain()
		c.cancel()
		c.d.Close()
		c.wg.Wait()
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

func (c *consumer) bye() {
	c.byeOnce.Do(func() {
		if err := c.send(proto.ControlFrames(TypeBye, nil)...); err != nil {
			c.log.Debug("hub: BYE not sent", "err", err)
		}
	})
}

// drain waits up to 500 ms for the producer's BYE_ACK (the read goroutine keeps
// reading meanwhile, so nothing is left unread when the connection closes), or,
// when the link is down, until the Dealer wrote what we queued.
func (c *consumer) drain() {
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	if c.d.Connected() {
		select {
		case <-c.byeAcked:
			return
		case <-t.C:
			return
		}
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		st := c.d.Stats()
		if st.Sent+st.SendErrors >= c.sent.Load() || !c.d.Connected() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Broker callbacks (Messenger goroutine).

// onClosing fires OnChannelClosing once (see producer.onClosing).
func (c *consumer) onClosing(reason string) {
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
