package hub

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// producerLink is the producer's peer link: the peer ROUTER, the table of
// joined consumers (HELLO, BYE, peer heartbeats, dead pids) and their flow
// control credit, and the data and control sends that spend it. It knows no
// DataBlock; the producer composes it with its ring writer.
type producerLink struct {
	name    string
	pat     Pattern
	opts    *ProducerOptions
	log     *slog.Logger
	cbs     *cbQueue     // the producer's peer callbacks
	closing *atomic.Bool // the producer's: set first thing in Close

	r      *wire.Router
	ctx    context.Context // cancelled by stop: ends Router.Recv
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent    atomic.Uint64 // messages accepted by Router.Send (for the close drain)
	dropped atomic.Uint64 // malformed peer messages
	skipped atomic.Uint64 // PubSub deliveries skipped at the deadline
	// redelivered counts items handed back by a departed group member and
	// delivered to another (producer_group.go).
	redelivered atomic.Uint64

	mu     sync.Mutex // guards peers, order, groups, gorder, wake, closed
	peers  map[string]*peerState
	order  []*peerState // join order
	groups map[string]*group
	gorder []*group      // groups in creation order (producer_group.go)
	wake   chan struct{} // closed and replaced when credits or membership change
	closed bool
}

// peerState is one joined consumer. Guarded by producerLink.mu.
type peerState struct {
	id       ConsumerIdentity
	key      string
	credit   int
	window   int
	hb       time.Duration // heartbeat period (announced, or PeerTimeout/2 when it announced none)
	lastSeen time.Time
	noHB     bool       // announced no heartbeat: asked to HELLO again when pruned
	slow     bool       // SlowConsumerDrop: in a drop streak (skipped without waiting)
	missed   uint64     // items skipped in the current streak (told by GAP)
	grp      *group     // the consumer group it is a member of, or nil (producer_group.go)
	inflight []*dataBuf // group member: items sent and not yet acknowledged, oldest first
}

// newProducerLink returns the peer link of p on its bound ROUTER r.
func newProducerLink(p *producer, r *wire.Router) *producerLink {
	return &producerLink{name: p.name, pat: p.pat, opts: &p.opts, log: p.log, cbs: p.cbs, closing: &p.closing,
		r: r, peers: map[string]*peerState{}, groups: map[string]*group{}, wake: make(chan struct{})}
}

// start starts the receive and heartbeat goroutines.
func (p *producerLink) start() {
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(2)
	go p.peerLoop()
	go p.tickLoop()
}

// isClosed reports whether close ran.
func (p *producerLink) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close forgets every consumer (waking blocked sends), says BYE to each, waits
// for the queued messages to be written (CloseDrain) and stops the link.
func (p *producerLink) close() {
	p.mu.Lock()
	p.closed = true
	peers := append([]*peerState(nil), p.order...)
	p.order, p.peers = nil, map[string]*peerState{}
	p.groups, p.gorder = map[string]*group{}, nil
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	for _, ps := range peers {
		p.send(ps.id.ID, proto.ControlFrames(TypeBye, nil)...)
	}
	p.drain()
	p.stop()
}

// Endpoint returns the bound peer endpoint.
func (p *producerLink) Endpoint() string { return p.r.Endpoint() }

// Stats returns the channel's counters.
func (p *producerLink) Stats() ChannelStats {
	p.mu.Lock()
	n := len(p.order)
	p.mu.Unlock()
	return ChannelStats{Consumers: n, Sent: p.sent.Load(), Dropped: p.dropped.Load(), Skipped: p.skipped.Load(),
		Redelivered: p.redelivered.Load()}
}

// drain waits (up to CloseDrain) until the Router wrote what we queued.
func (p *producerLink) drain() {
	deadline := time.Now().Add(p.opts.CloseDrain)
	for time.Now().Before(deadline) {
		st := p.r.Stats()
		if st.Sent+st.SendErrors >= p.sent.Load() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.log.Warn("hub: close: peer messages still queued after the drain time")
}

// stop ends the peer goroutines and closes the socket.
func (p *producerLink) stop() {
	p.cancel()
	p.r.Close()
	p.wg.Wait()
}

// send queues frames for one consumer and counts them.
func (p *producerLink) send(id []byte, frames ...[]byte) error {
	if err := p.r.Send(id, frames...); err != nil {
		return err
	}
	p.sent.Add(1)
	return nil
}

// peerLoop receives every message on the peer ROUTER.
func (p *producerLink) peerLoop() {
	defer p.wg.Done()
	for {
		m, err := p.r.Recv(p.ctx)
		if err != nil {
			return // closed
		}
		p.handlePeer(m)
	}
}

func (p *producerLink) handlePeer(m wire.Msg) {
	f, err := parsePeer(m.Frames)
	if err != nil {
		p.dropped.Add(1)
		p.log.Debug("hub: dropped peer message", "err", err)
		return
	}
	key := string(m.Peer)
	now := time.Now()
	if f.Kind == proto.KindData {
		ps := p.touch(key, now)
		if ps == nil {
			p.unknownPeer(m.Peer)
		}
		if ps == nil || p.pat != PatternBidir {
			p.dropped.Add(1)
			return
		}
		if fn := p.opts.Callbacks.OnConsumerData; fn != nil {
			id, body := ps.id, append([]byte(nil), f.Body...)
			p.cbs.submit("OnConsumerData", func() { fn(id, body) })
		}
		return
	}
	switch f.Type {
	case TypeHello:
		p.handleHello(m.Peer, f.Body, now)
	case TypeBye:
		p.mu.Lock()
		ps := p.removeLocked(key)
		p.mu.Unlock()
		_ = p.send(m.Peer, proto.ControlFrames(TypeByeAck, nil)...)
		if ps != nil {
			p.log.Info("hub: consumer left", "identity", hex.EncodeToString(ps.id.ID), "pid", ps.id.Pid)
			if fn := p.opts.Callbacks.OnConsumerLeft; fn != nil {
				id := ps.id
				p.cbs.submit("OnConsumerLeft", func() { fn(id) })
			}
		}
	case TypePeerHeartbeat:
		if p.touch(key, now) == nil {
			p.unknownPeer(m.Peer)
		}
	case TypeCredit:
		n, err := decodeCredit(f.Body)
		if err != nil {
			p.dropped.Add(1)
			p.log.Debug("hub: dropped peer message", "err", err)
			return
		}
		p.mu.Lock()
		ps := p.peers[key]
		if ps != nil {
			ps.lastSeen = now
			ps.credit = min(ps.credit+n, maxWindow)
			if ps.grp != nil {
				ps.ackLocked(n)
				p.pumpLocked(ps.grp)
			}
			p.wakeLocked()
		}
		p.mu.Unlock()
		if ps == nil {
			p.unknownPeer(m.Peer)
		}
	case TypeHelloAck, TypeByeAck:
		p.dropped.Add(1)
	default:
		ps := p.touch(key, now)
		if ps == nil {
			p.unknownPeer(m.Peer)
			p.dropped.Add(1)
			return
		}
		if fn := p.opts.Callbacks.OnConsumerMessage; fn != nil {
			id, typ, body := ps.id, f.Type, append([]byte(nil), f.Body...)
			p.cbs.submit("OnConsumerMessage", func() { fn(id, typ, body) })
		}
	}
}

// unknownPeer answers a message from a consumer we do not count joined (we
// dropped it as dead and it is still there) with REJOIN, so it says HELLO again
// and is re-admitted instead of starving silently.
func (p *producerLink) unknownPeer(peer []byte) {
	if p.isClosed() {
		return
	}
	if err := p.send(peer, proto.ControlFrames(TypeRejoin, nil)...); err != nil {
		p.log.Debug("hub: REJOIN not sent", "err", err)
		return
	}
	p.log.Info("hub: message from a consumer not joined (dropped earlier); asked it to HELLO again", "identity", hex.EncodeToString(peer))
}

func (p *producerLink) handleHello(peer []byte, body []byte, now time.Time) {
	h, err := decodeHello(body)
	if err != nil {
		p.dropped.Add(1)
		p.log.Warn("hub: bad HELLO", "err", err)
		return
	}
	key := string(peer)
	id := ConsumerIdentity{ID: append([]byte(nil), peer...), Pid: h.ConsumerPid, StartTime: h.ConsumerStartTime,
		UID: h.ConsumerUID, Name: h.ConsumerName}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	ps := p.peers[key]
	if ps == nil {
		if p.opts.MaxPeers > 0 && len(p.order) >= p.opts.MaxPeers {
			p.mu.Unlock()
			p.dropped.Add(1)
			p.log.Warn("hub: HELLO refused: the peer table is full", "identity", hex.EncodeToString(peer),
				"pid", h.ConsumerPid, "max_peers", p.opts.MaxPeers)
			return
		}
		ps = &peerState{key: key}
		p.peers[key] = ps
		p.order = append(p.order, ps)
	}
	ps.id, ps.credit, ps.window, ps.lastSeen = id, h.Window, h.Window, now
	ps.hb, ps.noHB = time.Duration(h.HeartbeatMs)*time.Millisecond, h.HeartbeatMs == 0
	if ps.noHB {
		ps.hb = p.opts.PeerTimeout / 2 // pruned like the others when silent
	}
	ps.slow, ps.missed = false, 0
	// HELLO_ACK goes out before any data of this admission (the Router send
	// never blocks): a group member discards what it holds of its previous
	// admission when it reads HELLO_ACK, since that was handed back.
	ack := mustJSON(helloAckBody{Channel: p.name, Pattern: string(p.pat), Window: h.Window, Group: h.Group})
	if err := p.send(peer, proto.ControlFrames(TypeHelloAck, ack)...); err != nil {
		p.log.Warn("hub: HELLO_ACK not sent", "err", err)
	}
	if name, ok := p.groupOf(h.Group); ok {
		p.joinGroupLocked(ps, name)
		p.pumpLocked(ps.grp)
	} else if ps.grp != nil {
		p.leaveGroupLocked(ps)
	}
	p.wakeLocked()
	p.mu.Unlock()
	p.log.Info("hub: consumer joined", "identity", hex.EncodeToString(peer), "pid", h.ConsumerPid, "window", h.Window, "group", h.Group)
	if fn := p.opts.Callbacks.OnConsumerJoined; fn != nil {
		p.cbs.submit("OnConsumerJoined", func() { fn(id) })
	}
}

// touch refreshes a joined consumer's liveness and returns it (nil if unknown).
func (p *producerLink) touch(key string, now time.Time) *peerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.peers[key]
	if ps != nil {
		ps.lastSeen = now
	}
	return ps
}

func (p *producerLink) wakeLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *producerLink) removeLocked(key string) *peerState {
	ps := p.peers[key]
	if ps == nil {
		return nil
	}
	delete(p.peers, key)
	for i, o := range p.order {
		if o == ps {
			p.order = append(p.order[:i:i], p.order[i+1:]...)
			break
		}
	}
	if ps.grp != nil {
		p.leaveGroupLocked(ps)
	}
	p.wakeLocked()
	return ps
}

// dropPid removes every consumer that said HELLO with pid.
func (p *producerLink) dropPid(pid uint64) {
	if pid == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range append([]*peerState(nil), p.order...) {
		if ps.id.Pid == pid {
			p.removeLocked(ps.key)
		}
	}
}

// tickLoop drops consumers that announced peer heartbeats and went silent.
func (p *producerLink) tickLoop() {
	defer p.wg.Done()
	if p.opts.PeerTimeout < 0 {
		<-p.ctx.Done()
		return
	}
	t := time.NewTicker(max(p.opts.PeerTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			p.prune(now)
		}
	}
}

func (p *producerLink) prune(now time.Time) {
	var dead, ask []ConsumerIdentity
	p.mu.Lock()
	for _, ps := range append([]*peerState(nil), p.order...) {
		if ps.hb > 0 && now.Sub(ps.lastSeen) > p.opts.PeerTimeout {
			p.removeLocked(ps.key)
			dead = append(dead, ps.id)
			if ps.noHB {
				ask = append(ask, ps.id)
			}
		}
	}
	p.mu.Unlock()
	// A consumer that announced no heartbeat may be alive and merely idle: ask
	// it to HELLO again (a dead or foreign one does not answer).
	for _, id := range ask {
		p.unknownPeer(id.ID)
	}
	for _, id := range dead {
		p.log.Warn("hub: consumer missed its peer heartbeats", "identity", hex.EncodeToString(id.ID), "pid", id.Pid)
		if fn := p.opts.Callbacks.OnConsumerDied; fn != nil && !p.closing.Load() {
			pid := id.Pid
			p.cbs.submit("OnConsumerDied", func() { fn(pid, ReasonPeerTimeout) })
		}
	}
}

// ConnectedConsumers returns the consumers that joined (HELLO) and have not left,
// died or been pruned, in join order.
func (p *producerLink) ConnectedConsumers() []ConsumerIdentity {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConsumerIdentity, len(p.order))
	for i, ps := range p.order {
		out[i] = ps.id
	}
	return out
}

// Send sends payload on the channel's data path (PubSub: to every joined
// consumer without a group; Pipeline: to exactly one of those, balanced by
// credit; and to exactly one member of every consumer group, B-7,
// producer_group.go). It waits for flow
// control credit until ctx ends (or SendTimeout when ctx has no deadline):
// ErrBackpressure (PubSub: the message reached the consumers that had credit),
// ErrNoConsumers (Pipeline without any consumer). PubSub waits so only under
// SlowConsumerBlock; under SlowConsumerDrop/Disconnect it waits at most
// SlowConsumerAfter for a consumer's credit and then skips or drops that
// consumer. PubSub without consumers drops the message and returns nil. Send copies payload. ErrWrongPattern on
// Bidir (use SendTo).
func (p *producerLink) Send(ctx context.Context, payload []byte) error {
	if p.pat == PatternBidir {
		return fmt.Errorf("send %q: %w: Bidir needs SendTo", p.name, ErrWrongPattern)
	}
	pb := newDataBuf(payload)
	defer pb.Release()
	return p.sendData(ctx, pb)
}

// sendData sends pb as Send does (the caller holds a reference to pb).
func (p *producerLink) sendData(ctx context.Context, pb *dataBuf) error {
	w := &creditWait{p: p, parent: ctx}
	defer w.release()
	if p.pat == PatternPipeline {
		return p.sendGroups(w, pb, true)
	}
	if err := p.broadcast(w, pb); err != nil {
		_ = p.sendGroups(w, pb, false) // the groups with credit still get it
		return err
	}
	return p.sendGroups(w, pb, false)
}

// dataBuf is Send's copy of a data message, pooled: each Router queue holding
// it has a reference (wire.Router.SendRelease), and Send holds one until it
// returns, so the buffer is reused only once every write is done.
type dataBuf struct {
	frames [][]byte // proto.DataFrames of b
	refs   atomic.Int32
}

var dataPool = sync.Pool{New: func() any { return new(dataBuf) }}

// maxPooled: larger copies are left to the garbage collector.
const maxPooled = 256 << 10

func newDataBuf(b []byte) *dataBuf {
	pb := emptyDataBuf(len(b))
	copy(pb.frames[1], b) // the Router copies the frame list, not the frames
	return pb
}

// emptyDataBuf returns a pooled buffer holding n bytes of undefined content.
func emptyDataBuf(n int) *dataBuf {
	pb := dataPool.Get().(*dataBuf)
	if pb.frames == nil {
		pb.frames = proto.DataFrames(nil)
	}
	if cap(pb.frames[1]) < n {
		pb.frames[1] = make([]byte, n)
	}
	pb.frames[1] = pb.frames[1][:n]
	pb.refs.Store(1)
	return pb
}

// Release drops one reference; the last puts the buffer back in the pool.
func (pb *dataBuf) Release() {
	if pb.refs.Add(-1) != 0 {
		return
	}
	if cap(pb.frames[1]) > maxPooled {
		pb.frames = nil
	}
	dataPool.Put(pb)
}

// sendPayload queues pb for one consumer, holding a reference for the Router.
func (p *producerLink) sendPayload(id []byte, pb *dataBuf) error {
	pb.refs.Add(1)
	if err := p.r.SendRelease(id, pb, pb.frames...); err != nil {
		pb.refs.Add(-1) // the Router kept nothing; Send still holds its own
		return err
	}
	p.sent.Add(1)
	return nil
}

// sendCtx is ctx bounded by SendTimeout when it has no deadline. Sends call it
// only once they have to wait for credit (a timer per message costs more than
// the rest of a send).
func (p *producerLink) sendCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.opts.SendTimeout)
}

// creditWait waits for the wake channel or the end of the send's deadline,
// creating the deadline (sendCtx) at the first wait. It reports whether the
// send may try again.
type creditWait struct {
	p      *producerLink
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func (w *creditWait) wait(wake <-chan struct{}) bool {
	if w.ctx == nil {
		w.ctx, w.cancel = w.p.sendCtx(w.parent)
	}
	select {
	case <-wake:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// err is the deadline's error once wait returned false.
func (w *creditWait) err() error { return w.ctx.Err() }

// release frees the deadline's timer.
func (w *creditWait) release() {
	if w.cancel != nil {
		w.cancel()
	}
}

// SendTo sends payload to one consumer (Bidir data), waiting for its credit
// like Send. ErrUnknownConsumer when it has not joined, ErrWrongPattern when the
// channel is not Bidir.
func (p *producerLink) SendTo(ctx context.Context, id []byte, payload []byte) error {
	if p.pat != PatternBidir {
		return fmt.Errorf("send to %q: %w: only Bidir addresses one consumer", p.name, ErrWrongPattern)
	}
	pb := newDataBuf(payload)
	defer pb.Release()
	return p.sendOne(ctx, id, pb)
}

// SendCtrl sends a control message of type typ ("" = "CTRL") to one joined
// consumer; it arrives at the consumer's OnProducerMessage. No flow control.
func (p *producerLink) SendCtrl(id []byte, typ string, body []byte) error {
	if typ == "" {
		typ = TypeCtrl
	}
	if reservedType(typ) {
		return fmt.Errorf("send ctrl %q: %w: %s", p.name, ErrReservedType, typ)
	}
	p.mu.Lock()
	ps, closed := p.peers[string(id)], p.closed
	p.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("send ctrl %q: %w", p.name, ErrClosed)
	case ps == nil:
		return fmt.Errorf("send ctrl %q: %w", p.name, ErrUnknownConsumer)
	}
	if err := p.send(id, proto.ControlFrames(typ, append([]byte(nil), body...))...); err != nil {
		return fmt.Errorf("send ctrl %q: %w", p.name, err)
	}
	return nil
}

// BroadcastCtrl sends a control message to every joined consumer.
func (p *producerLink) BroadcastCtrl(typ string, body []byte) error {
	var first error
	for _, c := range p.ConnectedConsumers() {
		if err := p.SendCtrl(c.ID, typ, body); err != nil && first == nil && !errors.Is(err, ErrUnknownConsumer) {
			first = err
		}
	}
	return first
}

// sendOne sends to consumer id once it has credit (Bidir).
func (p *producerLink) sendOne(ctx context.Context, id []byte, pb *dataBuf) error {
	w := creditWait{p: p, parent: ctx}
	defer w.release()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return fmt.Errorf("send %q: %w", p.name, ErrClosed)
		}
		ps := p.peers[string(id)]
		if ps == nil {
			p.mu.Unlock()
			return fmt.Errorf("send %q: %w", p.name, ErrUnknownConsumer)
		}
		if ps.credit > 0 {
			ps.credit--
			target := ps.id.ID
			p.mu.Unlock()
			if err := p.sendPayload(target, pb); err != nil {
				return fmt.Errorf("send %q: %w", p.name, err)
			}
			return nil
		}
		wake := p.wake
		p.mu.Unlock()
		if !w.wait(wake) {
			return fmt.Errorf("send %q: %w: %w", p.name, ErrBackpressure, w.err())
		}
	}
}

// broadcast sends to every joined consumer without a group once each has
// credit (SlowConsumerBlock; the other policies: broadcastSlow).
func (p *producerLink) broadcast(w *creditWait, pb *dataBuf) error {
	if p.opts.SlowConsumer != SlowConsumerBlock {
		return p.broadcastSlow(w, pb)
	}
	done := map[string]bool{}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return fmt.Errorf("send %q: %w", p.name, ErrClosed)
		}
		var ready [][]byte
		waiting := 0
		for _, ps := range p.order {
			if done[ps.key] || ps.grp != nil {
				continue
			}
			if ps.credit > 0 {
				ps.credit--
				ready = append(ready, ps.id.ID)
				done[ps.key] = true
			} else {
				waiting++
			}
		}
		wake := p.wake
		p.mu.Unlock()
		for _, id := range ready {
			if err := p.sendPayload(id, pb); err != nil {
				p.log.Debug("hub: broadcast to one consumer failed", "err", err)
			}
		}
		if waiting == 0 {
			return nil
		}
		if !w.wait(wake) {
			p.skipped.Add(uint64(waiting))
			return fmt.Errorf("send %q: %w: %d consumer(s) skipped: %w", p.name, ErrBackpressure, waiting, w.err())
		}
	}
}

// Flush waits until every joined consumer has consumed everything sent to it
// (its whole credit window is back) or ctx ends. A consumer in a
// SlowConsumerDrop streak is not waited for.
func (p *producerLink) Flush(ctx context.Context) error {
	for {
		p.mu.Lock()
		pending := p.groupsPendingLocked()
		for _, ps := range p.order {
			if ps.credit < ps.window && !ps.slow {
				pending = true
			}
		}
		wake := p.wake
		p.mu.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("flush %q: %w", p.name, ctx.Err())
		}
	}
}

// slowSend is one consumer's share of a broadcastSlow round: its GAP (when it
// ends a drop streak) goes before the data.
type slowSend struct {
	id     []byte
	missed uint64 // > 0: send GAP first
}

// broadcastSlow is PubSub Send under SlowConsumerDrop and
// SlowConsumerDisconnect: every consumer with credit gets the message at once;
// one without credit is waited for up to SlowConsumerAfter, then counted slow
// (slowLocked). A consumer already in a drop streak is skipped without waiting
// until it returns credit, and then told how many it missed (GAP).
func (p *producerLink) broadcastSlow(w *creditWait, pb *dataBuf) error {
	done := map[string]bool{}
	var grace *time.Timer
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return fmt.Errorf("send %q: %w", p.name, ErrClosed)
		}
		ready, waiting := p.roundLocked(done)
		wake := p.wake
		p.mu.Unlock()
		for _, r := range ready {
			p.sendSlow(r, pb)
		}
		if waiting == 0 {
			return nil
		}
		if grace == nil {
			grace = time.NewTimer(p.opts.SlowConsumerAfter)
		}
		switch p.waitSlow(w, wake, grace.C) {
		case waitWoken:
		case waitGrace:
			p.mu.Lock()
			ready, _ = p.roundLocked(done)
			gone := p.slowLocked(done)
			p.mu.Unlock()
			for _, r := range ready {
				p.sendSlow(r, pb)
			}
			p.tellDisconnected(gone)
			return nil
		default:
			p.skipped.Add(uint64(waiting))
			return fmt.Errorf("send %q: %w: %d consumer(s) skipped: %w", p.name, ErrBackpressure, waiting, w.err())
		}
	}
}

const (
	waitWoken = iota
	waitGrace
	waitDeadline
)

// waitSlow waits for credit, the slow-consumer grace or the send's deadline.
func (p *producerLink) waitSlow(w *creditWait, wake <-chan struct{}, grace <-chan time.Time) int {
	if w.ctx == nil {
		w.ctx, w.cancel = p.sendCtx(w.parent)
	}
	select {
	case <-wake:
		return waitWoken
	case <-grace:
		return waitGrace
	case <-w.ctx.Done():
		return waitDeadline
	}
}

// roundLocked takes one credit from every consumer not yet served (done) that
// has one, and skips (counting missed) those in a drop streak. It returns the
// sends to make and how many consumers still lack credit.
func (p *producerLink) roundLocked(done map[string]bool) (ready []slowSend, waiting int) {
	for _, ps := range p.order {
		switch {
		case done[ps.key] || ps.grp != nil:
			continue
		case ps.credit > 0:
			ps.credit--
			ready = append(ready, slowSend{id: ps.id.ID, missed: ps.missed})
			ps.slow, ps.missed = false, 0
		case ps.slow:
			ps.missed++
			p.skipped.Add(1)
		default:
			waiting++
			continue
		}
		done[ps.key] = true
	}
	return ready, waiting
}

// slowLocked applies the policy to every consumer not served (done) that
// still has no credit after SlowConsumerAfter: SlowConsumerDrop starts its drop
// streak (this message is its first miss); SlowConsumerDisconnect drops it and
// returns it, to be sent SLOW_CONSUMER (tellDisconnected).
func (p *producerLink) slowLocked(done map[string]bool) (gone []ConsumerIdentity) {
	for _, ps := range append([]*peerState(nil), p.order...) {
		if done[ps.key] || ps.credit > 0 || ps.grp != nil {
			continue
		}
		p.skipped.Add(1)
		id, action := ps.id, p.opts.SlowConsumer
		if action == SlowConsumerDisconnect {
			p.removeLocked(ps.key)
			gone = append(gone, id)
		} else {
			ps.slow, ps.missed = true, 1
			p.log.Info("hub: slow consumer: dropping items for it until it returns credit", "identity", hex.EncodeToString(id.ID), "pid", id.Pid)
		}
		if fn := p.opts.Callbacks.OnSlowConsumer; fn != nil {
			missed := uint64(1)
			if action == SlowConsumerDrop {
				missed = 0
			}
			p.cbs.submit("OnSlowConsumer", func() { fn(id, action, missed) })
		}
	}
	return gone
}

// tellDisconnected sends SLOW_CONSUMER to the consumers slowLocked dropped.
func (p *producerLink) tellDisconnected(gone []ConsumerIdentity) {
	body := mustJSON(gapBody{Missed: 1, Reason: "no credit for " + p.opts.SlowConsumerAfter.String()})
	for _, id := range gone {
		if err := p.send(id.ID, proto.ControlFrames(TypeSlowConsumer, body)...); err != nil {
			p.log.Debug("hub: SLOW_CONSUMER not sent", "err", err)
		}
		p.log.Warn("hub: slow consumer disconnected", "identity", hex.EncodeToString(id.ID), "pid", id.Pid)
	}
}

// sendSlow sends GAP (when r ends a drop streak) and then the data to r.
func (p *producerLink) sendSlow(r slowSend, pb *dataBuf) {
	if r.missed > 0 {
		if err := p.send(r.id, proto.ControlFrames(TypeGap, mustJSON(gapBody{Missed: r.missed}))...); err != nil {
			p.log.Debug("hub: GAP not sent", "err", err)
		}
	}
	if err := p.sendPayload(r.id, pb); err != nil {
		p.log.Debug("hub: broadcast to one consumer failed", "err", err)
	}
}
