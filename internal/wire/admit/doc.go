// Package admit runs the handshakes of a listening socket: one goroutine per
// accepted connection, bounded in number and in time, so that no peer, and no
// crowd of peers, can keep a listener from serving new clients. It is what
// libzmq does with its per-connection handshake engines and handshake_ivl, for
// the two listeners of internal/wire (the NULL/CURVE transport of wire sockets,
// and the standalone "curve" zmq4 transport).
//
// Listen wraps a net.Listener. Its accept goroutine admits each new connection
// (or refuses it at the cap, below) and starts Handshake on it in a goroutine of
// its own; Accept returns only
// connections whose handshake succeeded, so the caller's (zmq4's, synchronous)
// accept loop never waits on a peer. Bounds:
//
//   - A TCP listener hands over a connection only once the peer has sent
//     something, or after IdleTimeout (TCP_DEFER_ACCEPT): a silent connection
//     waits in the kernel, without a descriptor or a goroutine.
//   - Max handshakes at once. Each connection is ranked by how far it has got:
//     silent, part of its greeting (Config.Greeting bytes, 64 for ZMTP), whole
//     greeting; the bytes that have arrived but are not read yet count (peeked,
//     SIOCINQ), so a client whose goroutine has not run yet is not taken for a
//     silent one. At the cap, the least advanced, oldest connection is closed
//     for a new one that has got further, or that has been in handshake for a
//     quarter of IdleTimeout (the probation; a client is done long before);
//     otherwise the new one is refused at once (no goroutine). A client sends
//     its whole greeting at once, so it gets in however many idle or
//     half-greeted connections there are, and keeps its place: an attacker that
//     re-opens every closed connection at once is refused at the cost of an
//     accept and a close, and does not move it out. This is libzmq's property
//     (a handshake per connection with its own deadline, a new client never
//     queued behind idle ones) within a bound on descriptors and goroutines.
//   - IdleTimeout: a connection that has not sent its whole greeting by then is
//     closed (a client sends it at once; a libzmq peer within one round trip),
//     long before the handshake deadline, which Handshake sets and enforces
//     itself. Connections the Listener closes itself are reset (SO_LINGER 0),
//     leaving no TIME_WAIT socket behind.
//   - Every failed handshake closes its connection (its descriptor) here, once,
//     whatever Handshake did, and is logged at Warn through a Limiter: at most
//     one Warn line per LogEvery, carrying the count of failures not logged at
//     Warn since; the others go to Debug.
//
// Goroutines: the accept loop, one per connection in handshake or waiting to be
// accepted (at most Max in handshake), and one idle timer per connection in
// handshake; a refused connection has none. Close stops the accept loop, closes
// every connection still in handshake or not yet accepted and waits for all of
// them. Lock: Listener.mu guards the pending list; it is
// never held across I/O or a call to Handshake.
package admit
