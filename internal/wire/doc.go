// Package wire is the only package of plh that opens zmq4 sockets. It makes
// github.com/go-zeromq/zmq4 v0.17.0 safe against the traps of notes/zmq4.md:
//
//   - Every connection goes through wire's own zmq4 transports ("plhtcp",
//     "plhipc"; zmqEndpoint is the only place tcp://… and ipc://… are rewritten).
//     The transport wraps each net.Conn in a guard that parses the inbound ZMTP
//     stream and drops the connection (counted in Stats.Violations/Oversized)
//     before zmq4 allocates a frame over MaxFrame, a message over MaxMessage or
//     MaxFrames (zmq4 allocates whatever length a header claims), puts
//     SendTimeout on every network write (traps 3 and 6), and bounds the
//     handshake with HandshakeTimeout. Listeners run each new connection's
//     handshake in its own goroutine (internal/wire/admit: at most
//     MaxHandshakes at once, the oldest silent one closed to make room, silent
//     ones closed after 1 s): the security handshake, then the peer's ZMTP
//     greeting and READY, checked as zmq4 would check them (handshake.go) and
//     replayed to zmq4. So zmq4's single accept loop never waits on a peer, and
//     never fails a handshake (zmq4 leaves such a connection open): every
//     failed handshake closes its descriptor, is counted and logged at Warn,
//     rate-limited.
//   - Router: Send never blocks; each peer has a bounded queue (PeerQueue,
//     ErrQueueFull) drained by its own goroutine (it exits after 200-400 ms
//     without messages), which takes whatever is queued (up to 256 messages,
//     256 KiB) and writes it in one network write directly on the peer's
//     connection (writev over TCP/ipc, frames over 2 KiB from the caller's
//     memory; through CURVE one BuffersWriter call, sealed and written once):
//     the listener knows each accepted connection's routing identity from its
//     READY, and once zmq4's own handshake has gone out on it zmq4 never writes
//     there on its own, so the Router is its only writer. Until then (and for a
//     peer it has no such connection for) messages go through zmq4 one by one;
//     zmq4 serialises those writes to all peers behind one mutex, so a stuck
//     peer delays others by at most SendTimeout, after which its connection is
//     dropped.
//   - Reads: once the handshake is done the guard reads ahead up to 64 KiB
//     (checked by its limits parser before zmq4 sees a byte), so zmq4's
//     header-then-body reads cost one syscall per burst, not two per frame. On
//     a Dealer's connection the guard then delivers whole messages to the
//     receive queue itself (deliver.go): zmq4's reader goroutine calls Read
//     once and gets back only the connection's error, so a message costs no
//     zmq4 frame allocations, queue or reader hand-off. The rest of a large
//     frame (8 KiB or more still to come) is read straight into its body.
//     Dealer.SetSink lets the owner take messages on that reader goroutine
//     (hub's consumer takes its data messages so, one hand-off fewer; the
//     frame list of a message a Sink took is reused), and Dealer.SetAlloc lets
//     it supply the storage of every body over 64 bytes (hub recycles the
//     buffers its RecvFunc lent out, so a body costs no allocation).
//   - Dealer writes: once zmq4's handshake has gone out on the connection, the
//     Dealer's writer sends whatever is queued in one direct write, like the
//     Router (no zmq4 goroutine, errgroup or lock per message).
//   - Dealer and Sub dial in the background, notice the loss of the peer, and
//     redial with exponential backoff (RedialMin..RedialMax) using a fresh zmq4
//     socket with the same routing identity (zmq4's reconnect gives up silently,
//     trap 1). Events() reports Connected, Lost, Reconnected, DialFailed. Send
//     while disconnected returns ErrNotConnected instead of dropping silently.
//     Reconnect() forces a redial (for a peer that is stopped, not dead).
//   - Pub bounds zmq4's queue with OptionHWM and its own with PeerQueue. There is
//     no PUSH: zmq4 PUSH copies to every peer (trap 4); pipelines balance on
//     Router/Dealer.
//   - Drops are counted: Stats.Dropped (messages read from the network but
//     never delivered to Recv: in flight at Close, or drained from zmq4's queue),
//     QueueFull, SendErrors, Violations, HandshakeFailures, RecvErrors.
//   - The one list of zmq4's known goroutine leaks is wiretest.GoleakIgnores
//     (test-only, so binaries do not link goleak).
//   - Messages are opaque [][]byte: the frame envelope of spec/protocol.md §2
//     (control/data frames) belongs to broker/proto; wire knows no message.
//
// Security seam (CURVE, internal/wire/curve): Config.Security (nil = NULL). The
// transport calls Security.Secure(raw, server) on each raw connection with the
// handshake deadline set, and hands zmq4 the returned net.Conn (which must speak
// plain NULL ZMTP upward) wrapped in the guard. So CURVE needs no endpoint
// rewriting and keeps the guard's limits; Router.PublicKey reports the key.
//
// Goroutines: Router: one reader + one sender per peer with queued messages.
// Dealer: dial loop + one reader per connection (waiting for zmq4 to report
// the connection's end; zmq4's own reader runs the guard's delivery) + one
// writer. Sub: dial loop +
// reader. Pub: one writer. Listeners: accept loop + one per connection in
// handshake (admit). Close stops all of them (and drains zmq4's internal queue) before it
// returns. Locks: each socket has one mutex for its own state, never held while
// calling into zmq4 except Router.Send's queue lookup (which never blocks).
package wire
