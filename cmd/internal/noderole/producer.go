package noderole

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"time"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/shm"
)

func (n *node) runProducer(ctx context.Context) (int, string) {
	o := n.o
	opts := hub.ProducerOptions{Channel: o.channel, Pattern: hub.Pattern(o.pattern), SchemaHash: o.channelSchemaHash(),
		PeerTimeout: o.peerTimeout, SlowConsumer: o.slowConsumer, Logger: n.log, Endpoint: o.endpoint}
	if o.descriptor != nil {
		opts.Schema = *o.descriptor
	}
	if o.useSHM {
		opts.SHM = o.shmConfig(o.slots)
	}
	ch := o.channel
	opts.Callbacks = hub.ProducerCallbacks{
		OnConsumerJoined: func(c hub.ConsumerIdentity) {
			n.emit("consumer_joined", map[string]any{"channel": ch, "identity": hex.EncodeToString(c.ID), "consumer_pid": c.Pid})
		},
		OnConsumerLeft: func(c hub.ConsumerIdentity) {
			n.emit("consumer_left", map[string]any{"channel": ch, "identity": hex.EncodeToString(c.ID)})
		},
		OnConsumerDied: func(pid uint64, reason string) {
			if reason != hub.ReasonPeerTimeout {
				n.emit("notification", map[string]any{"type": "CONSUMER_DIED_NOTIFY", "channel": ch, "consumer_pid": pid, "reason": reason})
			}
			n.emit("consumer_died", map[string]any{"channel": ch, "consumer_pid": pid, "reason": reason})
		},
		OnChannelClosing: func(reason string) {
			n.emit("notification", map[string]any{"type": "CHANNEL_CLOSING_NOTIFY", "channel": ch, "reason": reason})
		},
		OnChannelError: n.emitNotice,
		OnSlowConsumer: func(c hub.ConsumerIdentity, action hub.SlowConsumerPolicy, missed uint64) {
			n.emit("slow_consumer", map[string]any{"channel": ch, "identity": hex.EncodeToString(c.ID), "consumer_pid": c.Pid,
				"action": string(action), "missed": missed})
		},
	}
	if n.up != nil {
		opts.Callbacks.OnConsumerData = func(_ hub.ConsumerIdentity, b []byte) { n.recordUpstream(b) }
	}
	cctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
	p, err := hub.NewProducer(cctx, n.m, opts)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return n.stopped(ctx)
		}
		return n.fail("create_producer", err)
	}
	defer p.Close()
	n.emit("registered", map[string]any{"channel": ch, "pattern": string(p.Pattern()), "shm": p.HasSHM()})
	if err := p.Start(); err != nil {
		return n.fail("start", err)
	}
	n.emit("ready", map[string]any{"role": "producer", "channel": ch, "pid": n.m.Pid()})
	stallPath := "peer"
	if p.HasSHM() {
		stallPath = "shm"
	}
	stall := newStallWatch(n, stallPath)
	defer stall.close()

	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	buf := make([]byte, o.slotSize)
	if !n.waitConsumers(ctx, p) {
		return n.stopped(ctx)
	}
	start := time.Now()
	for seq := uint64(0); o.count == 0 || seq < o.count; seq++ {
		if interval > 0 {
			if !n.waitUntil(ctx, p, start.Add(time.Duration(seq)*interval)) {
				return n.stopped(ctx)
			}
		} else if ctx.Err() != nil {
			return n.stopped(ctx)
		}
		if n.ctl.held.Load() {
			return n.holdLock(ctx, p, seq)
		}
		if o.remapAfter > 0 && seq == o.remapAfter && p.HasSHM() {
			if err := n.remap(ctx, p); err != nil {
				if ctx.Err() != nil {
					return n.stopped(ctx)
				}
				return n.fail("remap", err)
			}
		}
		var err error
		stall.begin()
		if p.HasSHM() {
			err = n.writeSHM(ctx, p, seq)
		} else {
			err = n.sendZMQ(ctx, p, seq, buf)
		}
		stall.end(err == nil)
		if err != nil {
			if ctx.Err() != nil {
				return n.stopped(ctx)
			}
			return n.fail("write", err)
		}
	}
	// Count reached: let the consumers catch up, then linger if asked.
	if !p.HasSHM() {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = p.Flush(fctx)
		cancel()
	}
	if o.linger > 0 {
		t := time.NewTimer(o.linger)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-n.ctl.hold:
			return n.holdLock(ctx, p, o.count)
		}
	}
	return 0, "done"
}

// waitConsumers waits until --wait-consumers consumers joined the peer link
// (so every one of them, e.g. every consumer group, sees the first item);
// false when ctx ended.
func (n *node) waitConsumers(ctx context.Context, p *hub.Producer) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for len(p.ConnectedConsumers()) < n.o.waitConsumers {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// waitUntil sleeps until t; false when ctx ended. A hold_lock request ends the
// wait early (the loop then holds the lock).
func (n *node) waitUntil(ctx context.Context, p *hub.Producer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-n.ctl.hold:
		return true
	case <-ctx.Done():
		return false
	}
}

func fill(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b[offSeq:], seq)
	binary.LittleEndian.PutUint64(b[offFrom:], uint64(os.Getpid()))
	for i := offPattern; i < len(b); i++ {
		b[i] = patternByte(seq, i)
	}
	binary.LittleEndian.PutUint64(b[offTime:], uint64(now()))
}

// writeSHM writes one slot, retrying while the ring is full (backpressure; the
// stallWatch reports the wait) and, every ringRetry, while it is corrupt (the
// hub reports that: ring_error).
func (n *node) writeSHM(ctx context.Context, p *hub.Producer, seq uint64) error {
	manual := n.o.checksum == "manual"
	for {
		err := p.SyncedWrite(ctx, 100*time.Millisecond, func(tx *hub.WriteTxn) error {
			s, err := tx.Next()
			if err != nil {
				return err
			}
			fill(s.Bytes()[:n.o.slotSize], seq)
			if manual {
				return s.UpdateChecksum()
			}
			return nil
		})
		if errors.Is(err, hub.ErrNoSlot) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		if errors.Is(err, shm.ErrCorrupt) {
			if err := pause(ctx, ringRetry); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		n.agg.add(seq, n.o.slotSize, -1, 0)
		return nil
	}
}

// ringRetry is how long the node waits before it tries a corrupt ring again.
const ringRetry = 100 * time.Millisecond

// pause waits d; ctx's error when it ended first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendZMQ sends one message on the peer link, waiting for consumers and credit.
func (n *node) sendZMQ(ctx context.Context, p *hub.Producer, seq uint64, buf []byte) error {
	fill(buf, seq)
	for {
		var err error
		if p.Pattern() == hub.PatternBidir {
			cs := p.ConnectedConsumers()
			if len(cs) == 0 {
				err = hub.ErrNoConsumers
				sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				<-sctx.Done()
				cancel()
			} else {
				sctx, cancel := context.WithTimeout(ctx, time.Second)
				err = p.SendTo(sctx, cs[seq%uint64(len(cs))].ID, buf)
				cancel()
			}
		} else {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			err = p.Send(sctx, buf)
			cancel()
		}
		if err == nil || (p.Pattern() == hub.PatternPubSub && errors.Is(err, hub.ErrBackpressure)) {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, hub.ErrBackpressure) && !errors.Is(err, hub.ErrNoConsumers) && !errors.Is(err, hub.ErrUnknownConsumer) {
			return err
		}
	}
	n.agg.add(seq, len(buf), -1, 0)
	return nil
}

// holdLock acquires a write slot and keeps it (without committing) until ctx
// ends: the "writer killed holding the lock" fault (docs/scenarios.md).
func (n *node) holdLock(ctx context.Context, p *hub.Producer, seq uint64) (int, string) {
	if !p.HasSHM() {
		return n.fail("hold_lock", hub.ErrNoSHM)
	}
	err := p.SyncedWrite(ctx, -1, func(tx *hub.WriteTxn) error {
		s, err := tx.Next()
		if err != nil {
			return err
		}
		fill(s.Bytes()[:n.o.slotSize], seq)
		n.emit("lock_held", map[string]any{"channel": n.o.channel, "slot_index": s.Index(), "seq": seq})
		<-ctx.Done()
		return ctx.Err() // abort: never publish
	})
	if ctx.Err() != nil {
		return n.stopped(ctx)
	}
	return n.fail("hold_lock", err)
}

// shmConfig is the producer's segment configuration with capacity slots.
func (o options) shmConfig(slots int) *shm.Config {
	sp, _ := syncPolicy(o.policy)
	cp, _ := checksumPolicy(o.checksum)
	slot := (o.slotSize + shm.Page4K - 1) / shm.Page4K * shm.Page4K
	return &shm.Config{Secret: o.secret, PageSize: shm.Page4K, SlotSize: uint32(slot), Capacity: uint32(slots),
		Policy: shm.PolicyRingBuffer, Sync: sp, Checksum: cp, ProducerName: o.name, ProducerUID: o.uid}
}

// remap moves the channel to a new segment of --remap-slots slots (B-19) and
// emits remap.
func (n *node) remap(ctx context.Context, p *hub.Producer) error {
	slots := n.o.remapSlots
	if slots == 0 {
		slots = 2 * n.o.slots
	}
	start := time.Now()
	if err := p.Remap(ctx, hub.RemapOptions{SHM: *n.o.shmConfig(slots)}); err != nil {
		return err
	}
	n.emit("remap", map[string]any{"channel": n.o.channel, "layout_generation": p.LayoutGeneration(),
		"shm_name": p.SHM().Name(), "slots": p.SHM().Capacity(), "duration_ns": time.Since(start).Nanoseconds()})
	return nil
}

// emitNotice writes an OnChannelError notice: a broker notification, or one of
// the notices the hub raises itself (ring_error, ring_reattached, remapped,
// remap_failed).
func (n *node) emitNotice(c hub.ChannelNotice) {
	if c.Ring != nil {
		n.emitRing(c)
		return
	}
	if c.Remap != nil && c.Type == "" {
		n.emitRemapped(c)
		return
	}
	if c.Event == hub.EventSlowConsumer {
		n.emit("slow_disconnected", map[string]any{"channel": c.Channel, "reason": c.Error})
		return
	}
	f := map[string]any{"type": c.Type, "channel": c.Channel, "event": c.Event}
	switch c.Type {
	case "CHANNEL_ERROR_NOTIFY":
		f["existing_schema_hash"], f["attempted_schema_hash"], f["attempted_pid"] = c.ExistingSchemaHash, c.AttemptedSchemaHash, c.AttemptedPid
	case "CHANNEL_EVENT_NOTIFY":
		f["slot_index"], f["error"], f["reporter_pid"], f["broker_action"] = c.SlotIndex, c.Error, c.ReporterPid, c.BrokerAction
		if c.BrokerDetail != "" {
			f["broker_detail"] = c.BrokerDetail
		}
		if r := c.Remap; r != nil {
			f["shm_name"], f["layout_generation"], f["final_seq"] = r.ShmName, r.Generation, r.FinalSeq
		}
	}
	n.emit("notification", f)
}

// emitRing writes a ring notice as its event (docs/events.md).
func (n *node) emitRing(c hub.ChannelNotice) {
	r := c.Ring
	switch c.Event {
	case hub.EventRingReattached:
		n.emit("ring_reattached", map[string]any{"channel": c.Channel, "error": c.Error, "reattached": r.Reattached})
	default:
		n.emit("ring_error", map[string]any{"channel": c.Channel, "error": c.Error, "cause": r.Cause, "count": r.Count,
			"ongoing": r.Ongoing, "duration_ns": time.Since(r.Since).Nanoseconds()})
	}
}

// emitRemapped writes a consumer's remap notice as its event (docs/events.md).
func (n *node) emitRemapped(c hub.ChannelNotice) {
	r := c.Remap
	if c.Event == hub.EventRemapFailed {
		n.emit("remap_failed", map[string]any{"channel": c.Channel, "error": c.Error, "layout_generation": r.Generation})
		return
	}
	n.emit("remapped", map[string]any{"channel": c.Channel, "layout_generation": r.Generation, "from": r.From,
		"shm_name": r.ShmName, "final_seq": r.FinalSeq, "read": r.Read})
}
