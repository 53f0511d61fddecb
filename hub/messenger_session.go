package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/trace"
	"github.com/pylabhub/plh/internal/wire"
)

// Connect dials the broker at endpoint and returns once the broker answered a
// PING_REQ, or with an error wrapping ErrNotConnected when ctx ends first (no
// broker there, or a CURVE handshake that failed) or ErrVersionMismatch.
// serverKey is the broker's Z85 CURVE public key (40 characters): the connection
// is then CURVE with a fresh client key pair per connection; "" means NULL
// security. Connect on a connected Messenger is a no-op when the endpoint is the
// same.
func (m *Messenger) Connect(ctx context.Context, endpoint, serverKey string) error {
	if m == nil {
		return ErrClosed
	}
	if endpoint == "" {
		return fmt.Errorf("connect: %w: empty endpoint", ErrInvalidArgument)
	}
	if serverKey != "" && len(serverKey) != 40 {
		return fmt.Errorf("connect: %w: server key of %d characters, want 40 (Z85)", ErrInvalidArgument, len(serverKey))
	}
	m.connMu.Lock()
	defer m.connMu.Unlock()
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return fmt.Errorf("connect: %w", ErrClosed)
	case m.sess != nil && m.endpoint == endpoint:
		m.mu.Unlock()
		return nil
	case m.sess != nil:
		ep := m.endpoint
		m.mu.Unlock()
		return fmt.Errorf("connect %s: %w: already connected to %s", endpoint, ErrInvalidArgument, ep)
	}
	m.mu.Unlock()

	wcfg := m.cfg.Wire
	if serverKey != "" {
		sec, err := clientSecurity(serverKey, m.cfg)
		if err != nil {
			return fmt.Errorf("connect %s: %w", endpoint, err)
		}
		wcfg.Security = sec
	}
	d, err := wire.NewDealer(wcfg, endpoint)
	if err != nil {
		return fmt.Errorf("connect %s: %w: %w", endpoint, ErrInvalidArgument, err)
	}
	m.mu.Lock()
	if m.closed { // Close ran while the dealer was being made: it found no session to cancel
		m.mu.Unlock()
		_ = d.Close()
		return fmt.Errorf("connect %s: %w", endpoint, ErrClosed)
	}
	s := newSession(m, d)
	m.sess, m.endpoint, m.state = s, endpoint, stateConnecting
	m.mu.Unlock()
	s.start()

	if err := m.firstPing(ctx, s); err != nil {
		m.stopSession(fmt.Errorf("%w: connect failed", ErrNotConnected))
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return fmt.Errorf("connect %s: %w", endpoint, ErrClosed)
		}
		return fmt.Errorf("connect %s: %w", endpoint, err)
	}
	m.mu.Lock()
	if m.sess == s && m.state == stateConnecting {
		m.state = stateUp
	}
	m.mu.Unlock()
	m.log.Info("messenger: connected", "endpoint", endpoint)
	return nil
}

// firstPing waits for the DEALER's connection and one PING_ACK within ctx (or
// RequestTimeout when ctx has no deadline).
func (m *Messenger) firstPing(ctx context.Context, s *session) error {
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)() // Close interrupts the wait
	ctx, release := s.abort.wait(ctx)        // a failed security handshake too
	defer release()
	if err := s.d.WaitConnected(ctx); err != nil {
		if cause := securityCause(ctx); cause != nil {
			return cause
		}
		return fmt.Errorf("%w: no broker answered: %w", ErrNotConnected, err)
	}
	for {
		err := m.ping(ctx, s)
		if err == nil {
			return nil
		}
		if cause := securityCause(ctx); cause != nil {
			return cause
		}
		var be *BrokerError
		if errors.As(err, &be) && !errors.Is(err, ErrVersionMismatch) {
			// A broker that does not know PING_REQ (UNKNOWN_MSG_TYPE: an original
			// broker) still answered: it is there.
			m.log.Info("messenger: broker refused PING_REQ; liveness from its other replies", "err", err)
			return nil
		}
		if errors.Is(err, ErrVersionMismatch) || ctx.Err() != nil {
			if errors.Is(err, ErrTimeout) {
				err = fmt.Errorf("%w: %w", ErrNotConnected, err)
			}
			return err
		}
		// The connection dropped while we waited (broker restarting): try again.
		if err := s.d.WaitConnected(ctx); err != nil {
			if cause := securityCause(ctx); cause != nil {
				return cause
			}
			return fmt.Errorf("%w: no broker answered: %w", ErrNotConnected, err)
		}
	}
}

// session is one Connect..Disconnect lifetime: the DEALER and the two goroutines
// around it.
//
//   - readLoop is the only receiver: it matches replies to waiting callers by
//     correlation id (stale ones are dropped) and hands *_NOTIFY messages to the
//     dispatcher. It never blocks on a caller or a callback.
//   - tickLoop owns time: heartbeats, the PING_REQ probe, the silence check, and
//     the DEALER's connection events (lost → broker lost; reconnected →
//     re-registration, which runs in its own goroutine so the loop keeps ticking).
//
// Sends are non-blocking (wire.Dealer.Send queues to wire's single writer, which
// owns the zmq4 socket), so callers, heartbeats and re-registration send directly
// and the order of one goroutine's sends is kept.
type session struct {
	m      *Messenger
	d      *wire.Dealer
	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	hbKick     chan struct{} // capacity 1: tickLoop asks heartbeatLoop for a round
	lastHeard  atomic.Int64  // proc.Now() of the last message from the broker
	recovering atomic.Bool   // a re-registration goroutine is running
	epoch      atomic.Uint64 // counts recoveries
	abort      connectAbort  // ends Connect's wait on a failed security handshake
}

func newSession(m *Messenger, d *wire.Dealer) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{m: m, d: d, ctx: ctx, cancel: cancel, hbKick: make(chan struct{}, 1)}
	s.lastHeard.Store(proc.Now())
	return s
}

func (s *session) start() {
	s.spawn(s.readLoop)
	s.spawn(s.tickLoop)
	s.spawn(s.heartbeatLoop)
}

// spawn runs fn on a goroutine that stop waits for.
func (s *session) spawn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// stop ends every goroutine of the session and closes the DEALER.
func (s *session) stop() {
	s.cancel()
	s.wg.Wait()
	_ = s.d.Close()
}

// send encodes nothing: it queues ready frames on the DEALER, mapping wire's
// errors onto the package's sentinels.
func (s *session) send(frames [][]byte) error {
	// Traced before the send, so the reply's record never precedes the
	// request's (a send that fails returns its error to the caller).
	s.m.trace.Message(trace.Out, []byte(s.d.Endpoint()), frames)
	err := s.d.Send(frames...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wire.ErrNotConnected):
		return fmt.Errorf("%w: %w: %w", ErrNotConnected, ErrBrokerLost, err)
	case errors.Is(err, wire.ErrClosed):
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	case errors.Is(err, wire.ErrQueueFull):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// sendWait is send, waiting while the DEALER's queue is full (thousands of
// heartbeats or registrations at once) until ctx ends or deadline passes (zero:
// no deadline): a full queue paces the sender instead of failing it.
func (s *session) sendWait(ctx context.Context, frames [][]byte, deadline time.Time) error {
	wait := time.Millisecond
	for {
		err := s.send(frames)
		if err == nil || !errors.Is(err, wire.ErrQueueFull) || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-s.ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 16*time.Millisecond)
	}
}

// heartbeatLoop sends one round of heartbeats each time tickLoop asks (a round
// that takes longer than the period absorbs the ticks that came meanwhile).
func (s *session) heartbeatLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.hbKick:
		}
		s.m.sendHeartbeats(s)
	}
}

func (s *session) readLoop() {
	for {
		frames, err := s.d.Recv(s.ctx)
		if err != nil {
			return // stopped
		}
		s.m.trace.Message(trace.In, []byte(s.d.Endpoint()), frames)
		s.m.handleIncoming(s, frames)
	}
}

func (s *session) tickLoop() {
	m := s.m
	hb := newTicker(m.cfg.HeartbeatInterval)
	defer hb.Stop()
	ping := newTicker(m.cfg.PingInterval)
	defer ping.Stop()
	// The silence check runs eight times per LostAfter so a silent broker is
	// reported within LostAfter + LostAfter/8 of its last reply.
	check := newTicker(m.cfg.LostAfter / 8)
	defer check.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev := <-s.d.Events():
			s.onWireEvent(ev)
		case <-hb.C:
			select {
			case s.hbKick <- struct{}{}:
			default: // a round is still running
			}
		case <-ping.C:
			// Also while lost: a PING_ACK then starts the recovery when the
			// connection survived (a paused broker, or an interrupted recovery).
			s.sendPing()
		case <-check.C:
			silent := time.Duration(proc.Now() - s.lastHeard.Load())
			if silent >= m.cfg.LostAfter && m.stateOf(s) != stateLost && m.stateOf(s) != stateConnecting {
				m.brokerLost(s, fmt.Errorf("%w: broker silent for %v", ErrBrokerLost, silent.Round(time.Millisecond)))
				s.d.Reconnect() // a paused broker keeps its TCP connection open
			}
		}
	}
}

func (s *session) onWireEvent(ev wire.Event) {
	m := s.m
	m.log.Debug("messenger: connection event", "event", ev.Kind.String(), "err", ev.Err)
	switch ev.Kind {
	case wire.DialFailed:
		if isSecurityFailure(ev.Err) {
			if m.stateOf(s) == stateConnecting {
				s.abort.fail(s.d.Endpoint(), ev.Err)
			} else {
				m.log.Warn("messenger: broker refused our security handshake (key or mechanism mismatch)", "endpoint", s.d.Endpoint(), "err", ev.Err)
			}
		}
	case wire.Lost:
		if st := m.stateOf(s); st == stateUp || st == stateRecovering {
			cause := fmt.Errorf("%w: connection lost", ErrBrokerLost)
			if ev.Err != nil {
				cause = fmt.Errorf("%w: %w", cause, ev.Err)
			}
			m.brokerLost(s, cause)
		}
	case wire.Reconnected, wire.Connected:
		// A new connection is not yet a broker: a dial to a port nobody listens
		// on can connect to itself (TCP simultaneous open) and would echo our own
		// requests. Recovery starts on the PING_ACK to this ping.
		if m.stateOf(s) == stateLost {
			s.sendPing()
		}
	}
}

// sendPing sends a PING_REQ whose reply only refreshes lastHeard (readLoop does
// that for every message, so the reply itself is dropped as stale).
func (s *session) sendPing() {
	_ = s.m.oneWay(s, &proto.PingReq{})
}

// newTicker returns a ticker for a positive period, or one that never fires.
func newTicker(d time.Duration) *time.Ticker {
	if d <= 0 {
		t := time.NewTicker(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTicker(d)
}

// stateOf returns the state if s is still the current session (idle otherwise).
func (m *Messenger) stateOf(s *session) connState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess != s {
		return stateIdle
	}
	return m.state
}

// brokerLost moves to the lost state (once), fails every pending call and tells
// the OnBrokerLost callbacks.
func (m *Messenger) brokerLost(s *session, cause error) {
	m.mu.Lock()
	if m.sess != s || m.state == stateLost || m.state == stateIdle {
		m.mu.Unlock()
		return
	}
	m.state = stateLost
	ep := m.endpoint
	m.mu.Unlock()
	n := m.pend.failAll(fmt.Errorf("%w: %w", ErrNotConnected, cause))
	m.log.Warn("messenger: broker lost", "endpoint", ep, "cause", cause, "failed_calls", n)
	for _, fn := range m.onLost.get("") {
		m.disp.submit("broker lost", func() { fn(cause) })
	}
}

// sendHeartbeats sends HEARTBEAT_REQ for every channel we produce and
// CONSUMER_HEARTBEAT_REQ for every channel we consume, whatever the state
// (up, silent or recovering) as long as there is a connection: a broker that
// merely answers late must go on hearing from us, or it would declare our live
// channels and consumers dead. A full DEALER queue paces the round (it waits
// for room) instead of ending it: every channel gets its heartbeat, and a round
// longer than the period delays the next one (heartbeatLoop). Only a lost
// connection ends a round early.
func (m *Messenger) sendHeartbeats(s *session) {
	if st := m.stateOf(s); st == stateIdle || st == stateConnecting {
		return
	}
	prods, cons := m.owned.snapshot()
	pid := m.id().pid
	var deadline time.Time // none: wait for room as long as the session lives
	for _, p := range prods {
		if err := m.oneWayWait(s, &proto.HeartbeatReq{ChannelName: p.name, ProducerPID: pid}, deadline); err != nil {
			m.log.Debug("messenger: heartbeats not sent", "channel", p.name, "err", err)
			return
		}
	}
	for ch := range cons {
		if err := m.oneWayWait(s, &proto.ConsumerHeartbeatReq{ChannelName: ch, ConsumerPID: pid}, deadline); err != nil {
			m.log.Debug("messenger: consumer heartbeats not sent", "channel", ch, "err", err)
			return
		}
	}
}

// oneWayWait is oneWay paced by a full queue until deadline (sendWait).
func (m *Messenger) oneWayWait(s *session, req proto.Request, deadline time.Time) error {
	proto.Stamp(req, m.pend.newID())
	frames, err := proto.Encode(req)
	if err != nil {
		return err
	}
	return s.sendWait(s.ctx, frames, deadline)
}

// recoveryWindow bounds the registrations in flight during a recovery: they
// are paced by the broker's replies, so thousands of channels never overflow
// the DEALER's queue (wire.Config.PeerQueue).
const recoveryWindow = 64

// inFlight runs fn(i) for every i < n, at most window at once, and starts no
// more once stop reports true.
func inFlight(n, window int, stop func() bool, fn func(i int)) {
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	for i := 0; i < n && !stop(); i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// startRecovery moves a lost session to recovering and starts the goroutine that
// registers everything again (at most one at a time per session).
func (m *Messenger) startRecovery(s *session) {
	m.mu.Lock()
	if m.sess != s || m.state != stateLost || !s.recovering.CompareAndSwap(false, true) {
		m.mu.Unlock()
		return
	}
	m.state = stateRecovering
	epoch := s.epoch.Add(1)
	m.mu.Unlock()
	s.spawn(func() { m.recover(s, epoch) })
}

// recover registers every channel we produce again (same info, so the broker
// treats it as a producer restart), heartbeats it at once, registers our
// consumers again, and then reports the broker back. Registrations are paced
// by the replies (recoveryWindow in flight, each bounded by RequestTimeout). A
// refused channel is forgotten and reported as EventReregisterFailed; a
// consumer whose channel is not (yet) known is retried until its producer
// re-registers or ReregisterWindow ends.
func (m *Messenger) recover(s *session, epoch uint64) {
	done := false
	defer func() {
		if !done {
			s.recovering.Store(false)
		}
	}()
	start := time.Now()
	prods, cons := m.owned.snapshot()
	pid := m.id().pid

	var mu sync.Mutex
	var lost error
	ok := 0
	stop := func() bool { mu.Lock(); defer mu.Unlock(); return lost != nil || s.ctx.Err() != nil }
	inFlight(len(prods), recoveryWindow, stop, func(i int) {
		p := prods[i]
		ctx, cancel := context.WithTimeout(s.ctx, m.cfg.RequestTimeout)
		defer cancel()
		rep, err := m.call(ctx, p.info.regReq(p.name, m.id()), false)
		if err == nil {
			_, err = expect[*proto.RegAck]("register producer", p.name, rep)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			ok++
			_ = m.oneWayWait(s, &proto.HeartbeatReq{ChannelName: p.name, ProducerPID: pid}, time.Now().Add(m.cfg.RequestTimeout))
		case isBrokerRefusal(err):
			if m.owned.removeProducer(p.name) {
				m.reregisterFailed(p.name, err)
			}
		default:
			lost = err // broker gone again, or too slow: the next recovery retries
		}
	})
	if lost != nil || s.ctx.Err() != nil {
		m.log.Warn("messenger: re-registration interrupted", "err", lost)
		m.recoveryFailed(s, lost)
		return
	}
	var regs []consumerReg
	for ch, ids := range cons {
		for _, id := range ids {
			regs = append(regs, consumerReg{ch, id})
		}
	}
	pending := m.reregisterConsumers(s, regs)

	m.mu.Lock()
	if m.sess != s || m.state != stateRecovering {
		m.mu.Unlock()
		return
	}
	m.state = stateUp
	ep := m.endpoint
	m.mu.Unlock()
	m.log.Info("messenger: broker reconnected", "endpoint", ep, "channels", ok,
		"consumers", len(cons), "took", time.Since(start).Round(time.Microsecond))
	for _, fn := range m.onBack.get("") {
		m.disp.submit("broker reconnected", func() { fn(ok) })
	}
	done = true
	s.recovering.Store(false) // a later loss may start the next recovery now
	if len(pending) > 0 {
		m.retryConsumers(s, epoch, pending)
	}
}

// consumerReg is one consumer registration: its channel and consumer_id.
type consumerReg struct{ channel, id string }

// reregisterConsumers sends CONSUMER_REG_REQ again for every registration in
// regs (same identity: a broker that kept the entry replaces it) and returns
// those that failed (the broker does not know the channel yet).
func (m *Messenger) reregisterConsumers(s *session, regs []consumerReg) []consumerReg {
	var mu sync.Mutex
	var pending []consumerReg
	inFlight(len(regs), recoveryWindow, func() bool { return s.ctx.Err() != nil }, func(i int) {
		ctx, cancel := context.WithTimeout(s.ctx, m.cfg.RequestTimeout)
		defer cancel()
		if err := m.registerConsumer(ctx, regs[i].channel, regs[i].id); err != nil {
			mu.Lock()
			pending = append(pending, regs[i])
			mu.Unlock()
		}
	})
	return pending
}

// retryConsumers keeps registering consumers whose channel was not known yet,
// with backoff, until done, the window ends, the consumer was deregistered, or
// the session ends, or a later recovery (epoch) took over, which registers every
// consumer itself. It runs on the recovery goroutine after the broker was
// reported back.
func (m *Messenger) retryConsumers(s *session, epoch uint64, pending []consumerReg) {
	deadline := time.Now().Add(m.cfg.ReregisterWindow)
	wait := 50 * time.Millisecond
	for len(pending) > 0 && time.Now().Before(deadline) {
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
		pending = slices.DeleteFunc(pending, func(r consumerReg) bool { // deregistered meanwhile
			return !slices.Contains(m.owned.consumerIDs(r.channel), r.id)
		})
		if s.epoch.Load() != epoch {
			return // lost again: the next recovery starts over from the owned set
		}
		if m.stateOf(s) != stateUp {
			continue
		}
		pending = m.reregisterConsumers(s, pending)
	}
	for _, r := range pending {
		m.log.Warn("messenger: consumer not registered again after broker restart", "channel", r.channel, "consumer_id", r.id)
	}
}

// recoveryFailed returns a recovering session to lost so the next reconnection
// (or PING_ACK) starts again.
func (m *Messenger) recoveryFailed(s *session, cause error) {
	m.mu.Lock()
	if m.sess == s && m.state == stateRecovering {
		m.state = stateLost
	}
	m.mu.Unlock()
}

// isBrokerRefusal reports whether err is an ERROR reply of the broker (as opposed
// to a lost connection or a timeout).
func isBrokerRefusal(err error) bool {
	var be *BrokerError
	return errors.As(err, &be)
}

func (m *Messenger) reregisterFailed(channel string, err error) {
	m.log.Error("messenger: channel could not be registered again after broker restart", "channel", channel, "err", err)
	cn := ChannelNotice{Channel: channel, Type: "", Event: EventReregisterFailed}
	var be *BrokerError
	if errors.As(err, &be) {
		cn.Error = be.Code + ": " + be.Message
	}
	for _, fn := range m.onError.get(channel) {
		m.disp.submit(EventReregisterFailed, func() { fn(cn) })
	}
}

// ownedSet is what a Messenger registered with the broker and must keep alive:
// the channels it produces (with the registration to repeat after a broker
// restart) and the channels it consumes (the consumer_id of each registration,
// because the broker keeps one entry per registration, protocol.md §5.6).
// Heartbeats and re-registration read snapshots; calls update it under mu.
type ownedSet struct {
	mu        sync.Mutex
	producers map[string]ProducerInfo // guarded by mu
	consumers map[string][]string     // guarded by mu: consumer_ids per channel
}

func newOwnedSet() *ownedSet {
	return &ownedSet{producers: map[string]ProducerInfo{}, consumers: map[string][]string{}}
}

func (o *ownedSet) addProducer(ch string, info ProducerInfo) {
	o.mu.Lock()
	o.producers[ch] = info
	o.mu.Unlock()
}

// producerInfo returns what ch was registered with.
func (o *ownedSet) producerInfo(ch string) ProducerInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.producers[ch]
}

// removeProducer forgets ch and reports whether it was owned.
func (o *ownedSet) removeProducer(ch string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.producers[ch]
	delete(o.producers, ch)
	return ok
}

func (o *ownedSet) hasProducer(ch string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.producers[ch]
	return ok
}

// addConsumer records registration id of ch.
func (o *ownedSet) addConsumer(ch, id string) {
	o.mu.Lock()
	o.consumers[ch] = append(o.consumers[ch], id)
	o.mu.Unlock()
}

// consumerIDs returns the consumer_ids we hold for ch.
func (o *ownedSet) consumerIDs(ch string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.consumers[ch])
}

// removeConsumer drops the latest registration of ch and returns its
// consumer_id ("" when none is held).
func (o *ownedSet) removeConsumer(ch string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ids := o.consumers[ch]
	if len(ids) == 0 {
		return ""
	}
	id := ids[len(ids)-1]
	if len(ids) == 1 {
		delete(o.consumers, ch)
	} else {
		o.consumers[ch] = ids[:len(ids)-1]
	}
	return id
}

// forget drops every producer and consumer registration of ch (the broker
// closed the channel).
func (o *ownedSet) forget(ch string) {
	o.mu.Lock()
	delete(o.producers, ch)
	delete(o.consumers, ch)
	o.mu.Unlock()
}

func (o *ownedSet) clear() {
	o.mu.Lock()
	o.producers = map[string]ProducerInfo{}
	o.consumers = map[string][]string{}
	o.mu.Unlock()
}

// ownedChannel is one producer registration in a snapshot.
type ownedChannel struct {
	name string
	info ProducerInfo
}

// snapshot returns the producer registrations, sorted by channel name, and the
// consumer_ids per consumed channel.
func (o *ownedSet) snapshot() ([]ownedChannel, map[string][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ps := make([]ownedChannel, 0, len(o.producers))
	for n, info := range o.producers {
		ps = append(ps, ownedChannel{name: n, info: info})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	cs := make(map[string][]string, len(o.consumers))
	for n, ids := range o.consumers {
		cs[n] = slices.Clone(ids)
	}
	return ps, cs
}
