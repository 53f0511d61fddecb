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

	mu     sync.Mutex // guards peers, order, rr, wake, closed
	peers  map[string]*peerState
	order  []*peerState // join order (round robin)
	rr     int
	wake   chan struct{} // closed and replaced when credits or membership change
	closed bool
}

// peerState is one joined consumer. Guarded by producerLink.mu.
type peerState struct {
	id       ConsumerIdentity
	key      string
	credit   int
	window   int
	hb       time.Duration // announced heartbeat period (0 = none)
	lastSeen time.Time
}

// newProducerLink returns the peer link of p on its bound ROUTER r.
func newProducerLink(p *producer, r *wire.Router) *producerLink {
	return &producerLink{name: p.name, pat: p.pat, opts: &p.opts, log: p.log, cbs: p.cbs, closing: &p.closing,
		r: r, peers: map[string]*peerState{}, wake: make(chan struct{})}
}

// start starts the receive and heartbeat goroutines.
func (l *producerLink) start() {
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(2)
	go l.peerLoop()
	go l.tickLoop()
}

// isClosed reports whether close ran.
func (l *producerLink) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close forgets every consumer (waking blocked sends), says BYE to each, waits
// for the queued messages to be written (CloseDrain) and stops the link.
func (l *producerLink) close() {
	l.mu.Lock()
	l.closed = true
	peers := append([]*peerState(nil), l.order...)
	l.order, l.peers = nil, map[string]*peerState{}
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
	for _, ps := range peers {
		l.send(ps.id.ID, proto.ControlFrames(TypeBye, nil)...)
	}
	l.drain()
	l.stop()
}

// Endpoint returns the bound peer endpoint.
func (l *producerLink) Endpoint() string { return l.r.Endpoint() }

// Stats returns the channel's counters.
func (l *producerLink) Stats() ChannelStats {
	l.mu.Lock()
	n := len(l.order)
	l.mu.Unlock()
	return ChannelStats{Consumers: n, Sent: l.sent.Load(), Dropped: l.dropped.Load(), Skipped: l.skipped.Load()}
}

// drain waits (up to CloseDrain) until the Router wrote what we queued.
func (l *producerLink) drain() {
	deadline := time.Now().Add(l.opts.CloseDrain)
	for time.Now().Before(deadline) {
		st := l.r.Stats()
		if st.Sent+st.SendErrors >= l.sent.Load() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	l.log.Warn("hub: close: peer messages still queued after the drain time")
}

// stop ends the peer goroutines and closes the socket.
func (l *producerLink) stop() {
	l.cancel()
	l.r.Close()
	l.wg.Wait()
}

// send queues frames for one consumer and counts them.
func (l *producerLink) send(id []byte, frames ...[]byte) error {
	if err := l.r.Send(id, frames...); err != nil {
		return err
	}
	l.sent.Add(1)
	return nil
}

// peerLoop receives every message on the peer ROUTER.
func (l *producerLink) peerLoop() {
	defer l.wg.Done()
	for {
		m, err := l.r.Recv(l.ctx)
		if err != nil {
			return // closed
		}
		l.handlePeer(m)
	}
}

func (l *producerLink) handlePeer(m wire.Msg) {
	f, err := parsePeer(m.Frames)
	if err != nil {
		l.dropped.Add(1)
		l.log.Debug("hub: dropped peer message", "err", err)
		return
	}
	key := string(m.Peer)
	now := time.Now()
	if f.Kind == proto.KindData {
		ps := l.touch(key, now)
		if ps == nil || l.pat != PatternBidir {
			l.dropped.Add(1)
			return
		}
		if fn := l.opts.Callbacks.OnConsumerData; fn != nil {
			id, body := ps.id, append([]byte(nil), f.Body...)
			l.cbs.submit("OnConsumerData", func() { fn(id, body) })
		}
		return
	}
	switch f.Type {
	case TypeHello:
		l.handleHello(m.Peer, f.Body, now)
	case TypeBye:
		l.mu.Lock()
		ps := l.removeLocked(key)
		l.mu.Unlock()
		_ = l.send(m.Peer, proto.ControlFrames(TypeByeAck, nil)...)
		if ps != nil {
			l.log.Info("hub: consumer left", "identity", hex.EncodeToString(ps.id.ID), "pid", ps.id.Pid)
			if fn := l.opts.Callbacks.OnConsumerLeft; fn != nil {
				id := ps.id
				l.cbs.submit("OnConsumerLeft", func() { fn(id) })
			}
		}
	case TypePeerHeartbeat:
		l.touch(key, now)
	case TypeCredit:
		n, err := decodeCredit(f.Body)
		if err != nil {
			l.dropped.Add(1)
			l.log.Debug("hub: dropped peer message", "err", err)
			return
		}
		l.mu.Lock()
		if ps := l.peers[key]; ps != nil {
			ps.lastSeen = now
			ps.credit = min(ps.credit+n, maxWindow)
			l.wakeLocked()
		}
		l.mu.Unlock()
	case TypeHelloAck, TypeByeAck:
		l.dropped.Add(1)
	default:
		ps := l.touch(key, now)
		if ps == nil {
			l.dropped.Add(1)
			return
		}
		if fn := l.opts.Callbacks.OnConsumerMessage; fn != nil {
			id, typ, body := ps.id, f.Type, append([]byte(nil), f.Body...)
			l.cbs.submit("OnConsumerMessage", func() { fn(id, typ, body) })
		}
	}
}

func (l *producerLink) handleHello(peer []byte, body []byte, now time.Time) {
	h, err := decodeHello(body)
	if err != nil {
		l.dropped.Add(1)
		l.log.Warn("hub: bad HELLO", "err", err)
		return
	}
	key := string(peer)
	id := ConsumerIdentity{ID: append([]byte(nil), peer...), Pid: h.ConsumerPid, StartTime: h.ConsumerStartTime,
		UID: h.ConsumerUID, Name: h.ConsumerName}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	ps := l.peers[key]
	if ps == nil {
		ps = &peerState{key: key}
		l.peers[key] = ps
		l.order = append(l.order, ps)
	}
	ps.id, ps.credit, ps.window, ps.lastSeen = id, h.Window, h.Window, now
	ps.hb = time.Duration(h.HeartbeatMs) * time.Millisecond
	l.wakeLocked()
	l.mu.Unlock()
	ack := mustJSON(helloAckBody{Channel: l.name, Pattern: string(l.pat), Window: h.Window})
	if err := l.send(peer, proto.ControlFrames(TypeHelloAck, ack)...); err != nil {
		l.log.Warn("hub: HELLO_ACK not sent", "err", err)
	}
	l.log.Info("hub: consumer joined", "identity", hex.EncodeToString(peer), "pid", h.ConsumerPid, "window", h.Window)
	if fn := l.opts.Callbacks.OnConsumerJoined; fn != nil {
		l.cbs.submit("OnConsumerJoined", func() { fn(id) })
	}
}

// touch refreshes a joined consumer's liveness and returns it (nil if unknown).
func (l *producerLink) touch(key string, now time.Time) *peerState {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := l.peers[key]
	if ps != nil {
		ps.lastSeen = now
	}
	return ps
}

func (l *producerLink) wakeLocked() {
	close(l.wake)
	l.wake = make(chan struct{})
}

func (l *producerLink) removeLocked(key string) *peerState {
	ps := l.peers[key]
	if ps == nil {
		return nil
	}
	delete(l.peers, key)
	for i, o := range l.order {
		if o == ps {
			l.order = append(l.order[:i:i], l.order[i+1:]...)
			break
		}
	}
	l.wakeLocked()
	return ps
}

// dropPid removes every consumer that said HELLO with pid.
func (l *producerLink) dropPid(pid uint64) {
	if pid == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ps := range append([]*peerState(nil), l.order...) {
		if ps.id.Pid == pid {
			l.removeLocked(ps.key)
		}
	}
}

// tickLoop drops consumers that announced peer heartbeats and went silent.
func (l *producerLink) tickLoop() {
	defer l.wg.Done()
	if l.opts.PeerTimeout < 0 {
		<-l.ctx.Done()
		return
	}
	t := time.NewTicker(max(l.opts.PeerTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case now := <-t.C:
			l.prune(now)
		}
	}
}

func (l *producerLink) prune(now time.Time) {
	var dead []ConsumerIdentity
	l.mu.Lock()
	for _, ps := range append([]*peerState(nil), l.order...) {
		if ps.hb > 0 && now.Sub(ps.lastSeen) > l.opts.PeerTimeout {
			l.removeLocked(ps.key)
			dead = append(dead, ps.id)
		}
	}
	l.mu.Unlock()
	for _, id := range dead {
		l.log.Warn("hub: consumer missed its peer heartbeats", "identity", hex.EncodeToString(id.ID), "pid", id.Pid)
		if fn := l.opts.Callbacks.OnConsumerDied; fn != nil && !l.closing.Load() {
			pid := id.Pid
			l.cbs.submit("OnConsumerDied", func() { fn(pid, ReasonPeerTimeout) })
		}
	}
}

// ConnectedConsumers returns the consumers that joined (HELLO) and have not left,
// died or been pruned, in join order.
func (l *producerLink) ConnectedConsumers() []ConsumerIdentity {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ConsumerIdentity, len(l.order))
	for i, ps := range l.order {
		out[i] = ps.id
	}
	return out
}

// Send sends payload on the channel's data path (PubSub: to every joined
// consumer; Pipeline: to exactly one, balanced by credit). It waits for flow
// control credit until ctx ends (or SendTimeout when ctx has no deadline):
// ErrBackpressure (PubSub: the message reached the consumers that had credit),
// ErrNoConsumers (Pipeline without any consumer). PubSub without consumers
// drops the message and returns nil. Send copies payload. ErrWrongPattern on
// Bidir (use SendTo).
func (l *producerLink) Send(ctx context.Context, payload []byte) error {
	if l.pat == PatternBidir {
		return fmt.Errorf("send %q: %w: Bidir needs SendTo", l.name, ErrWrongPattern)
	}
	ctx, cancel := l.sendCtx(ctx)
	defer cancel()
	frames := proto.DataFrames(append([]byte(nil), payload...))
	if l.pat == PatternPipeline {
		return l.sendOne(ctx, nil, frames)
	}
	return l.broadcast(ctx, frames)
}

func (l *producerLink) sendCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.opts.SendTimeout)
}

// SendTo sends payload to one consumer (Bidir data), waiting for its credit
// like Send. ErrUnknownConsumer when it has not joined, ErrWrongPattern when the
// channel is not Bidir.
func (l *producerLink) SendTo(ctx context.Context, id []byte, payload []byte) error {
	if l.pat != PatternBidir {
		return fmt.Errorf("send to %q: %w: only Bidir addresses one consumer", l.name, ErrWrongPattern)
	}
	ctx, cancel := l.sendCtx(ctx)
	defer cancel()
	return l.sendOne(ctx, id, proto.DataFrames(append([]byte(nil), payload...)))
}

// SendCtrl sends a control message of type typ ("" = "CTRL") to one joined
// consumer; it arrives at the consumer's OnProducerMessage. No flow control.
func (l *producerLink) SendCtrl(id []byte, typ string, body []byte) error {
	if typ == "" {
		typ = TypeCtrl
	}
	if reservedType(typ) {
		return fmt.Errorf("send ctrl %q: %w: %s", l.name, ErrReservedType, typ)
	}
	l.mu.Lock()
	ps, closed := l.peers[string(id)], l.closed
	l.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("send ctrl %q: %w", l.name, ErrClosed)
	case ps == nil:
		return fmt.Errorf("send ctrl %q: %w", l.name, ErrUnknownConsumer)
	}
	if err := l.send(id, proto.ControlFrames(typ, append([]byte(nil), body...))...); err != nil {
		return fmt.Errorf("send ctrl %q: %w", l.name, err)
	}
	return nil
}

// BroadcastCtrl sends a control message to every joined consumer.
func (l *producerLink) BroadcastCtrl(typ string, body []byte) error {
	var first error
	for _, c := range l.ConnectedConsumers() {
		if err := l.SendCtrl(c.ID, typ, body); err != nil && first == nil && !errors.Is(err, ErrUnknownConsumer) {
			first = err
		}
	}
	return first
}

// sendOne sends to id (or, with id nil, to the next consumer with credit).
func (l *producerLink) sendOne(ctx context.Context, id []byte, frames [][]byte) error {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return fmt.Errorf("send %q: %w", l.name, ErrClosed)
		}
		var ps *peerState
		if id != nil {
			ps = l.peers[string(id)]
			if ps == nil {
				l.mu.Unlock()
				return fmt.Errorf("send %q: %w", l.name, ErrUnknownConsumer)
			}
			if ps.credit <= 0 {
				ps = nil
			}
		} else {
			for i := range l.order {
				c := l.order[(l.rr+i)%len(l.order)]
				if c.credit > 0 {
					ps = c
					l.rr = (l.rr + i + 1) % len(l.order)
					break
				}
			}
		}
		if ps != nil {
			ps.credit--
			target := ps.id.ID
			l.mu.Unlock()
			if err := l.send(target, frames...); err != nil {
				return fmt.Errorf("send %q: %w", l.name, err)
			}
			return nil
		}
		none := len(l.order) == 0
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			if none {
				return fmt.Errorf("send %q: %w: %w", l.name, ErrNoConsumers, ctx.Err())
			}
			return fmt.Errorf("send %q: %w: %w", l.name, ErrBackpressure, ctx.Err())
		}
	}
}

// broadcast sends to every joined consumer once each has credit.
func (l *producerLink) broadcast(ctx context.Context, frames [][]byte) error {
	done := map[string]bool{}
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return fmt.Errorf("send %q: %w", l.name, ErrClosed)
		}
		var ready [][]byte
		waiting := 0
		for _, ps := range l.order {
			if done[ps.key] {
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
		wake := l.wake
		l.mu.Unlock()
		for _, id := range ready {
			if err := l.send(id, frames...); err != nil {
				l.log.Debug("hub: broadcast to one consumer failed", "err", err)
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			l.skipped.Add(uint64(waiting))
			return fmt.Errorf("send %q: %w: %d consumer(s) skipped: %w", l.name, ErrBackpressure, waiting, ctx.Err())
		}
	}
}

// Flush waits until every joined consumer has consumed everything sent to it
// (its whole credit window is back) or ctx ends.
func (l *producerLink) Flush(ctx context.Context) error {
	for {
		l.mu.Lock()
		pending := false
		for _, ps := range l.order {
			if ps.credit < ps.window {
				pending = true
			}
		}
		wake := l.wake
		l.mu.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("flush %q: %w", l.name, ctx.Err())
		}
	}
}
