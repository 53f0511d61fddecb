package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pylabhub/plh/broker/proto"
)

// sendHeartbeats sends HEARTBEAT_REQ for every channel we produce and
// CONSUMER_HEARTBEAT_REQ for every channel we consume. Skipped while the broker
// is lost or being recovered (recovery sends its own first heartbeats).
func (m *Messenger) sendHeartbeats(s *session) {
	if m.stateOf(s) != stateUp {
		return
	}
	prods, cons := m.owned.snapshot()
	pid := m.id().pid
	for _, p := range prods {
		if err := m.oneWay(s, &proto.HeartbeatReq{ChannelName: p.name, ProducerPID: pid}); err != nil {
			m.log.Debug("messenger: heartbeat not sent", "channel", p.name, "err", err)
			return
		}
	}
	for ch := range cons {
		if err := m.oneWay(s, &proto.ConsumerHeartbeatReq{ChannelName: ch, ConsumerPID: pid}); err != nil {
			m.log.Debug("messenger: consumer heartbeat not sent", "channel", ch, "err", err)
			return
		}
	}
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
// consumers again, and then reports the broker back. All registrations are in
// flight together. A refused channel is forgotten and reported as
// EventReregisterFailed; a consumer whose channel is not (yet) known is retried
// until its producer re-registers or ReregisterWindow ends.
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
	ctx, cancel := context.WithTimeout(s.ctx, m.cfg.RequestTimeout)
	defer cancel()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var lost error
	ok := 0
	for _, p := range prods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := m.call(ctx, p.info.regReq(p.name, m.id()), false)
			if err == nil {
				_, err = expect[*proto.RegAck]("register producer", p.name, rep)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				_ = m.oneWay(s, &proto.HeartbeatReq{ChannelName: p.name, ProducerPID: pid})
			case isBrokerRefusal(err):
				if m.owned.removeProducer(p.name) {
					m.reregisterFailed(p.name, err)
				}
			default:
				lost = err // broker gone again, or too slow: the next recovery retries
			}
		}()
	}
	wg.Wait()
	if lost != nil || s.ctx.Err() != nil {
		m.log.Warn("messenger: re-registration interrupted", "err", lost)
		m.recoveryFailed(s, lost)
		return
	}
	pending := m.reregisterConsumers(ctx, s, cons)

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

// reregisterConsumers sends CONSUMER_REG_REQ once per registration we hold and
// returns the channels the broker does not know (yet), with their counts.
func (m *Messenger) reregisterConsumers(ctx context.Context, s *session, cons map[string]int) map[string]int {
	id := m.id()
	var wg sync.WaitGroup
	var mu sync.Mutex
	pending := map[string]int{}
	for ch, n := range cons {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := m.call(ctx, &proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: id.pid, ConsumerStartTime: id.start}, false)
				if err != nil {
					mu.Lock()
					pending[ch]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return pending
}

// retryConsumers keeps registering consumers whose channel was not known yet,
// with backoff, until done, the window ends, the consumer was deregistered, or
// the session ends, or a later recovery (epoch) took over, which registers every
// consumer itself. It runs on the recovery goroutine after the broker was
// reported back.
func (m *Messenger) retryConsumers(s *session, epoch uint64, pending map[string]int) {
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
		_, cons := m.owned.snapshot()
		for ch := range pending {
			pending[ch] = min(pending[ch], cons[ch]) // deregistered meanwhile
			if pending[ch] == 0 {
				delete(pending, ch)
			}
		}
		if s.epoch.Load() != epoch {
			return // lost again: the next recovery starts over from the owned set
		}
		if m.stateOf(s) != stateUp {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, m.cfg.RequestTimeout)
		pending = m.reregisterConsumers(ctx, s, pending)
		cancel()
	}
	for ch := range pending {
		m.log.Warn("messenger: consumer not registered again after broker restart", "channel", ch)
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
