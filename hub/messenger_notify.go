package hub

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/pylabhub/plh/broker/proto"
)

// ChannelNotice is a CHANNEL_ERROR_NOTIFY or CHANNEL_EVENT_NOTIFY delivered to
// OnChannelError / OnChannelEvent callbacks, and the "reregister_failed" event the
// Messenger itself raises when a channel cannot be registered again after a broker
// restart.
type ChannelNotice struct {
	Channel string
	Type    string // wire type, e.g. "CHANNEL_ERROR_NOTIFY"
	// Event is the body's "event" ("schema_mismatch_attempt", ...), or the wire
	// type when the body has none (protocol.md §7.4).
	Event string
	// CHANNEL_ERROR_NOTIFY fields.
	ExistingSchemaHash, AttemptedSchemaHash string
	AttemptedPid                            uint64
	// CHANNEL_EVENT_NOTIFY fields (checksum error reports).
	SlotIndex    int32
	Error        string
	ReporterPid  uint64
	BrokerAction string // notify_only, or the outcome of a repair (repaired, not_repaired, repair_failed)
	BrokerDetail string // why a repair did nothing or failed (policy Repair)
	// Body is the notification's JSON body as received.
	Body json.RawMessage
	// Ring details the ring notices a Producer or Consumer raises itself
	// (EventRingError, EventRingReattached; nil otherwise).
	Ring *RingIssue
	// Remap details a structure remap (B-19): the broker's notice (Event
	// EventRemap) and the notices a Consumer raises itself (EventRemapped,
	// EventRemapFailed); nil otherwise.
	Remap *RemapNotice
}

// EventReregisterFailed is the ChannelNotice.Event raised when, after a broker
// restart, the broker refused to register one of our channels again (e.g. another
// producer took the name with another schema). The channel is then forgotten.
const EventReregisterFailed = "reregister_failed"

// EventRejoinFailed is the ChannelNotice.Event a Consumer raises (to its
// OnChannelError) when its producer asked it to HELLO again (REJOIN) and the
// HELLO could not be sent: the consumer is not admitted and gets no data.
const EventRejoinFailed = "rejoin_failed"

// EventSlowConsumer is the ChannelNotice.Event a Consumer raises (to its
// OnChannelError) when its PubSub producer disconnected it for not returning
// credit (SlowConsumerDisconnect; wire SLOW_CONSUMER). Error holds the reason.
const EventSlowConsumer = "slow_consumer"

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
			BrokerDetail: n.BrokerDetail,
		}
		if n.Event == proto.EventRemap {
			cn.Remap = &RemapNotice{ShmName: n.ShmName, SchemaHashHex: n.SchemaHash, Generation: n.LayoutGeneration, FinalSeq: n.FinalSeq}
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

// subList holds any number of callbacks per channel name. Add returns an
// unsubscribe function; get returns a snapshot, so callbacks run without the lock
// and may subscribe or unsubscribe from inside a callback.
type subList[F any] struct {
	mu   sync.Mutex
	next uint64
	m    map[string][]subEntry[F] // guarded by mu
}

type subEntry[F any] struct {
	id uint64
	fn F
}

// add registers fn under key and returns its idempotent unsubscribe function.
// Keys are channel names compared as logical names (B-21: a " | pid:<pid>-<n>"
// suffix is ignored), as the broker compares them.
func (s *subList[F]) add(key string, fn F) func() {
	key = proto.LogicalName(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]subEntry[F]{}
	}
	s.next++
	id := s.next
	s.m[key] = append(s.m[key], subEntry[F]{id: id, fn: fn})
	var once sync.Once
	return func() { once.Do(func() { s.remove(key, id) }) }
}

func (s *subList[F]) remove(key string, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.m[key]
	for i, e := range list {
		if e.id == id {
			// Copy so a snapshot handed out earlier is never modified.
			nl := make([]subEntry[F], 0, len(list)-1)
			nl = append(nl, list[:i]...)
			nl = append(nl, list[i+1:]...)
			if len(nl) == 0 {
				delete(s.m, key)
			} else {
				s.m[key] = nl
			}
			return
		}
	}
}

// get returns the callbacks registered under key, in subscription order.
func (s *subList[F]) get(key string) []F {
	key = proto.LogicalName(key)
	s.mu.Lock()
	list := s.m[key]
	s.mu.Unlock()
	out := make([]F, len(list))
	for i, e := range list {
		out[i] = e.fn
	}
	return out
}

// count returns how many callbacks are registered under key.
func (s *subList[F]) count(key string) int {
	key = proto.LogicalName(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m[key])
}

// dispatcher runs callbacks on its own goroutine, in submission order, so a slow
// or panicking callback never delays the socket loop (replies keep flowing). The
// queue is bounded by max: beyond it notifications are dropped and counted, which
// only happens when callbacks block for a long time.
type dispatcher struct {
	log *slog.Logger
	max int

	mu      sync.Mutex
	queue   []func() // guarded by mu
	closed  bool     // guarded by mu
	wake    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	panics  atomic.Uint64
}

func newDispatcher(log *slog.Logger, max int) *dispatcher {
	d := &dispatcher{log: log, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.run()
	return d
}

// submit queues fn; false when the queue is full or the dispatcher is closed.
func (d *dispatcher) submit(what string, fn func()) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	if len(d.queue) >= d.max {
		d.mu.Unlock()
		d.dropped.Add(1)
		d.log.Warn("messenger: callback queue full, notification dropped", "what", what, "max", d.max)
		return false
	}
	d.queue = append(d.queue, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		closed := d.closed
		d.mu.Unlock()
		for _, fn := range batch {
			d.call(fn)
		}
		if len(batch) > 0 {
			continue
		}
		if closed {
			return
		}
		<-d.wake
	}
}

// call runs fn, recovering and logging a panic.
func (d *dispatcher) call(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			d.panics.Add(1)
			d.log.Error("messenger: callback panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// close runs what is already queued, then stops the goroutine and waits for it.
// It must not be called from a callback.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}
