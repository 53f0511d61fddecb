package hub

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// peerLoop receives every message on the peer ROUTER.
func (p *producer) peerLoop() {
	defer p.wg.Done()
	for {
		m, err := p.r.Recv(p.ctx)
		if err != nil {
			return // closed
		}
		p.handlePeer(m)
	}
}

func (p *producer) handlePeer(m wire.Msg) {
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
		p.touch(key, now)
	case TypeCredit:
		n, err := decodeCredit(f.Body)
		if err != nil {
			p.dropped.Add(1)
			p.log.Debug("hub: dropped peer message", "err", err)
			return
		}
		p.mu.Lock()
		if ps := p.peers[key]; ps != nil {
			ps.lastSeen = now
			ps.credit = min(ps.credit+n, maxWindow)
			p.wakeLocked()
		}
		p.mu.Unlock()
	case TypeHelloAck, TypeByeAck:
		p.dropped.Add(1)
	default:
		ps := p.touch(key, now)
		if ps == nil {
			p.dropped.Add(1)
			return
		}
		if fn := p.opts.Callbacks.OnConsumerMessage; fn != nil {
			id, typ, body := ps.id, f.Type, append([]byte(nil), f.Body...)
			p.cbs.submit("OnConsumerMessage", func() { fn(id, typ, body) })
		}
	}
}

func (p *producer) handleHello(peer []byte, body []byte, now time.Time) {
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
		ps = &peerState{key: key}
		p.peers[key] = ps
		p.order = append(p.order, ps)
	}
	ps.id, ps.credit, ps.window, ps.lastSeen = id, h.Window, h.Window, now
	ps.hb = time.Duration(h.HeartbeatMs) * time.Millisecond
	p.wakeLocked()
	p.mu.Unlock()
	ack := mustJSON(helloAckBody{Channel: p.name, Pattern: string(p.pat), Window: h.Window})
	if err := p.send(peer, proto.ControlFrames(TypeHelloAck, ack)...); err != nil {
		p.log.Warn("hub: HELLO_ACK not sent", "err", err)
	}
	p.log.Info("hub: consumer joined", "identity", hex.EncodeToString(peer), "pid", h.ConsumerPid, "window", h.Window)
	if fn := p.opts.Callbacks.OnConsumerJoined; fn != nil {
		p.cbs.submit("OnConsumerJoined", func() { fn(id) })
	}
}

// touch refreshes a joined consumer's liveness and returns it (nil if unknown).
func (p *producer) touch(key string, now time.Time) *peerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.peers[key]
	if ps != nil {
		ps.lastSeen = now
	}
	return ps
}

func (p *producer) wakeLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *producer) removeLocked(key string) *peerState {
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
	p.wakeLocked()
	return ps
}

// dropPid removes every consumer that said HELLO with pid.
func (p *producer) dropPid(pid uint64) {
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
func (p *producer) tickLoop() {
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

func (p *producer) prune(now time.Time) {
	var dead []ConsumerIdentity
	p.mu.Lock()
	for _, ps := range append([]*peerState(nil), p.order...) {
		if ps.hb > 0 && now.Sub(ps.lastSeen) > p.opts.PeerTimeout {
			p.removeLocked(ps.key)
			dead = append(dead, ps.id)
		}
	}
	p.mu.Unlock()
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
func (p *producer) ConnectedConsumers() []ConsumerIdentity {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConsumerIdentity, len(p.order))
	for i, ps := range p.order {
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
func (p *producer) Send(ctx context.Context, payload []byte) error {
	if p.pat == PatternBidir {
		return fmt.Errorf("send %q: %w: Bidir needs SendTo", p.name, ErrWrongPattern)
	}
	ctx, cancel := p.sendCtx(ctx)
	defer cancel()
	frames := proto.DataFrames(append([]byte(nil), payload...))
	if p.pat == PatternPipeline {
		return p.sendOne(ctx, nil, frames)
	}
	return p.broadcast(ctx, frames)
}

func (p *producer) sendCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.opts.SendTimeout)
}

// SendTo sends payload to one consumer (Bidir data), waiting for its credit
// like Send. ErrUnknownConsumer when it has not joined, ErrWrongPattern when the
// channel is not Bidir.
func (p *producer) SendTo(ctx context.Context, id []byte, payload []byte) error {
	if p.pat != PatternBidir {
		return fmt.Errorf("send to %q: %w: only Bidir addresses one consumer", p.name, ErrWrongPattern)
	}
	ctx, cancel := p.sendCtx(ctx)
	defer cancel()
	return p.sendOne(ctx, id, proto.DataFrames(append([]byte(nil), payload...)))
}

// SendCtrl sends a control message of type typ ("" = "CTRL") to one joined
// consumer; it arrives at the consumer's OnProducerMessage. No flow control.
func (p *producer) SendCtrl(id []byte, typ string, body []byte) error {
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
func (p *producer) BroadcastCtrl(typ string, body []byte) error {
	var first error
	for _, c := range p.ConnectedConsumers() {
		if err := p.SendCtrl(c.ID, typ, body); err != nil && first == nil && !errors.Is(err, ErrUnknownConsumer) {
			first = err
		}
	}
	return first
}

// sendOne sends to id (or, with id nil, to the next consumer with credit).
func (p *producer) sendOne(ctx context.Context, id []byte, frames [][]byte) error {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return fmt.Errorf("send %q: %w", p.name, ErrClosed)
		}
		var ps *peerState
		if id != nil {
			ps = p.peers[string(id)]
			if ps == nil {
				p.mu.Unlock()
				return fmt.Errorf("send %q: %w", p.name, ErrUnknownConsumer)
			}
			if ps.credit <= 0 {
				ps = nil
			}
		} else {
			for i := range p.order {
				c := p.order[(p.rr+i)%len(p.order)]
				if c.credit > 0 {
					ps = c
					p.rr = (p.rr + i + 1) % len(p.order)
					break
				}
			}
		}
		if ps != nil {
			ps.credit--
			target := ps.id.ID
			p.mu.Unlock()
			if err := p.send(target, frames...); err != nil {
				return fmt.Errorf("send %q: %w", p.name, err)
			}
			return nil
		}
		none := len(p.order) == 0
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			if none {
				return fmt.Errorf("send %q: %w: %w", p.name, ErrNoConsumers, ctx.Err())
			}
			return fmt.Errorf("send %q: %w: %w", p.name, ErrBackpressure, ctx.Err())
		}
	}
}

// broadcast sends to every joined consumer once each has credit.
func (p *producer) broadcast(ctx context.Context, frames [][]byte) error {
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
		wake := p.wake
		p.mu.Unlock()
		for _, id := range ready {
			if err := p.send(id, frames...); err != nil {
				p.log.Debug("hub: broadcast to one consumer failed", "err", err)
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			p.skipped.Add(uint64(waiting))
			return fmt.Errorf("send %q: %w: %d consumer(s) skipped: %w", p.name, ErrBackpressure, waiting, ctx.Err())
		}
	}
}

// Flush waits until every joined consumer has consumed everything sent to it
// (its whole credit window is back) or ctx ends.
func (p *producer) Flush(ctx context.Context) error {
	for {
		p.mu.Lock()
		pending := false
		for _, ps := range p.order {
			if ps.credit < ps.window {
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
