// Package curve is CurveZMQ (RFC 26, the CURVE mechanism of ZMTP 3.0) for
// go-zeromq/zmq4, in pure Go and interoperable with libzmq 4.3.
//
// zmq4 cannot host CURVE as a Security plugin (the frame header is written with
// the plaintext length before Encrypt runs; one Security value serves every
// connection of a socket), so CURVE lives one layer below: a zmq4 transport named
// "curve" whose net.Conn speaks ZMTP-CURVE on the wire and ZMTP-NULL to zmq4. zmq4
// stays an unmodified dependency with NULL security.
//
// Two entry points share the handshake and conn code: Security plugs into
// internal/wire's seam (wire.Config.Security; wire owns the transport, deadlines
// and vetting goroutines and calls Secure on each raw connection), and the
// "curve" zmq4 transport serves code that uses zmq4 directly (tests, benchmark).
//
// Transport keys are per socket. ServerEndpoint / ClientEndpoint register a config (key
// pair, server key, allowlist, deadlines, logger) under a process-local handle and
// return an Endpoint whose String is the zmq4 address, "curve://s1@127.0.0.1:0".
// The transport looks the handle up on Listen/Dial. Endpoint.Close releases it.
//
// Server connection: the listener (internal/wire/admit) runs greeting, HELLO,
// WELCOME (cookie), INITIATE (vouch, allowlist, metadata) in one goroutine per
// TCP connection under the handshake deadline, at most MaxHandshakes at once
// (at the cap the least advanced connection is closed for a new one that got
// further, else the new one is refused; one without its whole greeting is
// closed after 1 s); only then does Accept hand the conn to zmq4, so a
// silent or hostile client never blocks zmq4's synchronous accept loop or other
// clients. Before the client is authenticated the server spends little: a
// 512-byte reader, frame buffers that grow with the bytes received, and its
// transient key pair only once HELLO has opened. Failures are closed and
// logged at Warn, rate-limited. Peer public keys of small order are refused
// (checkPublic), transient secrets and the cookie key wiped after the handshake.
// zmq4's NULL greeting and READY are answered locally (its READY's metadata
// becomes our encrypted READY to the client).
// Client connection: Dial runs greeting, HELLO, WELCOME; zmq4's READY metadata
// becomes INITIATE; the server's READY metadata is handed up as a NULL READY.
//
// Message phase: each zmq4 frame becomes one MESSAGE (flags byte with MORE and
// COMMAND inside the box, strictly increasing 8-byte nonces, key precomputed with
// box.Precompute; msgbox.go seals and opens them as NaCl's crypto_box_afternm
// with the XSalsa20 subkey of each direction's fixed nonce prefix derived once,
// and seals a payload that arrived whole from where it is); the MESSAGEs sealed from one Write go out in one network
// write (wire hands a batch of messages in one Write); each MESSAGE received
// becomes one ZMTP frame again. A MESSAGE
// that fails authentication, repeats or lowers its nonce, exceeds MaxMessage or is
// not a MESSAGE drops that connection only: logged once at Warn with the peer
// address and a sentinel (ErrTampered, ErrReplay, ...), and reported to zmq4 as a
// non-timeout net.Error so zmq4 removes the connection. A PING (ZMTP 3.1
// heartbeat) is answered with a PONG written under its own write deadline (the
// owner's last span, else 5 s), and the owner's deadline is put back.
//
// Locks: conn.wmu (send side and write deadline), conn.rmu (receive side; may
// take wmu to answer a PING), registry mutex (handles). No lock is
// held across network I/O except a conn's own side lock.
package curve
