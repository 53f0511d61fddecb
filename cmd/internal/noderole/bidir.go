package noderole

import (
	"context"
	"errors"
	"time"

	"github.com/pylabhub/plh/hub"
)

// This file is Bidir's consumer-to-producer direction: a consumer with
// --send-rate sends payloads of the usual layout to its producer (written
// events with upstream = true); the producer verifies them and reports read
// events with upstream = true and from_pid = the sending consumer's pid.

// sendUpstream starts sending at --send-rate until ctx ends; the returned stop
// waits for the sender to end.
func (n *node) sendUpstream(ctx context.Context, c *hub.Consumer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		interval := time.Duration(float64(time.Second) / n.o.sendRate)
		buf := make([]byte, n.o.slotSize)
		start := time.Now()
		for seq := uint64(0); ; seq++ {
			tm := time.NewTimer(time.Until(start.Add(time.Duration(seq) * interval)))
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
			fill(buf, seq)
			if err := c.Send(buf); err != nil {
				if errors.Is(err, hub.ErrClosed) {
					return
				}
				n.log.Debug("upstream send", "seq", seq, "err", err)
				continue // not delivered: the next one goes with a higher sequence
			}
			n.up.add(seq, len(buf), -1, 0)
		}
	}()
	return func() { cancel(); <-done }
}

// recordUpstream accounts one payload a Bidir consumer sent (producer side).
func (n *node) recordUpstream(b []byte) {
	seq, sent, from, ok := verify(b)
	if !ok {
		n.agg.note(func(a *aggregator) { a.checksumErrs++ })
		n.emit("checksum_error", map[string]any{"channel": n.o.channel, "slot_index": -1, "seq": seq, "source": "pattern", "upstream": true})
		return
	}
	n.up.add(seq, len(b), now()-sent, from)
}

// churn registers and deregisters a consumer of the channel --churn times,
// one cycle every --churn-every, before the node's own consumer connects:
// CONSUMER_REG then CONSUMER_DEREG from one live pid with no other
// registration, no data. It returns early when ctx ends.
func (n *node) churn(ctx context.Context) {
	opts := hub.ConsumerOptions{Channel: n.o.channel, UID: n.o.uid, Name: n.o.name, PeerHeartbeat: -1, Logger: n.log}
	n.o.schemaExpectation(&opts)
	t := time.NewTicker(n.o.churnEvery)
	defer t.Stop()
	done := 0
	for i := 0; i < n.o.churn; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, err := n.connect(ctx, opts)
		if err != nil {
			n.log.Warn("churn: connect", "cycle", i, "err", err)
			continue
		}
		if err := c.Close(); err != nil {
			n.log.Warn("churn: close", "cycle", i, "err", err)
		}
		done++
	}
	n.log.Info("churn done", "cycles", done)
}
