// Package admit runs the handshakes of a listening socket: one goroutine per
// accepted connection, bounded in number and in time, so that no peer, and no
// crowd of peers, can keep a listener from serving new clients. It is what
// libzmq does with its per-connection handshake engines and handshake_ivl, for
// the two listeners of internal/wire (the NULL/CURVE transport of wire sockets,
// and the standalone "curve" zmq4 transport).
//
// Listen wraps a net.Listener. Its accept goroutine admits every new connection
// and starts Handshake on it in a goroutine of its own; Accept returns only
// connections whose handshake succeeded, so the caller's (zmq4's, synchronous)
// accept loop never waits on a peer. Bounds:
//
//   - Max handshakes at once. A new connection is never refused for lack of
//     room: the oldest connection that has sent nothing yet is closed to make
//     room, else the oldest one. A real client finishes its handshake in
//     milliseconds, so it is never the oldest while idle connections pile up,
//     and 64 (or Max) idle connections cannot lock everyone out.
//   - IdleTimeout: a connection that has sent nothing by then is closed (a
//     client sends its greeting at once), long before the handshake deadline,
//     which Handshake sets and enforces itself.
//   - Every failed handshake closes its connection (its descriptor) here, once,
//     whatever Handshake did, and is logged at Warn through a Limiter: at most
//     one Warn line per LogEvery, carrying the count of failures not logged at
//     Warn since; the others go to Debug.
//
// Goroutines: the accept loop, one per connection in handshake or waiting to be
// accepted, and one idle timer per connection in handshake. Close stops the
// accept loop, closes every connection still in handshake or not yet accepted
// and waits for all of them. Lock: Listener.mu guards the pending list; it is
// never held across I/O or a call to Handshake.
package admit
