package hub

import (
	"github.com/pylabhub/plh/broker/proto"
)

// Callbacks run on the Messenger's callback goroutine, one at a time and in the
// order the broker sent the notifications, never on the socket's goroutines: a
// slow callback delays other callbacks, never replies or heartbeats. Callbacks may
// call any Messenger method except Close; a panic is recovered and logged. Each
// On… call returns an idempotent unsubscribe function; a callback already queued
// when it is unsubscribed may still run once.

// OnChannelClosing calls fn(reason) when the broker closes channel
// (CHANNEL_CLOSING_NOTIFY: "heartbeat_timeout", "explicit_close").
func (m *Messenger) OnChannelClosing(channel string, fn func(reason string)) (unsubscribe func()) {
	return m.onClosing.add(channel, fn)
}

// OnAnyChannelClosing calls fn(channel, reason) for a closing channel that has no
// OnChannelClosing callback (the original's global fallback).
func (m *Messenger) OnAnyChannelClosing(fn func(channel, reason string)) (unsubscribe func()) {
	return m.onAnyClosing.add("", fn)
}

// OnConsumerDied calls fn(pid, reason) when the broker reports a consumer of
// channel dead (CONSUMER_DIED_NOTIFY: "process_dead", "heartbeat_timeout").
func (m *Messenger) OnConsumerDied(channel string, fn func(pid uint64, reason string)) (unsubscribe func()) {
	return m.onDied.add(channel, fn)
}

// OnChannelError calls fn for CHANNEL_ERROR_NOTIFY on channel (event
// "schema_mismatch_attempt") and for EventReregisterFailed. The original routes
// CHANNEL_EVENT_NOTIFY to the same callback: subscribe fn with OnChannelEvent too
// for that behaviour.
func (m *Messenger) OnChannelError(channel string, fn func(ChannelNotice)) (unsubscribe func()) {
	return m.onError.add(channel, fn)
}

// OnChannelEvent calls fn for CHANNEL_EVENT_NOTIFY on channel (checksum error
// reports forwarded by a NotifyOnly broker).
func (m *Messenger) OnChannelEvent(channel string, fn func(ChannelNotice)) (unsubscribe func()) {
	return m.onEvent.add(channel, fn)
}

// OnBrokerLost calls fn(cause) when the broker is lost: its connection dropped or
// it stayed silent for LostAfter (backlog B-2).
func (m *Messenger) OnBrokerLost(fn func(cause error)) (unsubscribe func()) {
	return m.onLost.add("", fn)
}

// OnBrokerReconnected calls fn(channels) when the broker answers again after it
// was lost and every channel this Messenger produces has been registered again
// (channels is how many were; consumer registrations whose producer has not
// re-registered yet keep being retried in the background).
func (m *Messenger) OnBrokerReconnected(fn func(channels int)) (unsubscribe func()) {
	return m.onBack.add("", fn)
}

// notify decodes a *_NOTIFY body and queues its callbacks. A malformed
// notification is logged and dropped.
func (m *Messenger) notify(typ string, body []byte) {
	msg, err := proto.Decode(proto.Type(typ), body)
	if err != nil {
		m.log.Warn("messenger: dropped malformed notification", "type", typ, "err", err)
		return
	}
	ch := proto.ChannelOf(msg)
	switch n := msg.(type) {
	case *proto.ChannelClosingNotify:
		m.owned.forget(ch) // the broker no longer holds it: no heartbeats, no re-registration
		fns := m.onClosing.get(ch)
		if len(fns) == 0 {
			for _, fn := range m.onAnyClosing.get("") {
				m.disp.submit(typ, func() { fn(ch, n.Reason) })
			}
			return
		}
		for _, fn := range fns {
			m.disp.submit(typ, func() { fn(n.Reason) })
		}
	case *proto.ConsumerDiedNotify:
		for _, fn := range m.onDied.get(ch) {
			m.disp.submit(typ, func() { fn(n.ConsumerPID, n.Reason) })
		}
	case *proto.ChannelErrorNotify:
		cn := ChannelNotice{
			Channel: ch, Type: typ, Event: n.Event, Body: append([]byte(nil), body...),
			ExistingSchemaHash: n.ExistingSchemaHash, AttemptedSchemaHash: n.AttemptedSchemaHash,
			AttemptedPid: n.AttemptedPID,
		}
		if cn.Event == "" {
			cn.Event = typ
		}
		for _, fn := range m.onError.get(ch) {
			m.disp.submit(typ, func() { fn(cn) })
		}
	case *proto.ChannelEventNotify:
		cn := ChannelNotice{
			Channel: ch, Type: typ, Event: n.Event, Body: append([]byte(nil), body...),
			SlotIndex: n.SlotIndex, Error: n.Error, ReporterPid: n.ReporterPID, BrokerAction: n.BrokerAction,
		}
		if cn.Event == "" {
			cn.Event = typ
		}
		for _, fn := range m.onEvent.get(ch) {
			m.disp.submit(typ, func() { fn(cn) })
		}
	default:
		m.log.Warn("messenger: dropped unknown notification", "type", typ)
	}
}
