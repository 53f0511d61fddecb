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

// ringWriter is the producer's ring writer: the DataBlock (nil without SHM),
// its pooled Writers, and the write transactions that run on them (Push jobs
// and the real-time handler on the write goroutine of one Start..Stop, or
// SyncedWrite in the caller's goroutine). Transactions reach the peer link
// for Broadcast and SendTo.
type ringWriter struct {
	name    string
	opts    *ProducerOptions
	log     *slog.Logger
	m       *Messenger
	closing *atomic.Bool  // the producer's: set first thing in Close
	link    *producerLink // for WriteTxn.Broadcast, SendTo, ConnectedConsumers

	// block is the DataBlock (nil without SHM); a structure remap (remap.go)
	// replaces it while holding layoutMu exclusively. Every write transaction
	// holds layoutMu shared, so none runs on a block being retired.
	block    atomic.Pointer[shm.Block]
	layoutMu sync.RWMutex
	layout   uint64 // layout generation (guarded by layoutMu)

	runMu   sync.RWMutex // orders Push against Stop; guards running, stopCh
	running bool
	stopCh  chan struct{} // closed by Stop
	drainCh chan struct{} // closed by Stop once no Push can add a job
	wdone   chan struct{} // closed when the write goroutine exits

	jobs    chan func(*WriteTxn) error
	handler atomic.Pointer[writeHandler]
	kick    chan struct{} // handler changed
	writers chan *pooledWriter
	spare   atomic.Pointer[pooledWriter] // one pooled Writer taken and given back without a channel operation
	health  *ringHealth                  // ring faults and their notices (ring_health.go)
}

// newRingWriter returns the ring writer of p on block (nil without SHM); p's
// peer link must be set.
func newRingWriter(p *producer, block *shm.Block) *ringWriter {
	notify := func(n ChannelNotice) { p.m.disp.submit(n.Event, func() { p.onError(n) }) }
	w := &ringWriter{name: p.name, opts: &p.opts, log: p.log, m: p.m, closing: &p.closing, link: p.producerLink,
		kick: make(chan struct{}, 1), jobs: make(chan func(*WriteTxn) error, 1024), writers: make(chan *pooledWriter, 4),
		health: newRingHealth(p.name, p.opts.RingErrorEvery, p.log, notify)}
	w.block.Store(block)
	return w
}

// HasSHM reports whether the channel has a DataBlock.
func (p *ringWriter) HasSHM() bool { return p.block.Load() != nil }

// SHM returns the DataBlock (nil without one). IMPORTANT: it is closed by Close,
// and by Remap, which replaces it.
func (p *ringWriter) SHM() *shm.Block { return p.block.Load() }

// CheckSegment checks the channel's DataBlock (shm.Block.Check) and repairs
// nothing: header, indices, slot states, locks and consumers held by dead
// processes, and the checksums of committed slots. ErrNoSHM without a
// DataBlock; shm.ErrClosed after Close.
func (p *ringWriter) CheckSegment() (shm.CheckReport, error) {
	p.layoutMu.RLock() // a remap does not close the block meanwhile
	defer p.layoutMu.RUnlock()
	b := p.block.Load()
	if b == nil {
		return shm.CheckReport{Name: p.name}, fmt.Errorf("check segment %q: %w", p.name, ErrNoSHM)
	}
	return b.Check(false)
}

// RingStats returns the ring-fault counters (doc.go, "Ring faults").
func (p *ringWriter) RingStats() RingStats { return p.health.stats() }

// start begins one Start..Stop run under the run lock: ErrClosed unless valid(),
// ErrRunning when running; started runs before the write goroutine (started
// only with a DataBlock).
func (p *ringWriter) start(valid func() bool, started func()) error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	if !valid() {
		return fmt.Errorf("start %q: %w", p.name, ErrClosed)
	}
	if p.running {
		return fmt.Errorf("start %q: %w", p.name, ErrRunning)
	}
	p.running = true
	p.stopCh, p.drainCh, p.wdone = make(chan struct{}), make(chan struct{}), make(chan struct{})
	started()
	if p.HasSHM() {
		go p.writeLoop(p.stopCh, p.drainCh, p.wdone)
	} else {
		close(p.wdone)
	}
	return nil
}

// stop ends the run (see Producer.Stop) and reports whether this call ended it.
func (p *ringWriter) stop() bool {
	p.runMu.RLock()
	running, stopCh := p.running, p.stopCh
	p.runMu.RUnlock()
	if !running {
		return false
	}
	select {
	case <-stopCh:
	default:
		close(stopCh) // wakes Push callers blocked on a full queue
	}
	p.runMu.Lock()
	if !p.running {
		p.runMu.Unlock()
		return false
	}
	p.running = false
	close(p.drainCh)
	wdone := p.wdone
	p.runMu.Unlock()
	<-wdone
	return true
}

// Running reports whether the Producer is started.
func (p *ringWriter) Running() bool {
	p.runMu.RLock()
	defer p.runMu.RUnlock()
	return p.running
}

// close closes the pooled Writers and the DataBlock (after stop).
func (p *ringWriter) close() error {
	if w := p.spare.Swap(nil); w != nil {
		w.w.Close()
	}
	for {
		select {
		case w := <-p.writers:
			w.w.Close()
			continue
		default:
		}
		break
	}
	p.layoutMu.Lock()
	defer p.layoutMu.Unlock()
	b := p.block.Load()
	if b == nil {
		return nil
	}
	err := b.Close()
	sweepGroupSegments(b.Name(), p.log)
	return err
}

// WriteTxn is one write transaction on the channel's DataBlock (datablock.md
// §13): Next acquires slots (refreshing the producer heartbeat, aborting a held
// slot that was not published), Publish commits and releases the held slot.
// When the job returns nil a still-held slot is published (whole slot); when it
// returns an error or panics the slot is aborted. A WriteTxn is only valid inside
// its job.
type WriteTxn struct {
	p       *ringWriter
	w       *shm.Writer
	ctx     context.Context
	timeout time.Duration
	slot    *shm.WriteSlot
	stop    <-chan struct{} // nil: never stopping (SyncedWrite)
	lastHB  *int64          // unix ns of the last explicit heartbeat (per Writer)
}

// heartbeatEvery bounds explicit heartbeats of transaction steps: liveness is
// judged in seconds, and every commit (writer) or acquisition (reader) refreshes
// the heartbeat in the segment anyway.
const heartbeatEvery = int64(time.Millisecond)

// refreshed marks a lastHB clock whose heartbeat the segment itself refreshed at
// the last step (a commit or a successful read acquisition): the next step then
// needs neither an explicit heartbeat nor a clock read (time.Now costs as much as
// the rest of a step on some hosts).
const refreshed = int64(-1)

// stepHeartbeat refreshes a heartbeat explicitly unless the last step refreshed
// it, at most every heartbeatEvery (clock: unix ns of the last one, or refreshed).
func stepHeartbeat(clock *int64, beat func() error) {
	if *clock == refreshed {
		*clock = 0
		return
	}
	if now := time.Now().UnixNano(); now-*clock >= heartbeatEvery {
		*clock = now
		_ = beat()
	}
}

// pooledWriter is a Writer with its heartbeat clock, reused across transactions.
type pooledWriter struct {
	w      *shm.Writer
	lastHB int64
	t      WriteTxn // the transaction of the job using this Writer
}

// Next acquires the next slot, waiting at most the transaction's slot timeout:
// an error wrapping ErrNoSlot (and shm.ErrTimeout) when none came free, or ctx's.
// shm.ErrCorrupt (a scribbled control zone) comes at once and is also reported
// through OnChannelError (EventRingError).
func (t *WriteTxn) Next() (*shm.WriteSlot, error) {
	stepHeartbeat(t.lastHB, t.w.Heartbeat)
	if t.slot != nil {
		t.slot.Abort()
		t.slot = nil
	}
	s, err := t.w.AcquireWrite(t.ctx, t.timeout)
	if err != nil {
		if errors.Is(err, shm.ErrTimeout) {
			return nil, fmt.Errorf("%w: %w", ErrNoSlot, err)
		}
		t.p.health.observe(err)
		return nil, err
	}
	t.slot = s
	return s, nil
}

// Slot returns the slot held now (nil when none).
func (t *WriteTxn) Slot() *shm.WriteSlot { return t.slot }

// Publish commits the whole held slot and releases it. A commit_index found
// scribbled beyond write_index is set back by the commit (shm.ErrCorrupt from
// the release): the slot is published all the same, so Publish returns nil and
// the fault goes to OnChannelError (EventRingError).
func (t *WriteTxn) Publish() error {
	if t.slot == nil {
		return fmt.Errorf("publish: %w", shm.ErrReleased)
	}
	s := t.slot
	t.slot = nil
	err := s.Publish()
	if err == nil || errors.Is(err, shm.ErrCorrupt) {
		*t.lastHB = refreshed // the commit refreshed the producer heartbeat
	}
	if t.p.health.observe(err) {
		return nil
	}
	return err
}

// Abort releases the held slot without publishing it.
func (t *WriteTxn) Abort() {
	if t.slot != nil {
		t.slot.Abort()
		t.slot = nil
	}
}

// Flex returns the flex zone (nil when the block has none).
func (t *WriteTxn) Flex() []byte { return t.w.Block().Flex() }

// UpdateFlexChecksum stores the flex zone's hash now.
func (t *WriteTxn) UpdateFlexChecksum() error { return t.w.UpdateFlexChecksum() }

// Heartbeat refreshes the producer heartbeat in the segment.
func (t *WriteTxn) Heartbeat() error { return t.w.Heartbeat() }

// Stopping reports whether Stop (or Close) was called: handlers return promptly.
func (t *WriteTxn) Stopping() bool {
	if t.stop == nil {
		return t.p.closing.Load()
	}
	select {
	case <-t.stop:
		return true
	default:
		return t.p.closing.Load()
	}
}

// Context returns the transaction's context.
func (t *WriteTxn) Context() context.Context { return t.ctx }

// Broadcast sends payload on the channel's data path (Producer.Send).
func (t *WriteTxn) Broadcast(payload []byte) error { return t.p.link.Send(t.ctx, payload) }

// SendTo sends Bidir data to one consumer (Producer.SendTo).
func (t *WriteTxn) SendTo(id, payload []byte) error { return t.p.link.SendTo(t.ctx, id, payload) }

// ConnectedConsumers lists the joined consumers.
func (t *WriteTxn) ConnectedConsumers() []ConsumerIdentity { return t.p.link.ConnectedConsumers() }

// Messenger returns the channel's Messenger.
func (t *WriteTxn) Messenger() *Messenger { return t.p.m }

// ReportChecksumError reports a slot's checksum failure to the broker.
func (t *WriteTxn) ReportChecksumError(slot int32, description string) error {
	return t.p.m.ReportChecksumError(t.p.name, slot, description)
}

// finish publishes or aborts what the job left held.
func (t *WriteTxn) finish(jobErr error) error {
	if t.slot == nil {
		return jobErr
	}
	if jobErr != nil {
		t.Abort()
		return jobErr
	}
	return t.Publish()
}

// runJob runs job in a transaction on w, with panics turned into errors. It
// holds layoutMu shared; a Writer of a block a remap retired is replaced first.
func (p *ringWriter) runJob(ctx context.Context, pw *pooledWriter, timeout time.Duration, stop <-chan struct{}, job func(*WriteTxn) error) (err error) {
	p.layoutMu.RLock()
	defer p.layoutMu.RUnlock()
	if b := p.block.Load(); pw.w.Block() != b {
		w, err := b.NewWriter(p.opts.Wait)
		if err != nil {
			return fmt.Errorf("write %q: %w", p.name, err)
		}
		pw.w.Close() // closed with its block already; idempotent
		pw.w, pw.lastHB = w, 0
	}
	t := &pw.t
	*t = WriteTxn{p: p, w: pw.w, ctx: ctx, timeout: timeout, stop: stop, lastHB: &pw.lastHB}
	defer func() { *t = WriteTxn{} }()
	defer func() {
		if r := recover(); r != nil {
			t.Abort()
			err = fmt.Errorf("hub: write job panicked: %v", r)
		}
	}()
	return t.finish(job(t))
}

// writeHandler is the installed real-time handler.
type writeHandler struct{ fn func(*WriteTxn) error }

// Push queues job to run on the write goroutine inside a write transaction (slot
// timeout SlotTimeout). It needs SHM and Start: ErrNoSHM, ErrNotRunning. It blocks
// only while 1024 jobs are already queued. Job errors are logged (ring faults are
// reported instead, and the goroutine backs off; doc.go "Ring faults"). While a
// write handler is installed, jobs wait until it is removed.
func (p *ringWriter) Push(job func(*WriteTxn) error) error {
	if !p.HasSHM() {
		return fmt.Errorf("push %q: %w", p.name, ErrNoSHM)
	}
	p.runMu.RLock()
	defer p.runMu.RUnlock()
	if !p.running {
		return fmt.Errorf("push %q: %w", p.name, ErrNotRunning)
	}
	select {
	case p.jobs <- job:
		return nil
	case <-p.stopCh:
		return fmt.Errorf("push %q: %w", p.name, ErrNotRunning)
	}
}

// SyncedWrite runs job in the caller's goroutine inside a write transaction with
// slot timeout timeout (0 = SlotTimeout); it needs no Start. It returns ErrNoSHM,
// ErrClosed, or the job's error (a job that found no slot sees ErrNoSlot from
// Next and decides; on a corrupt ring shm.ErrCorrupt, also reported through
// OnChannelError: the caller paces its retries).
func (p *ringWriter) SyncedWrite(ctx context.Context, timeout time.Duration, job func(*WriteTxn) error) error {
	if !p.HasSHM() {
		return fmt.Errorf("synced write %q: %w", p.name, ErrNoSHM)
	}
	if p.closing.Load() {
		return fmt.Errorf("synced write %q: %w", p.name, ErrClosed)
	}
	if timeout == 0 {
		timeout = p.opts.SlotTimeout
	}
	w, err := p.getWriter()
	if err != nil {
		return fmt.Errorf("synced write %q: %w", p.name, err)
	}
	defer p.putWriter(w)
	return p.runJob(ctx, w, timeout, nil, job)
}

// SetWriteHandler installs fn as the real-time write handler (nil removes it and
// returns to queue mode). While started, the write goroutine runs fn in a new
// transaction (slot timeout HandlerSlotTimeout) again and again; a swap takes
// effect at the next iteration. Errors and panics of fn are logged and the loop
// goes on; after a ring fault it pauses first (doc.go "Ring faults"). ErrNoSHM
// without a DataBlock.
func (p *ringWriter) SetWriteHandler(fn func(*WriteTxn) error) error {
	if !p.HasSHM() {
		return fmt.Errorf("set write handler %q: %w", p.name, ErrNoSHM)
	}
	if fn == nil {
		p.handler.Store(nil)
		p.log.Info("hub: write handler removed")
	} else {
		p.handler.Store(&writeHandler{fn})
		p.log.Info("hub: write handler installed")
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return nil
}

// Mode reports the SHM processing mode: "queue" or "realtime".
func (p *ringWriter) Mode() string {
	if p.handler.Load() != nil {
		return "realtime"
	}
	return "queue"
}

func (p *ringWriter) getWriter() (*pooledWriter, error) {
	if w := p.spare.Swap(nil); w != nil { // the usual case: one SyncedWrite at a time
		return w, nil
	}
	select {
	case w := <-p.writers:
		return w, nil
	default:
	}
	p.layoutMu.RLock()
	w, err := p.block.Load().NewWriter(p.opts.Wait)
	p.layoutMu.RUnlock()
	if err != nil {
		return nil, err
	}
	return &pooledWriter{w: w}, nil
}

func (p *ringWriter) putWriter(w *pooledWriter) {
	if p.closing.Load() {
		w.w.Close()
		return
	}
	if p.spare.CompareAndSwap(nil, w) {
		return
	}
	select {
	case p.writers <- w:
	default:
		w.w.Close()
	}
}

// writeLoop is the write goroutine of one Start..Stop.
func (p *ringWriter) writeLoop(stop, drained <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	w, err := p.getWriter()
	if err != nil {
		p.log.Error("hub: write goroutine has no writer", "err", err)
		return
	}
	defer p.putWriter(w)
	// hctx ends a handler's slot wait at Stop; queued jobs keep a real slot
	// timeout so that each accepted job gets its chance.
	hctx, hcancel := context.WithCancel(context.Background())
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		select {
		case <-stop:
		case <-hctx.Done():
		}
		hcancel()
	}()
	defer func() { hcancel(); <-watch }()
	jctx := context.Background()
	runIn := func(ctx context.Context, job func(*WriteTxn) error, timeout time.Duration) {
		if err := p.runJob(ctx, w, timeout, stop, job); err != nil && !errors.Is(err, ErrNoSlot) && !isRingFault(err) && ctx.Err() == nil {
			p.log.Warn("hub: write job failed", "err", err)
		}
	}
	run := func(job func(*WriteTxn) error, timeout time.Duration) { runIn(jctx, job, timeout) }
	// A ring fault comes back at once: after a transaction that met one the
	// loop pauses (bounded exponential backoff, cut short by Stop).
	var bo ringBackoff
	for {
		if h := p.handler.Load(); h != nil {
			select {
			case <-stop:
				p.finishJobs(drained, run)
				return
			default:
			}
			before := p.health.events()
			runIn(hctx, h.fn, p.opts.HandlerSlotTimeout)
			bo.after(p.health, before, stop)
			continue
		}
		select {
		case job := <-p.jobs:
			before := p.health.events()
			run(job, p.opts.SlotTimeout)
			bo.after(p.health, before, stop)
		case <-p.kick:
		case <-stop:
			p.finishJobs(drained, run)
			return
		}
	}
}

// finishJobs runs every job accepted before Stop.
func (p *ringWriter) finishJobs(drained <-chan struct{}, run func(func(*WriteTxn) error, time.Duration)) {
	for {
		select {
		case job := <-p.jobs:
			run(job, p.opts.SlotTimeout)
			continue
		default:
		}
		select {
		case job := <-p.jobs:
			run(job, p.opts.SlotTimeout)
		case <-drained:
			for {
				select {
				case job := <-p.jobs:
					run(job, p.opts.SlotTimeout)
				default:
					return
				}
			}
		}
	}
}

// WriteCtx is a typed write transaction: slot type S, flex-zone type F (use
// struct{} for none). Its embedded WriteTxn gives the byte-level operations.
type WriteCtx[F, S any] struct {
	*WriteTxn
}

// Slot acquires the next slot (WriteTxn.Next) and returns it as *S.
func (c WriteCtx[F, S]) Slot() (*S, error) {
	s, err := c.Next()
	if err != nil {
		return nil, err
	}
	return shm.View[S](s.Bytes())
}

// FlexZone returns the flex zone as *F (nil when there is none).
func (c WriteCtx[F, S]) FlexZone() (*F, error) { return shm.View[F](c.Flex()) }

func typedWrite[F, S any](job func(WriteCtx[F, S]) error) func(*WriteTxn) error {
	if job == nil {
		return nil
	}
	return func(t *WriteTxn) error { return job(WriteCtx[F, S]{t}) }
}

// PushTyped is Producer.Push with a typed job.
func PushTyped[F, S any](p *Producer, job func(WriteCtx[F, S]) error) error {
	return p.Push(typedWrite(job))
}

// SyncedWriteTyped is Producer.SyncedWrite with a typed job.
func SyncedWriteTyped[F, S any](ctx context.Context, p *Producer, timeout time.Duration, job func(WriteCtx[F, S]) error) error {
	return p.SyncedWrite(ctx, timeout, typedWrite(job))
}

// SetWriteHandlerTyped is Producer.SetWriteHandler with a typed handler (nil
// removes the handler).
func SetWriteHandlerTyped[F, S any](p *Producer, fn func(WriteCtx[F, S]) error) error {
	return p.SetWriteHandler(typedWrite(fn))
}
