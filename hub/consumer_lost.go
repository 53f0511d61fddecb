package hub

import "time"

// Producer-loss detection on the consumer side.
//
// The broker notices a dead producer only after its channel timeout (default
// 10 s, CHANNEL_CLOSING_NOTIFY). The consumer's peer link notices much sooner:
// when the producer process dies, the kernel resets its sockets and the wire
// Dealer reports Lost. tickLoop arms a grace timer (ProducerLostAfter) at Lost
// and disarms it at Reconnected; when it fires and the link is still down, the
// producer is reported lost once (OnProducerLost, ProducerLost). A BYE (clean
// close) read before that suppresses it: BYE precedes the end of the
// connection in the ordered stream, so readLoop handles it well within the
// grace. peerEndMu orders the two decisions so OnProducerLost is never queued
// after OnProducerBye.

// lostGrace is tickLoop's grace timer (owned by tickLoop alone). c is nil
// while disarmed, so its select case never fires.
type lostGrace struct {
	t *time.Timer
	c <-chan time.Time
}

// arm starts the grace unless it runs already or d is negative (disabled).
func (g *lostGrace) arm(d time.Duration) {
	if d < 0 || g.t != nil {
		return
	}
	g.t = time.NewTimer(d)
	g.c = g.t.C
}

func (g *lostGrace) disarm() {
	if g.t != nil {
		g.t.Stop()
	}
	g.t, g.c = nil, nil
}

// producerLost reports the producer lost once, unless the Consumer is closing,
// the producer said BYE, or the link is up again (an event missed).
func (c *consumerLink) producerLost() {
	if d, _ := c.dealer(); c.closing.Load() || d.Connected() {
		return
	}
	c.peerEndMu.Lock()
	defer c.peerEndMu.Unlock()
	if c.producerB.Load() || c.producerL.Load() {
		return
	}
	c.producerL.Store(true)
	c.log.Warn("hub: link to the producer lost and not re-established; producer lost", "grace", c.opts.ProducerLostAfter)
	if fn := c.opts.Callbacks.OnProducerLost; fn != nil {
		c.cbs.submit("OnProducerLost", fn)
	}
}

// ProducerLost reports whether the producer was declared lost: its peer link
// went down without a BYE and stayed down for ConsumerOptions.ProducerLostAfter.
// It stays true once set, even if the link comes back later, until the consumer
// moves to a successor producer (OnProducerRestarted).
func (c *consumerLink) ProducerLost() bool { return c.producerL.Load() }
