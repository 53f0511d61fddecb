package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/shm"
)

// ringReader is the consumer's ring reader: the attached DataBlock and its
// Reader (both nil when not attached), and the read transactions that run on
// them (Pull in the caller's goroutine, the real-time handler on the read
// goroutine of one Start..Stop). Transactions reach the peer link for SendCtrl.
type ringReader struct {
	name    string
	opts    *ConsumerOptions
	log     *slog.Logger
	m       *Messenger
	closing *atomic.Bool  // the consumer's: set first thing in Close
	link    *consumerLink // for ReadTxn.SendCtrl

	// cur is the attachment transactions use. A producer restart replaces it
	// (reattach): mu is held shared by every transaction and exclusively while
	// the old attachment is closed, and gen is cancelled first so that waiting
	// transactions end at once.
	cur    atomic.Pointer[ringAttach]
	mu     sync.RWMutex
	gen    atomic.Pointer[ringGen]
	lastHB atomic.Int64 // unix ns of the last explicit reader heartbeat

	handler atomic.Pointer[readHandler]
	kick    chan struct{}
}

// ringAttach is one attachment: the DataBlock and its Reader (both nil when
// not attached) and why not attached.
type ringAttach struct {
	block   *shm.Block
	reader  *shm.Reader
	err     error // nil when attached or not tried
	refused error // the ring already has the one reader it allows (Connect fails)
}

// ringGen ends the waits of the transactions on one attachment.
type ringGen struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newRingGen() *ringGen {
	ctx, cancel := context.WithCancel(context.Background())
	return &ringGen{ctx: ctx, cancel: cancel}
}

// newRingReader returns the (not yet attached) ring reader of c; c's peer link
// must be set.
func newRingReader(c *consumer) *ringReader {
	r := &ringReader{name: c.name, opts: &c.opts, log: c.log, m: c.m, closing: &c.closing,
		link: c.consumerLink, kick: make(chan struct{}, 1)}
	r.cur.Store(&ringAttach{})
	r.gen.Store(newRingGen())
	return r
}

// attach maps the DataBlock of info when the channel has one and a secret is
// given.
func (c *ringReader) attach(info ChannelInfo) {
	c.cur.Store(c.open(info))
}

func (c *ringReader) open(info ChannelInfo) *ringAttach {
	if !info.HasSharedMemory || c.opts.Secret == 0 || info.ShmName == "" {
		if info.HasSharedMemory {
			return &ringAttach{err: errors.New("no secret given")}
		}
		return &ringAttach{}
	}
	b, err := shm.Attach(info.ShmName, c.opts.Secret, &shm.AttachOptions{Expect: c.opts.ExpectSHM, Logger: c.opts.Logger})
	if err != nil {
		c.log.Warn("hub: shared memory not attached; continuing without it", "err", err)
		return &ringAttach{err: err}
	}
	if soleReader(info.Pattern, b.Sync()) {
		if err := b.LockSoleReader(); err != nil {
			b.Close()
			err = fmt.Errorf("%w (%s ring of a %s channel): %w", ErrRingReaderTaken, b.Sync(), info.Pattern, err)
			return &ringAttach{err: err, refused: err}
		}
	}
	r, err := b.NewReader(shm.ReaderOptions{UID: c.opts.UID, Name: c.opts.Name, Wait: c.opts.Wait})
	if err != nil {
		b.Close()
		c.log.Warn("hub: shared memory reader failed; continuing without it", "err", err)
		return &ringAttach{err: err}
	}
	return &ringAttach{block: b, reader: r}
}

// soleReader reports whether a ring of policy sync on a channel of pattern pat
// allows one reader only (doc.go, "Ring readers"): a Single_reader ring has one
// read cursor, and no ring can split its items among the consumers of a
// Pipeline channel (each would read every item).
func soleReader(pat Pattern, sync shm.SyncPolicy) bool {
	return pat == PatternPipeline || sync == shm.SingleReader
}

// reattach replaces the attachment by the DataBlock of info (a successor
// producer's segment): running transactions end (their waits fail as ErrNoSlot),
// the old Reader and mapping are closed, the new ones opened.
func (c *ringReader) reattach(info ChannelInfo) {
	c.gen.Load().cancel()
	c.mu.Lock()
	c.close(c.cur.Load())
	a := c.open(info)
	c.cur.Store(a)
	c.gen.Store(newRingGen())
	c.mu.Unlock()
	if a.refused != nil {
		c.log.Warn("hub: the successor's ring has its one reader already; continuing without it", "err", a.refused)
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *ringReader) close(a *ringAttach) {
	if a.reader != nil {
		a.reader.Close()
	}
	if a.block != nil {
		a.block.Close()
	}
}

// detach closes the attachment (Close: the Consumer is closing, so Pull and
// the read goroutine refuse to use it); transactions still waiting end first.
func (c *ringReader) detach() {
	c.gen.Load().cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.close(c.cur.Load())
}

// HasSHM reports whether the DataBlock is attached.
func (c *ringReader) HasSHM() bool { return c.cur.Load().block != nil }

// SHM returns the attached DataBlock (nil when not attached).
func (c *ringReader) SHM() *shm.Block { return c.cur.Load().block }

// SHMError says why the channel's DataBlock is not attached (nil when it is, or
// when the channel has none).
func (c *ringReader) SHMError() error { return c.cur.Load().err }

// ReadTxn is one read transaction on the attached DataBlock (datablock.md §13):
// Next refreshes the consumer heartbeat, releases the previous slot and acquires
// the next one by the block's sync policy. When the job returns nil a held slot
// is released (marked consumed); when it returns an error it is dropped. A
// ReadTxn is only valid inside its job.
type ReadTxn struct {
	c       *ringReader
	a       *ringAttach     // the attachment of this transaction
	user    context.Context // the caller's context (ctx also ends at a producer restart)
	ctx     context.Context
	timeout time.Duration
	slot    *shm.ReadSlot
	stop    <-chan struct{}
}

// Next releases the held slot and acquires the next, waiting at most the slot
// timeout (ErrNoSlot). If releasing the held slot fails (shm.ErrChecksum,
// shm.ErrOverwritten), that error is returned and no slot is acquired.
func (t *ReadTxn) Next() (*shm.ReadSlot, error) {
	hb := t.c.lastHB.Load()
	stepHeartbeat(&hb, t.a.reader.Heartbeat)
	if err := t.Release(); err != nil {
		t.c.lastHB.Store(hb)
		return nil, err
	}
	s, err := t.a.reader.AcquireRead(t.ctx, t.timeout)
	if err == nil {
		hb = refreshed // the acquisition refreshed the consumer heartbeat
	}
	t.c.lastHB.Store(hb)
	if err != nil {
		if errors.Is(err, shm.ErrTimeout) {
			return nil, fmt.Errorf("%w: %w", ErrNoSlot, err)
		}
		if t.ctx.Err() != nil && t.user.Err() == nil {
			return nil, fmt.Errorf("%w: the producer restarted (the DataBlock is re-attached)", ErrNoSlot)
		}
		return nil, err
	}
	t.slot = s
	return s, nil
}

// Slot returns the slot held now (nil when none).
func (t *ReadTxn) Slot() *shm.ReadSlot { return t.slot }

// Release releases the held slot now (marking it consumed) and returns the
// verdict: nil, shm.ErrChecksum or shm.ErrOverwritten. Nil when none is held.
func (t *ReadTxn) Release() error { return t.release((*shm.ReadSlot).Release) }

// Acknowledge releases the held slot like Release and returns the same verdict,
// but moves on even when the verdict is shm.ErrChecksum or shm.ErrOverwritten:
// under Single_reader and Sync_reader a slot that stays corrupted would otherwise
// be offered again forever (datablock.md §7.5), stalling the consumer. Use it when
// the application accepts losing a damaged slot; report the damage once
// (ReportChecksumError). Nil when none is held.
func (t *ReadTxn) Acknowledge() error { return t.release((*shm.ReadSlot).Acknowledge) }

// release lets go of the held slot with how (nil when none is held).
func (t *ReadTxn) release(how func(*shm.ReadSlot) error) error {
	if t.slot == nil {
		return nil
	}
	s := t.slot
	t.slot = nil
	return how(s)
}

// Drop gives the held slot back without marking it consumed.
func (t *ReadTxn) Drop() {
	if t.slot != nil {
		t.slot.Drop()
		t.slot = nil
	}
}

// Flex returns the flex zone (read-only by contract; nil when none).
func (t *ReadTxn) Flex() []byte { return t.a.block.Flex() }

// Stopping reports whether Stop (or Close) was called.
func (t *ReadTxn) Stopping() bool {
	if t.stop != nil {
		select {
		case <-t.stop:
			return true
		default:
		}
	}
	return t.c.closing.Load()
}

// Context returns the transaction's context.
func (t *ReadTxn) Context() context.Context { return t.ctx }

// SendCtrl sends a control message to the producer (Consumer.SendCtrl).
func (t *ReadTxn) SendCtrl(typ string, body []byte) error { return t.c.link.SendCtrl(typ, body) }

// Messenger returns the Consumer's Messenger.
func (t *ReadTxn) Messenger() *Messenger { return t.c.m }

// ReportChecksumError reports a slot's checksum failure to the broker.
func (t *ReadTxn) ReportChecksumError(slot int32, description string) error {
	return t.c.m.ReportChecksumError(t.c.name, slot, description)
}

var readTxnPool = sync.Pool{New: func() any { return new(ReadTxn) }}

func (c *ringReader) runRead(ctx context.Context, timeout time.Duration, stop <-chan struct{}, job func(*ReadTxn) error) (err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a := c.cur.Load()
	if a.reader == nil {
		return fmt.Errorf("read %q: %w", c.name, ErrNoSHM)
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.gen.Load().ctx, cancel)()
	t := readTxnPool.Get().(*ReadTxn)
	*t = ReadTxn{c: c, a: a, user: ctx, ctx: tctx, timeout: timeout, stop: stop}
	defer func() {
		*t = ReadTxn{}
		readTxnPool.Put(t)
	}()
	defer func() {
		if r := recover(); r != nil {
			t.Drop()
			err = fmt.Errorf("hub: read job panicked: %v", r)
		}
	}()
	if err := job(t); err != nil {
		t.Drop()
		return err
	}
	return t.Release()
}

type readHandler struct{ fn func(*ReadTxn) error }

// Pull runs job in the caller's goroutine inside a read transaction with slot
// timeout timeout (0 = SlotTimeout); it needs no Start. ErrNoSHM when not
// attached, ErrClosed after Close; otherwise the job's error or the release
// verdict of the slot it left held.
func (c *ringReader) Pull(ctx context.Context, timeout time.Duration, job func(*ReadTxn) error) error {
	if c.closing.Load() && c.HasSHM() {
		return fmt.Errorf("pull %q: %w", c.name, ErrClosed)
	}
	if !c.HasSHM() {
		return fmt.Errorf("pull %q: %w", c.name, ErrNoSHM)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if timeout == 0 {
		timeout = c.opts.SlotTimeout
	}
	return c.runRead(ctx, timeout, nil, job)
}

// SetReadHandler installs fn as the real-time read handler (nil removes it; the
// read goroutine then sleeps). While started, the read goroutine calls fn in a
// new transaction (slot timeout HandlerSlotTimeout) again and again; a swap takes
// effect at the next call. Errors other than ErrNoSlot are logged.
func (c *ringReader) SetReadHandler(fn func(*ReadTxn) error) error {
	if !c.HasSHM() {
		return fmt.Errorf("set read handler %q: %w", c.name, ErrNoSHM)
	}
	if fn == nil {
		c.handler.Store(nil)
	} else {
		c.handler.Store(&readHandler{fn})
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// readShmLoop is the read goroutine of one Start..Stop.
func (c *ringReader) readShmLoop(stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		select {
		case <-stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	defer func() { cancel(); <-watch }()
	for {
		select {
		case <-stop:
			return
		default:
		}
		h := c.handler.Load()
		if h == nil {
			select {
			case <-stop:
				return
			case <-c.kick:
			}
			continue
		}
		err := c.runRead(ctx, c.opts.HandlerSlotTimeout, stop, h.fn)
		if errors.Is(err, ErrNoSHM) { // not attached (a successor's segment failed): wait for the next attach
			select {
			case <-stop:
				return
			case <-c.kick:
			}
			continue
		}
		if err != nil && !errors.Is(err, ErrNoSlot) && ctx.Err() == nil {
			c.log.Warn("hub: read handler failed", "err", err)
		}
	}
}

// ReadCtx is a typed read transaction: slot type S, flex-zone type F.
type ReadCtx[F, S any] struct {
	*ReadTxn
}

// Slot acquires the next slot (ReadTxn.Next) and returns it as *S (read only).
func (c ReadCtx[F, S]) Slot() (*S, error) {
	s, err := c.Next()
	if err != nil {
		return nil, err
	}
	return shm.View[S](s.Bytes())
}

// FlexZone returns the flex zone as *F (nil when there is none).
func (c ReadCtx[F, S]) FlexZone() (*F, error) { return shm.View[F](c.Flex()) }

func typedRead[F, S any](job func(ReadCtx[F, S]) error) func(*ReadTxn) error {
	if job == nil {
		return nil
	}
	return func(t *ReadTxn) error { return job(ReadCtx[F, S]{t}) }
}

// PullTyped is Consumer.Pull with a typed job.
func PullTyped[F, S any](ctx context.Context, c *Consumer, timeout time.Duration, job func(ReadCtx[F, S]) error) error {
	return c.Pull(ctx, timeout, typedRead(job))
}

// SetReadHandlerTyped is Consumer.SetReadHandler with a typed handler.
func SetReadHandlerTyped[F, S any](c *Consumer, fn func(ReadCtx[F, S]) error) error {
	return c.SetReadHandler(typedRead(fn))
}
