package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
)

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

	lastHeard  atomic.Int64  // proc.Now() of the last message from the broker
	recovering atomic.Bool   // a re-registration goroutine is running
	epoch      atomic.Uint64 // counts recoveries
	abort      connectAbort  // ends Connect's wait on a failed security handshake
}

func newSession(m *Messenger, d *wire.Dealer) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{m: m, d: d, ctx: ctx, cancel: cancel}
	s.lastHeard.Store(proc.Now())
	return s
}

func (s *session) start() {
	s.spawn(s.readLoop)
	s.spawn(s.tickLoop)
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

func (s *session) readLoop() {
	for {
		frames, err := s.d.Recv(s.ctx)
		if err != nil {
			return // stopped
		}
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
			m.sendHeartbeats(s)
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

// handleIncoming routes one message from the broker. It never blocks.
func (m *Messenger) handleIncoming(s *session, frames [][]byte) {
	f, err := proto.Parse(frames)
	if err != nil || f.Kind != proto.KindControl {
		m.log.Warn("messenger: dropped malformed message from broker", "err", err)
		return
	}
	typ := proto.Type(f.Type)
	if proto.IsNotify(typ) {
		s.lastHeard.Store(proc.Now())
		m.notify(f.Type, f.Body)
		return
	}
	if !isReplyType(typ) {
		// Only a broker's replies and notifications prove it is there (a
		// self-connected socket echoes our own requests).
		m.log.Debug("messenger: dropped non-reply message", "type", f.Type)
		return
	}
	s.lastHeard.Store(proc.Now())
	id := proto.PeekCorrelation(f.Body)
	if id == "" || !m.pend.resolve(id, reply{typ: f.Type, body: f.Body}) {
		// A reply nobody waits for: a ping, or a caller that gave up.
		m.log.Debug("messenger: dropped stale reply", "type", f.Type, "correlation_id", id)
	}
	if m.stateOf(s) == stateLost && proto.Type(f.Type) == proto.TypePingAck {
		m.startRecovery(s) // the broker answers again without a new connection
	}
}

// isReplyType reports whether t is a reply type: ERROR or any *_ACK / *_RESP
// (a test fake broker answers REG_RESP; clients judge replies by their body,
// protocol.md §5).
func isReplyType(t proto.Type) bool {
	s := string(t)
	return t == proto.TypeError || strings.HasSuffix(s, "_ACK") || strings.HasSuffix(s, "_RESP")
}
