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
	info    ChannelInfo
	opts    *ConsumerOptions
	log     *slog.Logger
	m       *Messenger
	closing *atomic.Bool  // the consumer's: set first thing in Close
	link    *consumerLink // for ReadTxn.SendCtrl

	block   *shm.Block                 // nil when not attached
	rd      atomic.Pointer[shm.Reader] // nil when not attached; replaced by reattach
	rmu     sync.Mutex                 // serialises reattach and detach
	shmErr  error                      // why not attached (nil when attached or not tried)
	refused error                      // the ring already has the one reader it allows (Connect fails)
	lastHB  atomic.Int64               // unix ns of the last explicit reader heartbeat
	health  *ringHealth                // ring faults and their notices (ring_health.go)
	// delivered is 1 + the newest slot id acquired; fresh is a replacement
	// Reader (reattach) until it acquires a slot not delivered before.
	delivered atomic.Uint64
	fresh     atomic.Pointer[shm.Reader]

	handler atomic.Pointer[readHandler]
	kick    chan struct{}
}

// newRingReader returns the (not yet attached) ring reader of c; c's peer link
// must be set.
func newRingReader(c *consumer) *ringReader {
	notify := func(n ChannelNotice) { c.m.disp.submit(n.Event, func() { c.onError(n) }) }
	return &ringReader{name: c.name, info: c.info, opts: &c.opts, log: c.log, m: c.m, closing: &c.closing,
		link: c.consumerLink, kick: make(chan struct{}, 1), health: newRingHealth(c.name, c.opts.RingErrorEvery, c.log, notify)}
}

// attach maps the DataBlock when the channel has one and a secret is given.
func (c *ringReader) attach() {
	if !c.info.HasSharedMemory || c.opts.Secret == 0 || c.info.ShmName == "" {
		if c.info.HasSharedMemory {
			c.shmErr = errors.New("no secret given")
		}
		return
	}
	b, err := shm.Attach(c.info.ShmName, c.opts.Secret, &shm.AttachOptions{Expect: c.opts.ExpectSHM,
		RequireChecksum: c.opts.RequireChecksum, Logger: c.opts.Logger})
	if err != nil {
		c.shmErr = err
		c.log.Warn("hub: shared memory not attached; continuing without it", "err", err)
		return
	}
	if soleReader(c.info.Pattern, b.Sync()) {
		if err := b.LockSoleReader(); err != nil {
			b.Close()
			c.refused = fmt.Errorf("%w (%s ring of a %s channel): %w", ErrRingReaderTaken, b.Sync(), c.info.Pattern, err)
			return
		}
	}
	r, err := b.NewReader(c.readerOptions())
	if err != nil {
		b.Close()
		c.shmErr = err
		c.log.Warn("hub: shared memory reader failed; continuing without it", "err", err)
		return
	}
	c.block = b
	c.rd.Store(r)
}

func (c *ringReader) readerOptions() shm.ReaderOptions {
	return shm.ReaderOptions{UID: c.opts.UID, Name: c.opts.Name, Wait: c.opts.Wait}
}

// reattach replaces lost, a Reader whose heartbeat entry was taken over
// (cause wraps shm.ErrEntryLost), by a new Reader on the same Block (the
// sole-reader lock stays held) and returns the Reader to use. When another
// transaction replaced lost already, that Reader is returned. The new Reader
// is made before lost is closed (lost's entry is not ours any more and is left
// alone); when none can be made (no free heartbeat entry), lost stays and the
// fault is reported (EventRingError).
func (c *ringReader) reattach(lost *shm.Reader, cause error) (*shm.Reader, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	switch cur := c.rd.Load(); {
	case cur == nil || c.closing.Load():
		return nil, fmt.Errorf("reattach %q: %w", c.name, ErrClosed)
	case cur != lost:
		return cur, nil
	}
	r, err := c.block.NewReader(c.readerOptions())
	if err == nil && r.Entry() < 0 {
		r.Close()
		err = shm.ErrNoConsumerEntry
	}
	if err != nil {
		c.health.observe(cause)
		return nil, fmt.Errorf("reattach %q: %w (after %w)", c.name, err, cause)
	}
	c.fresh.Store(r)
	c.rd.Store(r)
	lost.Close()
	c.health.reattachedAfter(cause)
	return r, nil
}

// soleReader reports whether a ring of policy sync on a channel of pattern pat
// allows one reader only (doc.go, "Ring readers"): a Single_reader ring has one
// read cursor, and no ring can split its items among the consumers of a
// Pipeline channel (each would read every item).
func soleReader(pat Pattern, sync shm.SyncPolicy) bool {
	return pat == PatternPipeline || sync == shm.SingleReader
}

func (c *ringReader) detach() {
	c.rmu.Lock()
	r := c.rd.Swap(nil)
	c.rmu.Unlock()
	r.Close() // nil-safe
	if c.block != nil {
		c.block.Close()
	}
}

// HasSHM reports whether the DataBlock is attached.
func (c *ringReader) HasSHM() bool { return c.block != nil }

// SHM returns the attached DataBlock (nil when not attached).
func (c *ringReader) SHM() *shm.Block { return c.block }

// SHMError says why the channel's DataBlock is not attached (nil when it is, or
// when the channel has none).
func (c *ringReader) SHMError() error { return c.shmErr }

// CheckSegment checks the attached DataBlock (shm.Block.Check) and repairs
// nothing: header, indices, slot states, locks and consumers held by dead
// processes, and the checksums of committed slots. ErrNoSHM when not attached;
// shm.ErrClosed after Close.
func (c *ringReader) CheckSegment() (shm.CheckReport, error) {
	if c.block == nil {
		return shm.CheckReport{Name: c.info.ShmName}, fmt.Errorf("check segment %q: %w", c.name, ErrNoSHM)
	}
	return c.block.Check(false)
}

// RingStats returns the ring-fault counters (doc.go, "Ring faults").
func (c *ringReader) RingStats() RingStats { return c.health.stats() }

// ReadTxn is one read transaction on the attached DataBlock (datablock.md §13):
// Next refreshes the consumer heartbeat, releases the previous slot and acquires
// the next one by the block's sync policy. When the job returns nil a held slot
// is released (marked consumed); when it returns an error it is dropped. A
// ReadTxn is only valid inside its job.
type ReadTxn struct {
	c       *ringReader
	r       *shm.Reader // the Reader of this transaction (replaced by reattach)
	ctx     context.Context
	timeout time.Duration
	slot    *shm.ReadSlot
	stop    <-chan struct{}
}

// Next releases the held slot and acquires the next, waiting at most the slot
// timeout (ErrNoSlot). If releasing the held slot fails (shm.ErrChecksum,
// shm.ErrOverwritten), that error is returned and no slot is acquired.
// shm.ErrCorrupt (a scribbled control zone) comes at once and is also reported
// through OnChannelError (EventRingError). A Reader that lost its heartbeat
// entry (shm.ErrEntryLost) is replaced and the acquisition made again on the
// new one (EventRingReattached).
func (t *ReadTxn) Next() (*shm.ReadSlot, error) {
	hb := t.c.lastHB.Load()
	stepHeartbeat(&hb, t.r.Heartbeat)
	if err := t.Release(); err != nil {
		t.c.lastHB.Store(hb)
		return nil, err
	}
	s, err := t.acquire()
	if errors.Is(err, shm.ErrEntryLost) {
		var r *shm.Reader
		if r, err = t.c.reattach(t.r, err); err == nil {
			t.r = r
			s, err = t.acquire()
		}
	}
	if err == nil {
		hb = refreshed // the acquisition refreshed the consumer heartbeat
	}
	t.c.lastHB.Store(hb)
	if err != nil {
		if errors.Is(err, shm.ErrTimeout) {
			return nil, fmt.Errorf("%w: %w", ErrNoSlot, err)
		}
		t.c.health.observe(err)
		return nil, err
	}
	t.slot = s
	return s, nil
}

// acquire acquires the next slot on t.r. A replacement Reader (reattach)
// first passes over the slots this Consumer already delivered (releasing them
// moves its position on): it joins where the lost Reader was, or later, so
// nothing is delivered twice.
func (t *ReadTxn) acquire() (*shm.ReadSlot, error) {
	s, err := t.r.AcquireRead(t.ctx, t.timeout)
	for n := 0; err == nil && t.c.fresh.Load() == t.r; n++ {
		if s.ID() >= t.c.delivered.Load() || n > maxPassOver {
			t.c.fresh.CompareAndSwap(t.r, nil)
			break
		}
		_ = s.Release()
		s, err = t.r.AcquireRead(t.ctx, t.timeout)
	}
	if err == nil {
		t.c.markDelivered(s.ID())
	}
	return s, err
}

// markDelivered raises delivered to id+1 (never lowers it).
func (c *ringReader) markDelivered(id uint64) {
	for {
		d := c.delivered.Load()
		if d > id || c.delivered.CompareAndSwap(d, id+1) {
			return
		}
	}
}

// maxPassOver bounds how many delivered slots a replacement Reader passes over
// (more than a ring holds).
const maxPassOver = 1 << 16

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

// release lets go of the held slot with how (nil when none is held). A
// verdict of shm.ErrEntryLost means the slot's data was sound but the Reader
// lost its heartbeat entry meanwhile: the Reader is replaced (it passes over
// the slot) and the verdict is nil.
func (t *ReadTxn) release(how func(*shm.ReadSlot) error) error {
	if t.slot == nil {
		return nil
	}
	s := t.slot
	t.slot = nil
	err := how(s)
	if errors.Is(err, shm.ErrEntryLost) {
		r, rerr := t.c.reattach(t.r, err)
		if rerr != nil {
			return rerr
		}
		t.r = r
		return nil
	}
	return err
}

// Drop gives the held slot back without marking it consumed.
func (t *ReadTxn) Drop() {
	if t.slot != nil {
		t.slot.Drop()
		t.slot = nil
	}
}

// Flex returns the flex zone (read-only by contract; nil when none).
func (t *ReadTxn) Flex() []byte { return t.c.block.Flex() }

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
	t := readTxnPool.Get().(*ReadTxn)
	r := c.rd.Load()
	if r == nil {
		readTxnPool.Put(t)
		return fmt.Errorf("read %q: %w", c.name, ErrClosed)
	}
	*t = ReadTxn{c: c, r: r, ctx: ctx, timeout: timeout, stop: stop}
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
	if c.block == nil {
		return fmt.Errorf("pull %q: %w", c.name, ErrNoSHM)
	}
	if c.closing.Load() {
		return fmt.Errorf("pull %q: %w", c.name, ErrClosed)
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
// effect at the next call. Errors other than ErrNoSlot are logged; after a ring
// fault the goroutine pauses first (doc.go "Ring faults").
func (c *ringReader) SetReadHandler(fn func(*ReadTxn) error) error {
	if c.block == nil {
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
	// A ring fault comes back at once: after a transaction that met one (or
	// replaced the Reader) the loop pauses (bounded exponential backoff, cut
	// short by Stop).
	var bo ringBackoff
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
		before := c.health.events()
		if err := c.runRead(ctx, c.opts.HandlerSlotTimeout, stop, h.fn); err != nil && !errors.Is(err, ErrNoSlot) && !isRingFault(err) && ctx.Err() == nil {
			c.log.Warn("hub: read handler failed", "err", err)
		}
		bo.after(c.health, before, stop)
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
