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
	// (followProducer): mu is held shared by every transaction and exclusively
	// while the old attachment is closed, and gen is cancelled first so that
	// waiting transactions end at once. Within one attachment a Reader that
	// lost its heartbeat entry is replaced alone (replaceReader).
	cur    atomic.Pointer[ringAttach]
	mu     sync.RWMutex
	gen    atomic.Pointer[ringGen]
	lastHB atomic.Int64 // unix ns of the last explicit reader heartbeat
	health *ringHealth  // ring faults and their notices, of every attachment (ring_health.go)

	handler atomic.Pointer[readHandler]
	kick    chan struct{}
	moveMu  sync.Mutex // serialises the steps of a structure remap (remap.go); taken before mu
}

// ringAttach is one attachment: the DataBlock and its Reader (both nil when
// not attached) and why not attached. It is used through its pointer only.
type ringAttach struct {
	shmName string                     // the segment's name (ChannelInfo.ShmName)
	block   *shm.Block                 // nil when not attached
	rd      atomic.Pointer[shm.Reader] // nil when not attached or closed; replaced by replaceReader
	rmu     sync.Mutex                 // serialises replaceReader and close
	err     error                      // nil when attached or not tried
	refused error                      // the ring already has the one reader it allows (Connect fails)
	// delivered is 1 + the newest slot id acquired on this ring; fresh is a
	// replacement Reader (replaceReader) until it acquires a slot not
	// delivered before.
	delivered atomic.Uint64
	fresh     atomic.Pointer[shm.Reader]
	// Structure remap (remap.go): layout is the attached layout generation;
	// next is set when the channel moved to another layout (the ring's waits
	// are ended then: c.gen cancelled); drained when a transaction found the
	// old ring empty after that; moved once the reader left this attachment.
	layout  uint64
	next    atomic.Pointer[remapTarget]
	drained atomic.Bool
	moved   atomic.Bool
	// grp is the consumer group membership on the ring (ConsumerOptions.Group;
	// consumer_group_shm.go); rd is then its Reader, and reads go through grp.
	grp *shm.GroupReader
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
	notify := func(n ChannelNotice) { c.m.disp.submit(n.Event, func() { c.onError(n) }) }
	r := &ringReader{name: c.name, opts: &c.opts, log: c.log, m: c.m, closing: &c.closing,
		link: c.consumerLink, kick: make(chan struct{}, 1), health: newRingHealth(c.name, c.opts.RingErrorEvery, c.log, notify)}
	r.cur.Store(&ringAttach{})
	r.gen.Store(newRingGen())
	return r
}

// attach maps the DataBlock of info when the channel has one and a secret is
// given.
func (c *ringReader) attach(info ChannelInfo) {
	c.cur.Store(c.open(info))
}

// open maps the DataBlock of info (checked against ExpectSHM and
// RequireChecksum), takes the sole-reader lock where the ring allows one
// reader, and registers a Reader.
func (c *ringReader) open(info ChannelInfo) *ringAttach {
	a := &ringAttach{shmName: info.ShmName, layout: info.LayoutGeneration}
	if !info.HasSharedMemory || c.opts.Secret == 0 || info.ShmName == "" {
		if info.HasSharedMemory {
			a.err = errors.New("no secret given")
		}
		return a
	}
	b, err := shm.Attach(info.ShmName, c.opts.Secret, &shm.AttachOptions{Expect: c.opts.ExpectSHM,
		RequireChecksum: c.opts.RequireChecksum, Logger: c.opts.Logger})
	if err != nil {
		c.log.Warn("hub: shared memory not attached; continuing without it", "err", err)
		a.err = err
		return a
	}
	if c.opts.Group != "" {
		return c.openGroup(a, b) // consumer_group_shm.go
	}
	if soleReader(info.Pattern, b.Sync()) {
		if err := b.LockSoleReader(); err != nil {
			b.Close()
			a.err = fmt.Errorf("%w (%s ring of a %s channel): %w", ErrRingReaderTaken, b.Sync(), info.Pattern, err)
			a.refused = a.err
			return a
		}
	}
	r, err := b.NewReader(c.readerOptions())
	if err != nil {
		b.Close()
		c.log.Warn("hub: shared memory reader failed; continuing without it", "err", err)
		a.err = err
		return a
	}
	a.block = b
	a.rd.Store(r)
	return a
}

func (c *ringReader) readerOptions() shm.ReaderOptions {
	return shm.ReaderOptions{UID: c.opts.UID, Name: c.opts.Name, Wait: c.opts.Wait}
}

// soleReader reports whether a ring of policy sync on a channel of pattern pat
// allows one reader only (doc.go, "Ring readers"): a Single_reader ring has one
// read cursor, and no ring can split its items among the consumers of a
// Pipeline channel (each would read every item).
func soleReader(pat Pattern, sync shm.SyncPolicy) bool {
	return pat == PatternPipeline || sync == shm.SingleReader
}

// followProducer replaces the whole attachment by the DataBlock of info (a
// successor producer's segment, or the segment of a remapped layout):
// running transactions end (their waits fail as ErrNoSlot), the old Reader
// and mapping are closed, the new ones opened.
func (c *ringReader) followProducer(info ChannelInfo) {
	old := c.cur.Load()
	a := c.replaceAttach(func() *ringAttach { return c.open(info) })
	if old.layout > 0 {
		// A producer restart away from a remapped layout: that segment's
		// name is nobody's to replace, so the last to leave it removes it
		// (only when its every owner is dead; remap.go).
		sweepRemapSegments(c.name, c.log)
	}
	if a.refused != nil {
		c.log.Warn("hub: the successor's ring has its one reader already; continuing without it", "err", a.refused)
	}
}

// replaceAttach replaces the whole attachment by the one open returns (called
// with no transaction running) and wakes the read goroutine.
func (c *ringReader) replaceAttach(open func() *ringAttach) *ringAttach {
	c.gen.Load().cancel()
	c.mu.Lock()
	c.cur.Load().close()
	a := open()
	c.cur.Store(a)
	c.gen.Store(newRingGen())
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return a
}

// replaceReader replaces lost, a Reader of attachment a whose heartbeat entry
// was taken over (cause wraps shm.ErrEntryLost), by a new Reader on the same
// Block (the sole-reader lock stays held) and returns the Reader to use. When
// another transaction replaced lost already, that Reader is returned. The new
// Reader is made before lost is closed (lost's entry is not ours any more and
// is left alone); when none can be made (no free heartbeat entry), lost stays
// and the fault is reported (EventRingError). The caller holds c.mu shared, so
// a is not closed meanwhile.
func (c *ringReader) replaceReader(a *ringAttach, lost *shm.Reader, cause error) (*shm.Reader, error) {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	switch cur := a.rd.Load(); {
	case cur == nil || c.closing.Load():
		return nil, fmt.Errorf("replace reader %q: %w", c.name, ErrClosed)
	case cur != lost:
		return cur, nil
	case a.grp != nil:
		c.health.observe(cause)
		return nil, fmt.Errorf("replace reader %q: %w (a group member's Reader is not replaced)", c.name, cause)
	}
	r, err := a.block.NewReader(c.readerOptions())
	if err == nil && r.Entry() < 0 {
		r.Close()
		err = shm.ErrNoConsumerEntry
	}
	if err != nil {
		c.health.observe(cause)
		return nil, fmt.Errorf("replace reader %q: %w (after %w)", c.name, err, cause)
	}
	a.fresh.Store(r)
	a.rd.Store(r)
	lost.Close()
	c.health.reattachedAfter(cause)
	return r, nil
}

// close closes a's Reader and mapping (c.mu held exclusively), and the
// attachment a remap prepared unless a moved to it. Idempotent for the
// Reader; shm.Block.Close is idempotent. Nil-safe.
func (a *ringAttach) close() {
	if a == nil {
		return
	}
	if to := a.next.Load(); to != nil && !a.moved.Load() {
		to.prepared.close()
	}
	a.rmu.Lock()
	r := a.rd.Swap(nil)
	a.rmu.Unlock()
	if a.grp != nil {
		a.grp.Close() // closes r
	}
	r.Close() // nil-safe
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
	c.cur.Load().close()
}

// HasSHM reports whether the DataBlock is attached.
func (c *ringReader) HasSHM() bool { return c.cur.Load().block != nil }

// SHM returns the attached DataBlock (nil when not attached).
func (c *ringReader) SHM() *shm.Block { return c.cur.Load().block }

// SHMError says why the channel's DataBlock is not attached (nil when it is, or
// when the channel has none).
func (c *ringReader) SHMError() error { return c.cur.Load().err }

// CheckSegment checks the attached DataBlock (shm.Block.Check) and repairs
// nothing: header, indices, slot states, locks and consumers held by dead
// processes, and the checksums of committed slots. ErrNoSHM when not attached;
// shm.ErrClosed after Close. It holds the attachment like a read transaction
// (a producer restart waits for it), so a read job must not call it.
func (c *ringReader) CheckSegment() (shm.CheckReport, error) {
	c.mu.RLock() // a producer restart does not unmap the Block meanwhile
	defer c.mu.RUnlock()
	a := c.cur.Load()
	if a.block == nil {
		return shm.CheckReport{Name: a.shmName}, fmt.Errorf("check segment %q: %w", c.name, ErrNoSHM)
	}
	return a.block.Check(false)
}

// RingStats returns the ring-fault counters (doc.go, "Ring faults"), of every
// attachment so far.
func (c *ringReader) RingStats() RingStats { return c.health.stats() }

// ReadTxn is one read transaction on the attached DataBlock (datablock.md §13):
// Next refreshes the consumer heartbeat, releases the previous slot and acquires
// the next one by the block's sync policy. When the job returns nil a held slot
// is released (marked consumed); when it returns an error it is dropped. A
// ReadTxn is only valid inside its job.
type ReadTxn struct {
	c       *ringReader
	a       *ringAttach     // the attachment of this transaction
	r       *shm.Reader     // a's Reader for this transaction (replaced by replaceReader)
	user    context.Context // the caller's context (ctx also ends at a producer restart)
	ctx     txnCtx
	timeout time.Duration
	slot    *shm.ReadSlot
	stop    <-chan struct{}
}

// txnCtx is the context of a read transaction: the caller's, ended also by a
// producer restart (the attachment's gen). The ring's waits only poll Err, which
// answers from the two contexts directly. A merged context (WithCancel plus
// AfterFunc on gen: two allocations and a registration in gen's table, which
// cost more than the rest of a Pull) is built only when Done or
// ReadTxn.Context asks for one, and ended with the transaction.
type txnCtx struct {
	context.Context                 // the caller's
	gen             context.Context // the attachment's
	once            sync.Once
	merged          context.Context // built by once
	end             func()          // cancels merged and unregisters it from gen
}

// Err is the caller's context's error, or context.Canceled after a producer
// restart.
func (c *txnCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.gen.Err() != nil {
		return context.Canceled
	}
	return nil
}

// Done is the merged context's.
func (c *txnCtx) Done() <-chan struct{} { return c.real().Done() }

// real returns the merged context, built on first use.
func (c *txnCtx) real() context.Context {
	c.once.Do(func() {
		ctx, cancel := context.WithCancel(c.Context)
		stop := context.AfterFunc(c.gen, cancel)
		c.merged, c.end = ctx, func() { stop(); cancel() }
	})
	return c.merged
}

// finish ends the merged context if one was built (the transaction is over).
func (c *txnCtx) finish() {
	c.once.Do(func() {}) // none can be built from now on
	if c.end != nil {
		c.end()
	}
}

// Next releases the held slot and acquires the next, waiting at most the slot
// timeout (ErrNoSlot). If releasing the held slot fails (shm.ErrChecksum,
// shm.ErrOverwritten), that error is returned and no slot is acquired.
// shm.ErrCorrupt (a scribbled control zone) comes at once and is also reported
// through OnChannelError (EventRingError). A Reader that lost its heartbeat
// entry (shm.ErrEntryLost) is replaced and the acquisition made again on the
// new one (EventRingReattached). A producer restart ends the wait (ErrNoSlot).
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
		if r, err = t.c.replaceReader(t.a, t.r, err); err == nil {
			t.r = r
			s, err = t.acquire()
		}
	}
	if err == nil {
		hb = refreshed // the acquisition refreshed the consumer heartbeat
	}
	t.c.lastHB.Store(hb)
	if err != nil {
		if t.a.next.Load() != nil && t.user.Err() == nil && t.ctx.Err() != nil && (errors.Is(err, shm.ErrTimeout) || errors.Is(err, context.Canceled)) {
			t.a.drained.Store(true) // remap.go: one attempt found the old ring empty
			return nil, fmt.Errorf("%w: the layout was remapped and the old ring is drained (moving to the new segment)", ErrNoSlot)
		}
		if errors.Is(err, shm.ErrTimeout) {
			return nil, fmt.Errorf("%w: %w", ErrNoSlot, err)
		}
		if t.ctx.Err() != nil && t.user.Err() == nil {
			return nil, fmt.Errorf("%w: the producer restarted (the DataBlock is re-attached)", ErrNoSlot)
		}
		t.c.health.observe(err)
		return nil, err
	}
	t.slot = s
	return s, nil
}

// acquire acquires the next slot on t.r. A replacement Reader (replaceReader)
// first passes over the slots this Consumer already delivered from the ring
// (releasing them moves its position on): it joins where the lost Reader was,
// or later, so nothing is delivered twice.
func (t *ReadTxn) acquire() (*shm.ReadSlot, error) {
	a := t.a
	if a.grp != nil {
		return a.grp.AcquireRead(&t.ctx, t.timeout)
	}
	s, err := t.r.AcquireRead(&t.ctx, t.timeout)
	for n := 0; err == nil && a.fresh.Load() == t.r; n++ {
		if s.ID() >= a.delivered.Load() || n > maxPassOver {
			a.fresh.CompareAndSwap(t.r, nil)
			break
		}
		_ = s.Release()
		s, err = t.r.AcquireRead(&t.ctx, t.timeout)
	}
	if err == nil {
		a.markDelivered(s.ID())
	}
	return s, err
}

// markDelivered raises delivered to id+1 (never lowers it).
func (a *ringAttach) markDelivered(id uint64) {
	for {
		d := a.delivered.Load()
		if d > id || a.delivered.CompareAndSwap(d, id+1) {
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
		r, rerr := t.c.replaceReader(t.a, t.r, err)
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
func (t *ReadTxn) Context() context.Context { return t.ctx.real() }

// SendCtrl sends a control message to the producer (Consumer.SendCtrl).
func (t *ReadTxn) SendCtrl(typ string, body []byte) error { return t.c.link.SendCtrl(typ, body) }

// Messenger returns the Consumer's Messenger.
func (t *ReadTxn) Messenger() *Messenger { return t.c.m }

// ReportChecksumError reports a slot's checksum failure to the broker.
func (t *ReadTxn) ReportChecksumError(slot int32, description string) error {
	return t.c.m.ReportChecksumError(t.c.name, slot, description)
}

var readTxnPool = sync.Pool{New: func() any { return new(ReadTxn) }}

// runRead runs job in a read transaction; when the transaction found the
// old ring of a remapped layout drained, the reader moves to the new one.
func (c *ringReader) runRead(ctx context.Context, timeout time.Duration, stop <-chan struct{}, job func(*ReadTxn) error) error {
	a, err := c.runTxn(ctx, timeout, stop, job)
	if a != nil && a.drained.Load() && c.cur.Load() == a {
		c.finishRemap(a)
	}
	return err
}

func (c *ringReader) runTxn(ctx context.Context, timeout time.Duration, stop <-chan struct{}, job func(*ReadTxn) error) (a *ringAttach, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a = c.cur.Load()
	if a.block == nil {
		return nil, fmt.Errorf("read %q: %w", c.name, ErrNoSHM)
	}
	r := a.rd.Load()
	if r == nil { // closed by Close
		return nil, fmt.Errorf("read %q: %w", c.name, ErrClosed)
	}
	t := readTxnPool.Get().(*ReadTxn)
	*t = ReadTxn{c: c, a: a, r: r, user: ctx, ctx: txnCtx{Context: ctx, gen: c.gen.Load().ctx}, timeout: timeout, stop: stop}
	defer func() {
		t.ctx.finish()
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
		return a, err
	}
	return a, t.Release()
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
// effect at the next call. Errors other than ErrNoSlot are logged; after a ring
// fault the goroutine pauses first (doc.go "Ring faults").
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
		err := c.runRead(ctx, c.opts.HandlerSlotTimeout, stop, h.fn)
		if errors.Is(err, ErrNoSHM) { // not attached (a successor's segment failed): wait for the next attach
			select {
			case <-stop:
				return
			case <-c.kick:
			}
			continue
		}
		if err != nil && !errors.Is(err, ErrNoSlot) && !isRingFault(err) && ctx.Err() == nil {
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
