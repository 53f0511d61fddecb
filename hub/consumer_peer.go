package hub

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
)

var randRead = rand.Read

// consumerLink is the consumer's peer link: the Dealer to the producer, HELLO
// and BYE, peer heartbeats, flow control credit, the data messages for Recv and
// OnData, and producer-loss detection (consumer_lost.go). It knows no DataBlock.
type consumerLink struct {
	name    string
	info    ChannelInfo
	opts    *ConsumerOptions
	log     *slog.Logger
	m       *Messenger
	cbs     *cbQueue     // the consumer's peer callbacks
	closing *atomic.Bool // the consumer's: set first thing in Close

	dmu       sync.Mutex
	d         *wire.Dealer  // guarded by dmu; replaced when following a restarted producer
	swapped   chan struct{} // guarded by dmu; closed when d is replaced
	follow    chan struct{} // capacity 1: the link was lost, the follower looks for a successor
	data      chan []byte   // data messages for Recv / OnData
	free      chan []byte   // receive buffers RecvFunc gave back (consumer_recvbuf.go)
	acked     chan struct{} // closed at the first HELLO_ACK
	ackOne    sync.Once
	byeAcked  chan struct{} // closed at BYE_ACK
	byeAckOne sync.Once

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent       atomic.Uint64 // messages accepted by Dealer.Send
	dropped    atomic.Uint64
	owed       atomic.Int64 // consumed messages whose credit is not returned yet
	byeOnce    sync.Once
	producerB  atomic.Bool // the producer said BYE; written under peerEndMu
	producerL  atomic.Bool // OnProducerLost decided; written under peerEndMu
	peerEndMu  sync.Mutex  // orders the BYE and lost decisions (consumer_lost.go)
	restarts   atomic.Uint64
	rejoins    atomic.Uint64
	missed     atomic.Uint64 // items the producer said it skipped for us (GAP)
	refreshing atomic.Bool   // a broker re-registration after REJOIN is in flight
	rejoining  atomic.Bool   // HELLO sent for a REJOIN, its HELLO_ACK not yet read
	// groupRefused: a HELLO_ACK did not confirm ConsumerOptions.Group.
	groupRefused atomic.Bool
}

// newConsumerLink returns the peer link of c; Connect sets its Dealer.
func newConsumerLink(c *consumer) *consumerLink {
	return &consumerLink{name: c.name, info: c.info, opts: &c.opts, log: c.log, m: c.m, cbs: c.cbs, closing: &c.closing,
		data: make(chan []byte, c.opts.Window+16), free: newFreeList(c.opts.Window), acked: make(chan struct{}), byeAcked: make(chan struct{}),
		swapped: make(chan struct{}), follow: make(chan struct{}, 1)}
}

// dealer returns the current Dealer and the channel closed when it is replaced.
func (c *consumerLink) dealer() (*wire.Dealer, <-chan struct{}) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.d, c.swapped
}

// setDealer installs d as the current Dealer and returns the previous one (nil
// at Connect), waking the goroutines that wait on the previous one.
func (c *consumerLink) setDealer(d *wire.Dealer) *wire.Dealer {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	old := c.d
	c.d = d
	d.SetAlloc(c.recvBody)
	d.SetSink(c.sink)
	if old != nil {
		close(c.swapped)
		c.swapped = make(chan struct{})
	}
	return old
}

func (c *consumerLink) hello() error {
	self := proc.Self()
	hb := int64(0)
	if c.opts.PeerHeartbeat > 0 {
		hb = max(c.opts.PeerHeartbeat.Milliseconds(), 1)
	}
	body := mustJSON(helloBody{ConsumerPid: c.m.Pid(), ConsumerStartTime: startTimeFor(c.m, self), ConsumerUID: c.opts.UID,
		ConsumerName: c.opts.Name, Window: c.opts.Window, HeartbeatMs: hb, Group: c.opts.Group})
	return c.send(proto.ControlFrames(TypeHello, body)...)
}

// startTimeFor is the start time sent in HELLO: ours unless the Messenger acts as
// another process.
func startTimeFor(m *Messenger, self proc.Identity) uint64 {
	if id := m.cfg.Identity; id.Pid != self.Pid {
		return id.StartTime
	}
	return self.StartTime
}

func (c *consumerLink) send(frames ...[]byte) error {
	d, _ := c.dealer()
	if err := d.Send(frames...); err != nil {
		return err
	}
	c.sent.Add(1)
	return nil
}

// Identity returns the routing identity the producer knows this consumer by.
func (c *consumerLink) Identity() []byte { d, _ := c.dealer(); return d.Identity() }

// ProducerGone reports whether the producer said BYE (closed its channel).
func (c *consumerLink) ProducerGone() bool { return c.producerB.Load() }

func (c *consumerLink) bye() {
	c.byeOnce.Do(func() {
		// Credit first: the producer hands what we did not consume back to
		// our group (Pipeline, B-7) and must not count the consumed items.
		c.returnCredit(true)
		if err := c.send(proto.ControlFrames(TypeBye, nil)...); err != nil {
			c.log.Debug("hub: BYE not sent", "err", err)
		}
	})
}

// drain waits up to 500 ms for the producer's BYE_ACK (the read goroutine keeps
// reading meanwhile, so nothing is left unread when the connection closes), or,
// when the link is down, until the Dealer wrote what we queued.
func (c *consumerLink) drain() {
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	d, _ := c.dealer()
	if d.Connected() {
		select {
		case <-c.byeAcked:
			return
		case <-t.C:
			return
		}
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		st := d.Stats()
		if st.Sent+st.SendErrors >= c.sent.Load() || !d.Connected() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newIdentity() []byte {
	id := make([]byte, 16)
	if _, err := randRead(id); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return id
}

// stop ends the link's goroutines and closes the Dealer.
func (c *consumerLink) stop() {
	c.cancel()
	d, _ := c.dealer()
	d.Close()
	c.wg.Wait()
}

// sink takes every message of the link on the connection's own reader
// goroutine (one goroutine hand-off fewer than through readLoop), in link
// order: data into the data queue, control messages handled at once. One
// goroutine thus fills the queue and handles HELLO_ACK and GAP in the order
// they came: helloAcked drops exactly what a previous admission left, and a
// GAP is counted before the item after it is queued. The queue's room is the
// credit window, so it waits only for a producer that ignores flow control.
func (c *consumerLink) sink(frames [][]byte, closed <-chan struct{}) bool {
	f, err := parsePeer(frames)
	if err != nil {
		c.dropped.Add(1)
		c.log.Debug("hub: dropped peer message", "err", err)
		return true
	}
	if f.Kind != proto.KindData {
		c.control(f)
		return true
	}
	select {
	case c.data <- f.Body:
		return true
	case <-closed:
		return false
	}
}

// readLoop receives every message from the producer, on the current Dealer.
func (c *consumerLink) readLoop() {
	defer c.wg.Done()
	for {
		d, _ := c.dealer()
		frames, err := d.Recv(c.ctx)
		if err != nil {
			if nd, _ := c.dealer(); nd != d && c.ctx.Err() == nil {
				continue // replaced (producer restart): read the successor
			}
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
		c.control(f)
	}
}

// control handles a control message from the producer: from sink, or from
// readLoop for what the sink left (messages before it was installed).
func (c *consumerLink) control(f proto.Frame) {
	switch f.Type {
	case TypeHelloAck:
		c.helloAcked(f.Body)
		c.ackOne.Do(func() { close(c.acked) })
		c.rejoining.Store(false)
	case TypeByeAck:
		c.byeAckOne.Do(func() { close(c.byeAcked) })
	case TypeBye:
		c.peerEndMu.Lock()
		c.producerB.Store(true)
		if fn := c.opts.Callbacks.OnProducerBye; fn != nil {
			c.cbs.submit("OnProducerBye", fn)
		}
		c.peerEndMu.Unlock()
	case TypeRejoin:
		c.rejoin()
	case TypeGap, TypeSlowConsumer:
		c.slowNotice(f.Type, f.Body)
	case TypeHello, TypeCredit, TypePeerHeartbeat:
		c.dropped.Add(1)
	default:
		if fn := c.opts.Callbacks.OnProducerMessage; fn != nil {
			typ, body := f.Type, f.Body
			c.cbs.submit("OnProducerMessage", func() { fn(typ, body) })
		}
	}
}

// tickLoop sends peer heartbeats and credits that could not be sent at once,
// says HELLO again after the link to the producer was re-established, and
// reports the producer lost when the link stays down (consumer_lost.go).
func (c *consumerLink) tickLoop() {
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
		d, swapped := c.dealer()
		select {
		case <-c.ctx.Done():
			return
		case <-swapped:
			lg.disarm() // following a successor: its Dealer's events from now on
		case ev := <-d.Events():
			switch ev.Kind {
			case wire.Lost:
				lg.arm(c.opts.ProducerLostAfter)
				c.log.Debug("hub: link to the producer lost", "err", ev.Err)
				select {
				case c.follow <- struct{}{}:
				default:
				}
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

// consumed records one consumed data message and returns credit in batches;
// a consumer group member acknowledges every item at once (the producer
// hands unacknowledged items to another member when this one dies).
func (c *consumerLink) consumed() {
	c.owed.Add(1)
	c.returnCredit(c.opts.Group != "")
}

// helloAcked checks a group member's HELLO_ACK: the producer must confirm the
// group (an older producer would send us every item), and what the link still
// holds of a previous admission is dropped, since the producer handed it back
// to the group when we said HELLO again. Called on the goroutine that fills
// the data queue (sink, or readLoop before the sink is installed), in link
// order, and the producer sends HELLO_ACK before any data of the new
// admission: what is queued then is exactly the old admission's.
func (c *consumerLink) helloAcked(body []byte) {
	if c.opts.Group == "" {
		return
	}
	var a helloAckBody
	if err := json.Unmarshal(body, &a); err != nil || a.Group != c.opts.Group {
		c.groupRefused.Store(true)
		c.log.Warn("hub: the producer did not confirm the consumer group (it does not know groups?)", "group", c.opts.Group)
	}
	for {
		select {
		case <-c.data:
		default:
			c.owed.Store(0)
			return
		}
	}
}

// returnCredit sends CREDIT for the consumed messages once a quarter window has
// accumulated (or any amount when force is set).
func (c *consumerLink) returnCredit(force bool) {
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
func (c *consumerLink) Recv(ctx context.Context) ([]byte, error) {
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
func (c *consumerLink) dataLoop(fn func([]byte), stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
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
func (c *consumerLink) Send(payload []byte) error {
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
func (c *consumerLink) SendCtrl(typ string, body []byte) error {
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
func (c *consumerLink) Stats() ChannelStats {
	return ChannelStats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Restarts: c.restarts.Load(), Rejoins: c.rejoins.Load(),
		Missed: c.missed.Load()}
}

// slowNotice handles the producer's GAP (it skipped items for us while we had
// no credit: OnMissed) and SLOW_CONSUMER (it dropped us: OnChannelError with
// EventSlowConsumer; we are re-admitted by REJOIN when we speak again).
func (c *consumerLink) slowNotice(typ string, body []byte) {
	var g gapBody
	if err := json.Unmarshal(body, &g); err != nil || len(g.Reason) > 256 {
		c.dropped.Add(1)
		c.log.Debug("hub: dropped peer message", "type", typ, "err", err)
		return
	}
	if typ == TypeGap {
		c.missed.Add(g.Missed)
		c.log.Info("hub: the producer skipped items for this slow consumer", "missed", g.Missed)
		if fn := c.opts.Callbacks.OnMissed; fn != nil {
			n := g.Missed
			c.cbs.submit("OnMissed", func() { fn(n) })
		}
		return
	}
	c.log.Warn("hub: the producer disconnected this consumer as slow", "reason", g.Reason)
	if fn := c.opts.Callbacks.OnChannelError; fn != nil {
		cn := ChannelNotice{Channel: c.name, Type: TypeSlowConsumer, Event: EventSlowConsumer, Error: g.Reason, Body: append([]byte(nil), body...)}
		c.cbs.submit(EventSlowConsumer, func() { fn(cn) })
	}
}

// rejoin answers the producer's REJOIN (it dropped us, e.g. declared dead while
// we were paused, and hears us again): HELLO again so it takes us back. The
// credit we owed the old admission is void: HELLO grants a fresh window.
func (c *consumerLink) rejoin() {
	// Every message the producer did not expect gets a REJOIN: one HELLO
	// answers them all until its HELLO_ACK.
	if c.closing.Load() || !c.rejoining.CompareAndSwap(false, true) {
		return
	}
	c.rejoins.Add(1)
	c.owed.Store(0)
	c.log.Warn("hub: the producer no longer counted this consumer joined (declared dead?); HELLO again")
	if err := c.hello(); err != nil {
		c.rejoining.Store(false)
		c.log.Warn("hub: HELLO after REJOIN failed", "err", err)
		if fn := c.opts.Callbacks.OnChannelError; fn != nil {
			cn := ChannelNotice{Channel: c.name, Event: EventRejoinFailed, Error: err.Error()}
			c.cbs.submit(EventRejoinFailed, func() { fn(cn) })
		}
		return
	}
	if fn := c.opts.Callbacks.OnRejoined; fn != nil {
		c.cbs.submit("OnRejoined", fn)
	}
	// A consumer declared dead was dropped by the broker too: register again
	// (same identity, so a broker that kept the entry replaces it).
	if !c.refreshing.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
		defer cancel()
		if err := c.m.refreshConsumer(ctx, c.name); err != nil {
			c.log.Warn("hub: consumer registration not renewed after REJOIN", "err", err)
		}
	}()
}
