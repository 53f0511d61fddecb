package hub

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

var randRead = rand.Read

// readLoop receives every message from the producer.
func (c *consumer) readLoop() {
	defer c.wg.Done()
	for {
		frames, err := c.d.Recv(c.ctx)
		if err != nil {
			return
		}
		f, err := parsePeer(frames)
		if err != nil {
			c.dropped.Add(1)
			c.log.Debug("hub: dropped peer message", "err", err)
			continue
		}
		if f.Kind == proto.KindData {
			select {
			case c.data <- f.Body:
			case <-c.ctx.Done():
				return
			}
			continue
		}
		switch f.Type {
		case TypeHelloAck:
			c.ackOne.Do(func() { close(c.acked) })
		case TypeByeAck:
			c.byeAckOne.Do(func() { close(c.byeAcked) })
		case TypeBye:
			c.peerEndMu.Lock()
			c.producerB.Store(true)
			if fn := c.opts.Callbacks.OnProducerBye; fn != nil {
				c.cbs.submit("OnProducerBye", fn)
			}
			c.peerEndMu.Unlock()
		case TypeHello, TypeCredit, TypePeerHeartbeat:
			c.dropped.Add(1)
		default:
			if fn := c.opts.Callbacks.OnProducerMessage; fn != nil {
				typ, body := f.Type, f.Body
				c.cbs.submit("OnProducerMessage", func() { fn(typ, body) })
			}
		}
	}
}

// tickLoop sends peer heartbeats and credits that could not be sent at once,
// says HELLO again after the link to the producer was re-established, and
// reports the producer lost when the link stays down (consumer_lost.go).
func (c *consumer) tickLoop() {
	defer c.wg.Done()
	period := c.opts.PeerHeartbeat
	if period <= 0 {
		period = time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	var lg lostGrace
	defer lg.disarm()
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev := <-c.d.Events():
			switch ev.Kind {
			case wire.Lost:
				lg.arm(c.opts.ProducerLostAfter)
				c.log.Debug("hub: link to the producer lost", "err", ev.Err)
			case wire.Reconnected:
				lg.disarm()
				if !c.closing.Load() {
					c.log.Info("hub: link to the producer re-established; HELLO again")
					if err := c.hello(); err != nil {
						c.log.Warn("hub: HELLO after reconnect failed", "err", err)
					}
				}
			}
		case <-lg.c:
			lg.disarm()
			c.producerLost()
		case <-t.C:
			if c.opts.PeerHeartbeat > 0 && !c.closing.Load() {
				_ = c.send(proto.ControlFrames(TypePeerHeartbeat, nil)...)
			}
			c.returnCredit(true)
		}
	}
}

// consumed records one consumed data message and returns credit in batches.
func (c *consumer) consumed() {
	c.owed.Add(1)
	c.returnCredit(false)
}

// returnCredit sends CREDIT for the consumed messages once a quarter window has
// accumulated (or any amount when force is set).
func (c *consumer) returnCredit(force bool) {
	n := c.owed.Load()
	if n == 0 || (!force && n < int64(max(c.opts.Window/4, 1))) {
		return
	}
	if !c.owed.CompareAndSwap(n, 0) {
		return // another goroutine is returning it
	}
	if err := c.send(proto.ControlFrames(TypeCredit, mustJSON(creditBody{N: int(n)}))...); err != nil {
		c.owed.Add(n) // retried at the next tick
	}
}

// Recv returns the next data message (PubSub/Pipeline data, or Bidir data from
// the producer), waiting until ctx ends. Do not use it while started with an
// OnData callback (which takes the messages).
func (c *consumer) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.data:
		c.consumed()
		return b, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("recv %q: %w", c.name, ctx.Err())
	case <-c.ctx.Done():
		return nil, fmt.Errorf("recv %q: %w", c.name, ErrClosed)
	}
}

// dataLoop hands data messages to OnData while started.
func (c *consumer) dataLoop(fn func([]byte), stop <-chan struct{}) {
	defer c.done.Done()
	for {
		select {
		case <-stop:
			return
		case b := <-c.data:
			safeCall(c.log, "OnData", func() { fn(b) })
			c.consumed()
		}
	}
}

// Send sends Bidir data to the producer (its OnConsumerData). ErrWrongPattern on
// other patterns. No flow control: ErrQueueFull-wrapped errors when the link is
// saturated.
func (c *consumer) Send(payload []byte) error {
	if c.info.Pattern != PatternBidir {
		return fmt.Errorf("send %q: %w: only Bidir consumers send data", c.name, ErrWrongPattern)
	}
	if c.closing.Load() {
		return fmt.Errorf("send %q: %w", c.name, ErrClosed)
	}
	if err := c.send(proto.DataFrames(append([]byte(nil), payload...))...); err != nil {
		return fmt.Errorf("send %q: %w", c.name, err)
	}
	return nil
}

// SendCtrl sends a control message of type typ ("" = "CTRL") to the producer
// (its OnConsumerMessage).
func (c *consumer) SendCtrl(typ string, body []byte) error {
	if typ == "" {
		typ = TypeCtrl
	}
	if reservedType(typ) {
		return fmt.Errorf("send ctrl %q: %w: %s", c.name, ErrReservedType, typ)
	}
	if c.closing.Load() {
		return fmt.Errorf("send ctrl %q: %w", c.name, ErrClosed)
	}
	if err := c.send(proto.ControlFrames(typ, append([]byte(nil), body...))...); err != nil {
		return fmt.Errorf("send ctrl %q: %w", c.name, err)
	}
	return nil
}

// Stats returns the consumer's peer counters (Consumers is 0).
func (c *consumer) Stats() ChannelStats {
	return ChannelStats{Sent: c.sent.Load(), Dropped: c.dropped.Load()}
}
