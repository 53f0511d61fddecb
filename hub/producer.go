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

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/shm"
)

// Producer owns a channel: its registration with the broker, its peer socket, and
// optionally its DataBlock (spec/api.md §4). Create it with NewProducer; it is
// safe for concurrent use. See channel.go for the design.
type Producer struct {
	*producer
}

// producer is the object the goroutines hold (see "Dropped objects"). It
// composes the channel's two halves and owns what joins them: the broker
// registration and its callbacks, Start/Stop and Close.
type producer struct {
	*producerLink // peer ROUTER, joined consumers, HELLO/BYE, credit (producer_peer.go)
	*ringWriter   // DataBlock and write transactions; block nil without SHM (producer_shm.go)

	m     *Messenger
	opts  ProducerOptions
	log   *slog.Logger
	name  string
	pat   Pattern
	cbs   *cbQueue
	unsub []func()
	rec   *recordFile // the discovery record (nil without a DiscoveryDir; discovery_file.go)

	standalone bool       // no broker (discovery_file.go); Remap needs one
	remapOp    sync.Mutex // one Remap at a time (remap.go)

	closing    atomic.Bool // set first thing in Close: suppresses broker callbacks
	closedNote atomic.Bool // OnChannelClosing fired

	closeOnce sync.Once
	closeErr  error
}

// NewProducer creates channel opts.Channel: the DataBlock first (when opts.SHM is
// set), then the peer socket, then the broker registration; any failure undoes
// what was done (the segment is removed). ErrNotConnected without a broker
// (unless the Messenger has a DiscoveryDir and never connected: the producer
// then runs standalone, announced by its discovery record only; doc.go
// "Without a broker"),
// ErrSchemaMismatch when the channel exists with another schema. With SHM, a
// segment of the channel's name owned by a live process is never touched: the
// error wraps shm.ErrSegmentInUse (naming that process), and ErrSchemaMismatch
// too when the owner registered another schema, which the broker then tells the
// owner (CHANNEL_ERROR_NOTIFY); see producer_conflict.go.
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
	if _, err := ParseSlowConsumerPolicy(string(opts.SlowConsumer)); err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	standalone, err := m.standalone() // no broker: the discovery record only (discovery_file.go)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	p := &producer{m: m, opts: opts, log: opts.Logger.With("channel", name), name: name, pat: opts.Pattern, standalone: standalone}
	p.cbs = newCBQueue(p.log)
	var block *shm.Block
	if opts.SHM != nil {
		cfg := *opts.SHM
		if cfg.Logger == nil {
			cfg.Logger = opts.Logger
		}
		sweepRemapSegments(name, p.log) // left by a producer killed during a remap (remap.go)
		b, err := shm.Create(name, cfg)
		if errors.Is(err, shm.ErrSegmentInUse) {
			rctx, rcancel := withDefaultTimeout(ctx, opts.Timeout)
			err = refuseInUse(rctx, m, name, opts, err)
			rcancel()
		}
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", op, name, err)
		}
		block = b
	}
	undo := func() {
		if block != nil {
			block.Close()
		}
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
	p.producerLink = newProducerLink(p, r)
	p.ringWriter = newRingWriter(p, block)
	info := ProducerInfo{SchemaHash: opts.SchemaHash, SchemaVersion: opts.SchemaVersion, Schema: opts.Schema, HasSharedMemory: block != nil,
		Pattern: p.pat, CtrlEndpoint: r.Endpoint(), PubKey: r.PublicKey()}
	if block != nil {
		info.ShmName = name
	}
	if p.pat != PatternBidir {
		info.DataEndpoint = r.Endpoint()
	}
	p.producerLink.start()
	// Broker callbacks before registering, so no notification is missed.
	p.unsub = []func(){
		m.OnChannelClosing(name, p.onClosing),
		m.OnConsumerDied(name, p.onDied),
		m.OnChannelError(name, p.onError),
		m.OnChannelEvent(name, p.onError),
	}
	if !standalone {
		rctx, rcancel := withDefaultTimeout(ctx, opts.Timeout)
		err = m.RegisterProducer(rctx, name, info)
		rcancel()
	}
	if err == nil {
		if p.rec, err = publishRecord(m, name, info, standalone); err != nil && !standalone {
			uctx, ucancel := withDefaultTimeout(context.Background(), opts.Timeout)
			_ = m.UnregisterChannel(uctx, name)
			ucancel()
		}
	}
	if err != nil {
		p.producerLink.stop()
		undo()
		return nil, fmt.Errorf("%s %q: %w", op, name, err)
	}
	p.log.Info("hub: producer created", "pattern", p.pat, "shm", block != nil, "endpoint", r.Endpoint(), "curve", sec != nil, "standalone", standalone)
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

// Messenger returns the Messenger the channel is registered with.
func (p *producer) Messenger() *Messenger { return p.m }

// Valid reports whether the Producer is usable (false for nil or closed).
func (p *Producer) Valid() bool { return p != nil && p.producer != nil && p.producer.Valid() }

// Valid reports whether the producer is not closed.
func (p *producer) Valid() bool { return !p.producerLink.isClosed() }

// ChannelStats are a channel's peer counters.
type ChannelStats struct {
	Consumers int    // joined consumers now
	Sent      uint64 // peer messages queued for sending
	Dropped   uint64 // malformed peer messages dropped
	Skipped   uint64 // PubSub deliveries skipped for lack of credit (deadline, or SlowConsumerDrop)
	// Missed (consumer side): items the producer skipped for this consumer under
	// SlowConsumerDrop, as its GAP messages said (OnMissed).
	Missed uint64
	// Consumer side: Restarts counts producer restarts followed (the consumer
	// moved to a successor producer, OnProducerRestarted); Rejoins counts the
	// producer's REJOIN requests answered with a new HELLO (OnRejoined).
	Restarts, Rejoins uint64
	// Redelivered (producer side): items a consumer group member left or died
	// holding unacknowledged, delivered again to another member (B-7).
	Redelivered uint64
}

// Start delivers peer callbacks (those queued first) and, with SHM, starts the
// write goroutine (Push jobs, or the write handler). ErrRunning when running,
// ErrClosed after Close.
func (p *producer) Start() error {
	return p.ringWriter.start(p.Valid, p.cbs.start)
}

// Stop stops delivering peer callbacks and stops the write goroutine: in queue
// mode after every accepted Push job ran, in real-time mode after the current
// handler call returned. Idempotent. Broker heartbeats continue (they belong to
// the Messenger).
func (p *producer) Stop() {
	if p.ringWriter.stop() {
		p.cbs.halt()
	}
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
		p.rec.remove()
		p.producerLink.close()
		if err := p.ringWriter.close(); err != nil && p.closeErr == nil {
			p.closeErr = fmt.Errorf("close producer %q: %w", p.name, err)
		}
		p.log.Info("hub: producer closed")
	})
	return p.closeErr
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
