package noderole

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/shm"
)

// seqTracker checks the sequence numbers a consumer sees, per producer
// incarnation (the writer's pid carried in every payload): a successor
// producer starts again at 0 without that counting as a reorder.
type seqTracker struct {
	n      *node
	latest bool // Latest_only: skips are normal, aggregated per interval
	// split: each consumer sees a share of the stream (Pipeline, Bidir's
	// round robin on the peer link): a jump is not a loss for this consumer
	// alone; the engine's delivery expectation sums the shares.
	split  bool
	inc    map[uint64]*incarnation
	bad    uint64 // slot id of the last damaged slot reported
	anyBad bool
}

// incarnation is what one consumer saw of one producer process.
type incarnation struct {
	next, maxSeen uint64 // next sequence wanted, highest seen
}

func (t *seqTracker) see(seq, from uint64) {
	ch := t.n.o.channel
	if t.inc == nil {
		t.inc = map[uint64]*incarnation{}
	}
	in, ok := t.inc[from]
	switch {
	case !ok:
		in = &incarnation{} // a late joiner (or a new producer) starts wherever the stream is
		t.inc[from] = in
	case seq < in.next:
		t.n.agg.note(func(a *aggregator) { a.reorders++ })
		t.n.emit("reorder", map[string]any{"channel": ch, "prev": in.maxSeen, "got": seq, "from_pid": from})
		return
	case seq > in.next && t.split:
	case seq > in.next:
		lost, expected := seq-in.next, in.next
		if t.latest { // one aggregated gap event per interval (aggregator.flush)
			t.n.agg.note(func(a *aggregator) { a.skip(expected, seq, lost) })
			break
		}
		t.n.agg.note(func(a *aggregator) { a.gaps++; a.lost += lost })
		t.n.emit("gap", map[string]any{"channel": ch, "expected": expected, "got": seq, "lost": lost, "from_pid": from})
	}
	in.next = seq + 1
	in.maxSeen = max(in.maxSeen, seq)
}

// verify checks a payload's pattern; it returns the sequence, the send time
// and the writer's pid.
func verify(b []byte) (seq uint64, sent int64, from uint64, ok bool) {
	if len(b) < minPayload {
		return 0, 0, 0, false
	}
	seq = binary.LittleEndian.Uint64(b[offSeq:])
	sent = int64(binary.LittleEndian.Uint64(b[offTime:]))
	from = binary.LittleEndian.Uint64(b[offFrom:])
	for i := offPattern; i < len(b); i++ {
		if b[i] != patternByte(seq, i) {
			return seq, sent, from, false
		}
	}
	return seq, sent, from, true
}

func (n *node) runConsumer(ctx context.Context) (int, string) {
	o := n.o
	ch := o.channel
	closed := make(chan struct{})
	var once atomic.Bool
	end := func() {
		if once.CompareAndSwap(false, true) {
			close(closed)
		}
	}
	opts := hub.ConsumerOptions{Channel: ch, UID: o.uid, Name: o.name,
		Window: o.window, PeerHeartbeat: o.peerHeartbeat, Group: o.group, Logger: n.log}
	o.schemaExpectation(&opts)
	if o.useSHM {
		opts.Secret = o.secret
	}
	opts.Callbacks = hub.ConsumerCallbacks{
		OnChannelClosing: func(reason string) {
			n.emit("notification", map[string]any{"type": "CHANNEL_CLOSING_NOTIFY", "channel": ch, "reason": reason})
			end()
		},
		OnChannelError: n.emitNotice,
		OnProducerBye:  end,
		// The producer's link broke without BYE (e.g. killed): reported at once,
		// the run goes on until the broker closes the channel.
		OnProducerLost: func() { n.emit("producer_lost", map[string]any{"channel": ch}) },
		OnProducerRestarted: func(info hub.ChannelInfo) {
			n.emit("producer_restarted", map[string]any{"channel": ch, "producer_pid": info.ProducerPid})
		},
		OnMissed: func(k uint64) { n.emit("missed", map[string]any{"channel": ch, "missed": k}) },
	}
	if o.churn > 0 {
		n.churn(ctx)
	}
	cctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
	c, err := n.connect(cctx, opts)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return n.stopped(ctx)
		}
		return n.fail("connect_consumer", err)
	}
	defer c.Close()
	info := c.Info()
	n.emit("discovered", map[string]any{"channel": ch, "pattern": string(info.Pattern), "shm_name": info.ShmName,
		"consumer_count": info.ConsumerCount})
	if info.HasSharedMemory && o.useSHM {
		f := map[string]any{"channel": ch, "shm": c.HasSHM()}
		if !c.HasSHM() {
			f["reason"] = fmt.Sprint(c.SHMError())
		}
		n.emit("attached", f)
	}
	if err := c.Start(); err != nil {
		return n.fail("start", err)
	}
	n.emit("ready", map[string]any{"role": "consumer", "channel": ch, "pid": n.m.Pid()})
	t := &seqTracker{n: n, latest: c.HasSHM() && c.SHM().Sync() == shm.LatestOnly,
		split: o.group != "" || !c.HasSHM() && (info.Pattern == hub.PatternPipeline || info.Pattern == hub.PatternBidir)}
	var read uint64
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go func() {
		select {
		case <-closed:
		case <-rctx.Done():
		}
		rcancel()
	}()
	if info.Pattern == hub.PatternBidir && o.sendRate > 0 {
		stop := n.sendUpstream(rctx, c)
		defer stop()
	}

	for o.count == 0 || read < o.count {
		if ctx.Err() != nil {
			return n.stopped(ctx)
		}
		var got bool
		var err error
		if c.HasSHM() {
			got, err = n.readSHM(rctx, c, t)
		} else {
			got, err = n.readZMQ(rctx, c, t)
		}
		if err != nil {
			if ctx.Err() != nil {
				return n.stopped(ctx)
			}
			if rctx.Err() != nil { // producer gone or channel closed
				n.drain(ctx, c, t)
				return 0, "done"
			}
			return n.fail("read", err)
		}
		if got {
			read++
			if d := n.ctl.delayPerRead(); d > 0 {
				tm := time.NewTimer(d)
				select {
				case <-tm.C:
				case <-rctx.Done():
					tm.Stop()
				}
			}
		}
	}
	return 0, "done"
}

// connect retries while the channel is not registered yet (the consumer may start
// before its producer).
func (n *node) connect(ctx context.Context, opts hub.ConsumerOptions) (*hub.Consumer, error) {
	for {
		c, err := hub.Connect(ctx, n.m, opts)
		if err == nil || !errors.Is(err, hub.ErrChannelNotFound) {
			return c, err
		}
		tm := time.NewTimer(100 * time.Millisecond)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return nil, err
		}
	}
}

func (n *node) record(t *seqTracker, b []byte) {
	seq, sent, from, ok := verify(b)
	if !ok {
		n.agg.note(func(a *aggregator) { a.checksumErrs++ })
		n.emit("checksum_error", map[string]any{"channel": n.o.channel, "slot_index": -1, "seq": seq, "source": "pattern"})
		return
	}
	t.see(seq, from)
	n.agg.add(seq, len(b), now()-sent, from)
}

func (n *node) readZMQ(ctx context.Context, c *hub.Consumer, t *seqTracker) (bool, error) {
	b, err := c.Recv(ctx)
	if err != nil {
		return false, err
	}
	n.record(t, b)
	return true, nil
}

// readSHM reads one slot (false when none came within 100 ms). A damaged slot
// is acknowledged (hub.ReadTxn.Acknowledge): the node moves past it under every
// policy and reports it once (checksum_error event, CHECKSUM_ERROR_REPORT). A
// corrupt ring is tried again after ringRetry (the hub reports it: ring_error).
func (n *node) readSHM(ctx context.Context, c *hub.Consumer, t *seqTracker) (bool, error) {
	buf := make([]byte, 0, n.o.slotSize)
	idx, id := -1, uint64(0)
	var release error
	err := c.Pull(ctx, 100*time.Millisecond, func(tx *hub.ReadTxn) error {
		s, err := tx.Next()
		if err != nil {
			return err
		}
		idx, id = s.Index(), s.ID()
		size := min(n.o.slotSize, len(s.Bytes()))
		buf = append(buf, s.Bytes()[:size]...)
		if d := n.o.holdPerRead; d > 0 && len(buf) >= minPayload {
			n.emit("holding", map[string]any{"channel": n.o.channel, "seq": binary.LittleEndian.Uint64(buf[offSeq:]), "id": id})
			_ = pause(ctx, d)
		}
		release = tx.Acknowledge()
		return nil
	})
	switch {
	case errors.Is(err, hub.ErrNoSlot):
		return false, ctx.Err()
	case errors.Is(err, shm.ErrCorrupt) || errors.Is(err, shm.ErrEntryLost): // not replaced: no free entry
		return false, pause(ctx, ringRetry)
	case err != nil:
		return false, err
	case errors.Is(release, shm.ErrOverwritten):
		return false, nil // torn by the writer (Latest_only): not a read
	case errors.Is(release, shm.ErrChecksum):
		n.damaged(t, idx, id, buf)
		return false, nil
	case release != nil && !errors.Is(release, shm.ErrEntryLost): // lost entry: the data was sound
		return false, release
	}
	n.record(t, buf)
	return true, nil
}

// damaged reports the slot with id (ring index idx) whose checksum failed, once
// per id.
func (n *node) damaged(t *seqTracker, idx int, id uint64, buf []byte) {
	if t.anyBad && t.bad == id {
		return
	}
	t.anyBad, t.bad = true, id
	seq, from := uint64(0), uint64(0)
	if len(buf) >= minPayload {
		seq, from = binary.LittleEndian.Uint64(buf[offSeq:]), binary.LittleEndian.Uint64(buf[offFrom:])
		// Seen, though damaged: reported as checksum_error, not as a loss.
		t.see(seq, from)
	}
	n.agg.note(func(a *aggregator) { a.checksumErrs++ })
	n.emit("checksum_error", map[string]any{"channel": n.o.channel, "slot_index": idx, "slot_id": id, "seq": seq})
	if err := n.m.ReportChecksumError(n.o.channel, int32(idx), fmt.Sprintf("slot id %d: checksum mismatch", id)); err != nil {
		n.log.Warn("checksum error not reported", "slot_index", idx, "err", err)
	}
}

// drain reads what is still queued after the producer left (until nothing comes
// for 200 ms).
func (n *node) drain(ctx context.Context, c *hub.Consumer, t *seqTracker) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		var got bool
		var err error
		if c.HasSHM() {
			got, err = n.readSHM(dctx, c, t)
		} else {
			got, err = n.readZMQ(dctx, c, t)
		}
		cancel()
		if err != nil || !got {
			return
		}
	}
}
