package curve

import (
	"net"

	"github.com/pylabhub/plh/internal/wire/admit"
)

// newListener wraps a TCP listener for the "curve" transport: the handshakes
// run in internal/wire/admit (one goroutine per connection, at most
// MaxHandshakes at once, the least advanced closed for a new one that got
// further, connections without their whole greeting closed after min(1 s,
// HandshakeTimeout), each failure closed and
// logged at Warn, rate-limited). Accept hands zmq4 only connections whose CURVE
// handshake completed, so a silent or hostile client never blocks zmq4's
// (synchronous) accept loop and never delays other clients.
func newListener(ln net.Listener, e *Endpoint) net.Listener {
	cfg := e.server
	return admit.Listen(ln, admit.Config{
		Max:         cfg.MaxHandshakes,
		IdleTimeout: min(admit.DefaultIdleTimeout, cfg.HandshakeTimeout),
		Greeting:    greetingLen,
		Logger:      e.log,
		Name:        "curve",
	}, func(raw net.Conn) (net.Conn, error) {
		return serverHandshake(raw, cfg, e.allow, e.log, true)
	})
}
