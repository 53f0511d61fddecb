package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pylabhub/plh/internal/wire"
)

// Following a restarted producer.
//
// A producer that restarts with the same schema re-registers its channel; the
// broker replaces the entry and keeps the consumers (protocol.md §5.2 "producer
// restart"). Those consumers must move to the successor without any action of
// the application: its peer endpoint and CURVE key are new, and with shared
// memory its segment replaced the one they still map (unlinked, never written
// again).
//
// The follower goroutine waits for the peer link's Lost event (tickLoop). It
// then discovers the channel again with backoff (followMin doubling to
// followMax) until one of:
//   - the record names another producer incarnation (producer pid, peer
//     endpoint or CURVE key differ): the consumer switches (switchTo);
//   - it names the same producer and the link is up again: nothing happened;
//   - the channel was closed by the broker (CHANNEL_CLOSING_NOTIFY, which keeps
//     its meaning), the producer said BYE (it closed the channel), or the
//     Consumer is closing: no follow.
//
// switchTo dials the successor (same routing identity, fresh CURVE client
// keys), re-attaches its DataBlock (transactions waiting on the old one end
// with ErrNoSlot and the next one reads the new ring), installs the new Dealer
// (the read and tick goroutines move to it), says HELLO and reports
// OnProducerRestarted (counted in Stats().Restarts). OnProducerLost may be
// reported again for the successor. The broker registration is untouched: the
// broker kept it.

const (
	followMin = 100 * time.Millisecond
	followMax = time.Second
)

func (c *consumer) startFollower() {
	c.followCtx, c.followCancel = context.WithCancel(context.Background())
	c.followWG.Add(1)
	go c.followLoop()
}

// stopFollower ends the follower and waits for it (a switch in progress
// completes or is abandoned first). Idempotent.
func (c *consumer) stopFollower() {
	if c.followCancel == nil {
		return
	}
	c.followCancel()
	c.followWG.Wait()
}

func (c *consumer) followLoop() {
	defer c.followWG.Done()
	for {
		select {
		case <-c.followCtx.Done():
			return
		case <-c.follow:
			c.rediscover()
		case <-c.remapKick:
			c.followRemap() // remap.go
		}
	}
}

// noFollow reports why the consumer must not look for a successor ("" = it may).
func (c *consumer) noFollow() string {
	switch {
	case c.closing.Load() || c.followCtx.Err() != nil:
		return "closing"
	case c.chClosed.Load():
		return "channel closed by the broker"
	case c.producerB.Load():
		return "the producer closed the channel (BYE)"
	}
	return ""
}

// backoff waits *wait, then doubles it up to followMax; false when following
// ended meanwhile.
func (c *consumer) backoff(wait *time.Duration) bool {
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case <-c.followCtx.Done():
		return false
	case <-t.C:
	}
	*wait = min(2*(*wait), followMax)
	return true
}

// rediscover looks for a successor producer until it switched to one, the old
// producer is back, or following ends (noFollow).
func (c *consumer) rediscover() {
	wait := followMin
	for {
		if !c.backoff(&wait) {
			return
		}
		if why := c.noFollow(); why != "" {
			c.log.Debug("hub: producer not followed", "why", why)
			return
		}
		ctx, cancel := context.WithTimeout(c.followCtx, c.opts.Timeout)
		info, err := c.m.Discover(ctx, c.name)
		cancel()
		if err != nil {
			c.log.Debug("hub: looking for a successor producer", "err", err)
			continue
		}
		if sameProducer(c.Info(), info) {
			if d, _ := c.dealer(); d.Connected() {
				return // the link came back to the same producer
			}
			continue
		}
		if err := c.switchTo(info); err != nil {
			if c.followCtx.Err() == nil {
				c.log.Warn("hub: could not move to the successor producer; retrying", "endpoint", info.CtrlEndpoint, "err", err)
			}
			continue
		}
		return
	}
}

// sameProducer reports whether two discovery records name the same producer
// incarnation.
func sameProducer(a, b ChannelInfo) bool {
	return a.ProducerPid == b.ProducerPid && a.CtrlEndpoint == b.CtrlEndpoint && a.PubKey == b.PubKey
}

// switchTo moves the consumer to the successor producer described by info.
func (c *consumer) switchTo(info ChannelInfo) error {
	if info.CtrlEndpoint == "" {
		return fmt.Errorf("%w: successor has no peer endpoint", ErrBadReply)
	}
	old, _ := c.dealer()
	wcfg := c.opts.Wire
	wcfg.Identity = old.Identity()
	sec, err := consumerSecurity(c.opts, info)
	if err != nil {
		return err
	}
	wcfg.Security = sec
	d, err := wire.NewDealer(wcfg, info.CtrlEndpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.followCtx, c.opts.Timeout)
	defer cancel()
	if err := c.waitLink(ctx, d); err != nil {
		d.Close()
		return err
	}
	c.ringReader.followProducer(info)
	c.infoMu.Lock()
	c.info = info
	c.infoMu.Unlock()
	c.peerEndMu.Lock()
	c.producerL.Store(false) // a loss of the successor is reported again
	c.peerEndMu.Unlock()
	c.owed.Store(0) // HELLO grants the successor's window afresh
	c.setDealer(d).Close()
	if err := c.hello(); err != nil && !errors.Is(err, wire.ErrClosed) {
		return err
	}
	c.restarts.Add(1)
	c.log.Warn("hub: followed a producer restart", "pid", info.ProducerPid, "endpoint", info.CtrlEndpoint, "shm", c.HasSHM())
	if fn := c.opts.Callbacks.OnProducerRestarted; fn != nil {
		c.cbs.submit("OnProducerRestarted", func() { fn(info) })
	}
	return nil
}
