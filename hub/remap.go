package hub

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/shm"
)

// Structure remapping (B-19; docs/design.md "B-19", docs/protocol.md
// "Structure remapping").
//
// Producer.Remap moves a channel's data to a new segment with another layout:
// it creates the segment (named after the channel with ".remap-<generation>"),
// stops its writes (layoutMu held exclusively: no transaction runs, so the
// old ring's last commit is final), tells the broker (REMAP_REQ with the old
// ring's final sequence), then writes on the new segment only and closes the
// old one, which unlinks its name. Consumers keep their mapping of the old
// segment until they leave it. The broker updates the registry (segment, schema
// hash, layout generation) and sends every party CHANNEL_EVENT_NOTIFY "remap".
//
// A Consumer hears the notice (or, having joined meanwhile, finds a higher
// generation on discovery right after it connected) and its follower goroutine
// discovers the new layout. Then the ring reader:
//   - Latest_only, or not attached: moves to the new segment at once;
//   - ordered policies: marks the attachment and ends its waits. Each
//     transaction on the old ring then makes single attempts: it reads what is
//     left (the slots committed before the remap), and the first attempt that
//     finds nothing means the old ring is drained; the transaction ends with
//     ErrNoSlot and the reader moves to the new segment
//     (ringReader.followProducer, the path a producer restart takes).
//     A remap heard before that becomes the target of the new attachment
//     (remapTail): remaps in a row queue up, each ring read to its end.
//
// The Consumer then raises EventRemapped (ChannelNotice.Remap: generation,
// final sequence, what it read of the old ring) or, when it cannot take the new
// layout (ExpectSHM, ExpectedSchemaHash or ExpectedSchema disagree, or the
// segment cannot be attached), EventRemapFailed with the error, as soon as it
// knows (tellRefused: an ordered reader still reads the old ring to its end):
// it stays connected without shared memory (Pull: ErrNoSHM) rather than wait.

// Consumer notices of a structure remap (ChannelNotice.Event, Type "",
// through OnChannelError; details in ChannelNotice.Remap).
const (
	// EventRemap is the broker's notice (CHANNEL_EVENT_NOTIFY event "remap").
	EventRemap = proto.EventRemap
	// EventRemapped: the Consumer left the old ring (drained, for ordered
	// policies) and reads the new segment.
	EventRemapped = "remapped"
	// EventRemapFailed: the Consumer cannot take the new layout; Error says why.
	EventRemapFailed = "remap_failed"
)

// RemapNotice details a structure remap (ChannelNotice.Remap).
type RemapNotice struct {
	ShmName       string // the new segment
	SchemaHashHex string // the channel's schema hash after the remap
	Generation    uint64 // the new layout generation
	// FinalSeq is the number of slots the old ring committed (1 + the id of
	// the last; 0 = none or not known, e.g. for a consumer that joined
	// during the remap, or that found this layout by discovery before it
	// handled its notice: the ring is still read to its end).
	FinalSeq uint64
	// Consumer notices only: the generation left, and 1 + the id of the last
	// slot this Consumer acquired on the old ring (0 = none). An ordered
	// reader that read the old ring to its end has Read == FinalSeq.
	From, Read uint64
}

// RemapOptions describe the new layout of a Producer.Remap.
type RemapOptions struct {
	// SHM is the new segment's configuration (capacity, slot size, flex
	// size, policies; spec/datablock.md). Secret 0 keeps the channel's.
	SHM shm.Config
	// SchemaHash, SchemaVersion and Schema replace the registered ones;
	// nil / 0 / a descriptor without Name keep them.
	SchemaHash    []byte
	SchemaVersion uint32
	Schema        Schema
	// AttachWait bounds how long the new ring stays unwritten (writes pause)
	// while the old ring's readers attach it, under the ordered policies: a
	// Sync_reader reader that registers after the first commits would start
	// at the newest one and miss those before. 0 = 2 s; negative = no wait.
	AttachWait time.Duration
}

const defaultAttachWait = 2 * time.Second

// remapSep joins a channel name and a layout generation into a segment name.
const remapSep = ".remap-"

// remapSegmentName is the segment of layout generation gen (gen 0: the
// channel's name, as NewProducer creates it).
func remapSegmentName(channel string, gen uint64) string {
	if gen == 0 {
		return channel
	}
	return channel + remapSep + strconv.FormatUint(gen, 10)
}

// sweepRemapSegments removes the segments of channel's remapped layouts
// (generation 1 and later) whose every owner is dead: a producer killed
// during or after a remap leaves them behind, and no successor replaces them
// by name. It never touches a segment a live process holds.
func sweepRemapSegments(channel string, log interface{ Warn(string, ...any) }) {
	if _, err := shm.Sweep(shm.SweepOptions{Prefix: channel + remapSep}); err != nil {
		log.Warn("hub: sweeping earlier layout segments failed", "err", err)
	}
}

// LayoutGeneration returns the channel's layout generation: 0 as created, +1
// per Remap.
func (p *ringWriter) LayoutGeneration() uint64 {
	p.layoutMu.RLock()
	defer p.layoutMu.RUnlock()
	return p.layout
}

// Remap moves the channel's data to a new segment with the layout of o
// (B-19): writes pause until it returns, the broker records the new segment,
// schema and layout generation and tells the consumers, which finish the old
// ring (ordered policies) and continue on the new segment. The old segment's
// name is removed at once; consumers keep their mapping until they leave it.
// It needs SHM (ErrNoSHM) and a broker (ErrNotConnected: a standalone
// producer cannot tell its consumers). On any failure nothing changed: the
// new segment is removed and the old layout stays in use.
func (p *producer) Remap(ctx context.Context, o RemapOptions) error {
	const op = "remap"
	if !p.HasSHM() {
		return fmt.Errorf("%s %q: %w", op, p.name, ErrNoSHM)
	}
	if !p.Valid() || p.closing.Load() {
		return fmt.Errorf("%s %q: %w", op, p.name, ErrClosed)
	}
	if p.standalone {
		return fmt.Errorf("%s %q: %w: a standalone producer cannot tell its consumers", op, p.name, ErrNotConnected)
	}
	p.remapOp.Lock()
	defer p.remapOp.Unlock()
	ctx, cancel := withDefaultTimeout(ctx, p.opts.Timeout)
	defer cancel()
	gen := p.LayoutGeneration() + 1
	cfg := o.SHM
	if cfg.Secret == 0 {
		cfg.Secret = p.opts.SHM.Secret
	}
	if cfg.Logger == nil {
		cfg.Logger = p.opts.Logger
	}
	nb, err := shm.Create(remapSegmentName(p.name, gen), cfg)
	if err != nil {
		return fmt.Errorf("%s %q: new segment: %w", op, p.name, err)
	}
	info := p.m.owned.producerInfo(p.name)
	info.ShmName, info.HasSharedMemory, info.LayoutGeneration = nb.Name(), true, gen
	if o.SchemaHash != nil {
		info.SchemaHash = o.SchemaHash
	}
	if o.SchemaVersion != 0 {
		info.SchemaVersion = o.SchemaVersion
	}
	if o.Schema.Name != "" {
		info.Schema = o.Schema
	}
	wait := o.AttachWait
	if wait == 0 {
		wait = defaultAttachWait
	}
	final, err := p.ringWriter.swap(nb, gen, wait, func(final uint64) error { return p.m.remap(ctx, p.name, info, final) })
	if err != nil {
		nb.Close()
		return fmt.Errorf("%s %q: %w", op, p.name, err)
	}
	p.opts.SHM = &cfg
	p.opts.SchemaHash, p.opts.SchemaVersion, p.opts.Schema = info.SchemaHash, info.SchemaVersion, info.Schema
	if p.rec != nil {
		if _, err := writeRecord(p.m.cfg.DiscoveryDir, newRecord(p.name, info, p.m.id())); err != nil {
			p.log.Warn("hub: discovery record not updated after the remap", "err", err)
		}
	}
	p.log.Info("hub: channel remapped", "segment", nb.Name(), "layout_generation", gen, "final_seq", final,
		"capacity", nb.Capacity(), "slot_size", nb.SlotSize())
	return nil
}

// swap makes nb the channel's block once tell (the broker) accepted it, given
// the old ring's final sequence; it returns that sequence. No write
// transaction runs meanwhile, nor until the old ring's readers registered on
// nb (ordered policies; at most wait). The old block is closed (its name
// unlinked).
func (p *ringWriter) swap(nb *shm.Block, gen uint64, wait time.Duration, tell func(final uint64) error) (uint64, error) {
	p.layoutMu.Lock()
	defer p.layoutMu.Unlock()
	if p.closing.Load() {
		return 0, ErrClosed // Close closed (or will close) the current block, never nb
	}
	old := p.block.Load()
	m := old.Metrics()
	final := uint64(0)
	if m.CommitIndex != math.MaxUint64 {
		final = m.CommitIndex + 1
	}
	if err := tell(final); err != nil {
		return 0, err
	}
	p.block.Store(nb)
	p.layout = gen
	if err := old.Close(); err != nil { // closes its Writers too; runJob replaces them
		p.log.Warn("hub: closing the previous layout's segment failed", "err", err)
	}
	if nb.Sync() != shm.LatestOnly && wait > 0 {
		awaitReaders(nb, m.ActiveConsumers, wait, p.log)
	}
	return final, nil
}

// awaitReaders waits until n readers registered on b, at most wait.
func awaitReaders(b *shm.Block, n uint32, wait time.Duration, log interface{ Warn(string, ...any) }) {
	deadline := time.Now().Add(wait)
	for pause := 100 * time.Microsecond; b.Metrics().ActiveConsumers < n; pause = min(2*pause, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			log.Warn("hub: not every reader attached the remapped layout in time; writing on", "readers", b.Metrics().ActiveConsumers, "expected", n, "waited", wait)
			return
		}
		time.Sleep(pause)
	}
}

// remap sends REMAP_REQ for channel (info: the new registration; final: the
// old ring's final sequence) and, accepted, keeps info for re-registration.
func (m *Messenger) remap(ctx context.Context, channel string, info ProducerInfo, final uint64) error {
	const op = "remap"
	ver := info.SchemaVersion
	if ver == 0 {
		ver = info.Schema.Version
	}
	rep, err := m.call(ctx, &proto.RemapReq{ChannelName: channel, ProducerPID: m.id().pid, ShmName: info.ShmName,
		SchemaHash: hex.EncodeToString(info.SchemaHash), SchemaVersion: ver, SchemaName: info.Schema.Name,
		SchemaBLDS: info.Schema.BLDS, LayoutGeneration: info.LayoutGeneration, FinalSeq: final}, false)
	if err != nil {
		var refused *BrokerError
		if errors.As(err, &refused) || !m.remapApplied(channel, info) {
			return err
		}
		m.log.Warn("messenger: the REMAP_ACK was lost but the broker applied the remap", "channel", channel, "err", err)
		rep = &proto.RemapAck{}
	}
	if _, err := expect[*proto.RemapAck](op, channel, rep); err != nil {
		return err
	}
	m.owned.addProducer(channel, info)
	return nil
}

// remapApplied asks the broker (DISC_REQ, its own deadline) whether it holds
// the remap of info after a REMAP_REQ whose answer did not come: the reply may
// have been lost after the broker applied it, and consumers then already move
// to info's segment. false when the broker does not answer either.
func (m *Messenger) remapApplied(channel string, info ProducerInfo) bool {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
	defer cancel()
	got, err := m.discoverBroker(ctx, channel)
	return err == nil && got.LayoutGeneration == info.LayoutGeneration && got.ShmName == info.ShmName
}

// Consumer side.

// onRemapNotice hands a broker "remap" notice to the follower goroutine
// (Messenger callback goroutine: it must not block).
func (c *consumer) onRemapNotice(n ChannelNotice) {
	if n.Event != EventRemap || n.Remap == nil || c.closing.Load() {
		return
	}
	c.kickRemap(*n.Remap)
}

// kickRemap asks the follower to look for layout n.Generation (0: check
// whether the channel's generation is above the attached one).
func (c *consumer) kickRemap(n RemapNotice) {
	c.remapMu.Lock()
	if n.Generation >= c.remapWant.Generation {
		c.remapWant = n
	}
	c.remapMu.Unlock()
	select {
	case c.remapKick <- struct{}{}:
	default:
	}
}

// followRemap discovers the channel until its record shows the wanted layout
// generation (or a higher one), then starts the ring reader's move to it. A
// record of another producer incarnation is left to the restart follower.
func (c *consumer) followRemap() {
	c.remapMu.Lock()
	want := c.remapWant
	c.remapMu.Unlock()
	wait := followMin
	for tries := 0; ; tries++ {
		if why := c.noFollow(); why != "" {
			return
		}
		ctx, cancel := context.WithTimeout(c.followCtx, c.opts.Timeout)
		info, err := c.m.Discover(ctx, c.name)
		cancel()
		switch {
		case err == nil && !sameProducer(c.Info(), info):
			return // a successor: consumer_follow.go moves to it
		case err == nil && info.LayoutGeneration >= want.Generation:
			if info.LayoutGeneration <= c.attachedGeneration() {
				return // there already (or the notice was older)
			}
			c.infoMu.Lock()
			c.info = info
			c.infoMu.Unlock()
			if info.LayoutGeneration != want.Generation {
				want.FinalSeq = 0 // another remap followed: its final sequence is not known
			}
			c.ringReader.beginRemap(info, want.FinalSeq)
			return
		case err == nil && want.Generation == 0:
			return
		case err != nil:
			c.log.Debug("hub: discovering the remapped layout", "err", err)
		}
		if !c.backoff(&wait) {
			return
		}
	}
}

// attachedGeneration is the layout generation of the current attachment.
func (c *ringReader) attachedGeneration() uint64 { return c.cur.Load().layout }

// remapTarget is what an attachment moves to once its ring is drained: the
// new layout's attachment, opened (its Reader registered) as soon as the
// remap was heard, so the producer's first writes on the new ring already wait
// for it; or why the layout is refused.
type remapTarget struct {
	info     ChannelInfo
	final    uint64
	prepared *ringAttach // nil when refused
	refused  error
	told     bool // EventRemapFailed raised already (c.moveMu guards it)
}

// beginRemap starts the move to the layout of info (final: the old ring's
// final sequence, 0 = not known): it opens the new attachment now, then moves
// Latest_only rings and absent attachments at once and ordered ones once a
// transaction found the old ring drained (ReadTxn.Next, runRead).
func (c *ringReader) beginRemap(info ChannelInfo, final uint64) {
	c.moveMu.Lock()
	defer c.moveMu.Unlock()
	a := c.cur.Load()
	if a.moved.Load() || info.LayoutGeneration <= a.layout || c.opts.Secret == 0 {
		return // moving already, there already, or not reading the ring at all
	}
	parent, dup := remapTail(a, info.LayoutGeneration)
	if dup != nil {
		dup.final = max(dup.final, final) // heard twice (notice and discovery): one target (moveMu guards final)
		return
	}
	to := &remapTarget{info: info, final: final}
	if to.refused = c.checkLayout(info); to.refused == nil {
		to.prepared = c.open(info)
	}
	if to.refusal() != nil && parent.block != nil && parent.block.Sync() != shm.LatestOnly {
		c.tellRefused(parent, to) // now, not once the old ring is drained: an idle reader would never hear it
	}
	if parent != a {
		// An earlier layout's ring is not drained yet: its items come first,
		// so this one waits behind it (a refused layout nobody read is replaced).
		if old := parent.next.Swap(to); old != nil {
			old.prepared.close()
		}
		c.log.Info("hub: layout remapped again; draining the earlier layouts first", "layout_generation", info.LayoutGeneration)
		return
	}
	if a.block == nil || a.block.Sync() == shm.LatestOnly {
		c.finishRemapLocked(a, to)
		return
	}
	c.mu.RLock() // cur and gen belong together
	if c.cur.Load() == a {
		if old := a.next.Swap(to); old != nil {
			old.prepared.close() // a later remap replaces an earlier target
		}
		c.gen.Load().cancel() // waits on the old ring end; from now on transactions only attempt
		to = nil
	}
	c.mu.RUnlock()
	if to != nil { // replaced meanwhile (producer restart): forget the target
		to.prepared.close()
		return
	}
	c.log.Info("hub: layout remapped; draining the old ring", "layout_generation", info.LayoutGeneration, "final_seq", final)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// remapTail walks the chain of remap targets from a (each prepared attachment
// may have its own target: remaps in a row) and returns the attachment whose
// target a layout of generation gen should become, or the target that is that
// generation already (dup). A refused target has no attachment to drain, so a
// newer layout replaces it.
func remapTail(a *ringAttach, gen uint64) (parent *ringAttach, dup *remapTarget) {
	parent = a
	for {
		t := parent.next.Load()
		switch {
		case t == nil:
			return parent, nil
		case t.info.LayoutGeneration >= gen:
			return nil, t
		case t.refusal() != nil:
			return parent, nil
		}
		parent = t.prepared
	}
}

// refusal is why the Consumer cannot take the target's layout (nil: it can).
func (to *remapTarget) refusal() error {
	switch {
	case to.prepared == nil:
		return to.refused
	case to.prepared.refused != nil:
		return to.prepared.refused
	}
	return to.prepared.err
}

// tellRefused raises EventRemapFailed for a refused layout as soon as it is
// known; the ordered reader still reads the ring from (which gets no more
// commits) to its end, then reads fail with ErrNoSHM (finishRemapLocked,
// which then raises nothing more).
func (c *ringReader) tellRefused(from *ringAttach, to *remapTarget) {
	to.told = true
	err := to.refusal()
	c.log.Error("hub: the remapped layout is refused; reading the old ring to its end, then no shared memory", "err", err)
	c.health.notify(ChannelNotice{Channel: c.name, Event: EventRemapFailed, SlotIndex: -1, Error: err.Error(),
		Remap: &RemapNotice{ShmName: to.info.ShmName, SchemaHashHex: to.info.SchemaHashHex, Generation: to.info.LayoutGeneration,
			FinalSeq: to.final, From: from.layout, Read: from.delivered.Load()}})
}

// finishRemap moves from attachment a to its remap target once a was drained.
func (c *ringReader) finishRemap(a *ringAttach) {
	c.moveMu.Lock()
	defer c.moveMu.Unlock()
	if to := a.next.Load(); to != nil {
		c.finishRemapLocked(a, to)
	}
}

// finishRemapLocked installs to's attachment in place of a (once; c.moveMu
// held, so a.moved is only set here) and raises EventRemapped or
// EventRemapFailed.
func (c *ringReader) finishRemapLocked(a *ringAttach, to *remapTarget) {
	if a.moved.Load() {
		return // moved already: to.prepared is in use (or was closed)
	}
	if c.cur.Load() != a || c.closing.Load() {
		to.prepared.close() // replaced (producer restart) or closing
		return
	}
	a.moved.Store(true)
	note := &RemapNotice{ShmName: to.info.ShmName, SchemaHashHex: to.info.SchemaHashHex, Generation: to.info.LayoutGeneration,
		FinalSeq: to.final, From: a.layout, Read: a.delivered.Load()}
	next := to.prepared
	if next == nil {
		next = &ringAttach{shmName: to.info.ShmName, layout: to.info.LayoutGeneration, err: to.refused}
	}
	c.replaceAttach(func() *ringAttach { return next })
	n := ChannelNotice{Channel: c.name, Event: EventRemapped, SlotIndex: -1, Remap: note}
	if refuse := to.refusal(); refuse != nil {
		n.Event, n.Error = EventRemapFailed, refuse.Error()
		c.log.Error("hub: the remapped layout is refused; continuing without shared memory", "err", refuse)
	} else {
		c.log.Info("hub: moved to the remapped layout", "segment", to.info.ShmName, "layout_generation", to.info.LayoutGeneration,
			"final_seq", to.final, "read", note.Read)
	}
	if !to.told {
		c.health.notify(n)
	}
	if after := next.next.Load(); after != nil {
		// Remapped again meanwhile: this ring gets no more commits either.
		c.gen.Load().cancel()
		if next.block == nil || next.block.Sync() == shm.LatestOnly {
			c.finishRemapLocked(next, after)
		}
	}
}

// checkLayout applies the Consumer's schema expectations to a remapped
// channel (ExpectSHM is checked by the attach itself).
func (c *ringReader) checkLayout(info ChannelInfo) error {
	if len(c.opts.ExpectedSchemaHash) > 0 && len(info.SchemaHash) == 32 && string(c.opts.ExpectedSchemaHash) != string(info.SchemaHash) {
		return fmt.Errorf("%w: the remapped channel has %s", ErrSchemaMismatch, info.SchemaHashHex)
	}
	return checkExpectedSchema(c.opts.ExpectedSchema, info.Schema)
}
