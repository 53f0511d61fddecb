// Package hub is the client side of plh: the Messenger (broker client), and the
// Producer, Consumer, configuration and admin shell built on it.
//
// # Messenger
//
// A Messenger is an explicit object (NewMessenger; no process singleton) holding
// one broker connection: a wire.Dealer, which redials with backoff by itself and
// whose single writer goroutine owns the zmq4 socket. Around it, per Connect:
//
//   - readLoop: the only receiver. A reply is matched to its caller by
//     correlation_id through the pending table (every request carries a unique id
//     and protocol_version); a reply nobody waits for any more is dropped. A
//     *_NOTIFY message is decoded and its callbacks are queued. It never blocks.
//   - tickLoop: heartbeats (HEARTBEAT_REQ per channel we produce,
//     CONSUMER_HEARTBEAT_REQ per channel we consume) every HeartbeatInterval, the
//     PING_REQ probe every PingInterval, the silence check, and wire's connection
//     events. Heartbeats never wait behind a pending request.
//   - a recovery goroutine after the broker came back (below).
//
// Callers send directly (wire.Dealer.Send never blocks) and wait on their own
// reply channel with their context, so any number of goroutines can call at once
// (B-14). Callbacks run on one dispatcher goroutine, in arrival order, with panics
// recovered: a slow callback never delays replies or heartbeats. Any number of
// callbacks per channel; each On… returns its unsubscribe function.
//
// States: idle → connecting (Connect waits for the first PING_ACK) → up. The
// broker is lost when its connection drops (at once) or it is silent for
// LostAfter (default two ping periods, B-2): pending calls fail with
// ErrBrokerLost, new calls fail fast, OnBrokerLost runs. When wire reconnects (or
// a PING_ACK arrives) the state is recovering: every channel we produce is
// registered again with its original ProducerInfo (the broker treats it as a
// producer restart) and heartbeated, every consumer registration is repeated,
// then the state is up and OnBrokerReconnected runs (B-1). Consumer registrations
// whose channel is not known yet are retried in the background for
// ReregisterWindow.
//
// Locks: Messenger.connMu serialises Connect/Disconnect/Close and is held while
// Connect waits; Messenger.mu guards state and the current session and is never
// held while sending or waiting. The pending table, the owned set and each
// callback list have their own mutex, always taken alone (no nesting). Invariant:
// a pending entry is only added under Messenger.mu while the state allows
// requests, and every state change that ends requests happens under Messenger.mu
// before the table is failed, so no caller waits for a reply that cannot come.
package hub
