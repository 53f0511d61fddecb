package curve

import (
	"errors"
	"net"
	"sync"
)

// listener wraps a TCP listener. One goroutine accepts raw connections and
// starts one handshake goroutine per connection (at most MaxHandshakes at once);
// Accept hands zmq4 only connections whose handshake completed, so a silent or
// hostile client never blocks zmq4's (synchronous) accept loop and never delays
// other clients. Close stops the accept goroutine, closes every connection still
// handshaking and waits for all goroutines.
type listener struct {
	ln    net.Listener
	ep    *Endpoint
	ready chan net.Conn // handshaken conns for Accept
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu      sync.Mutex            // guards pending
	pending map[net.Conn]struct{} // raw conns in handshake
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.quit:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.ep.log.Warn("curve: accept failed", "err", err)
			continue
		}
		l.mu.Lock()
		select {
		case <-l.quit: // Close already swept pending: do not add to it
			l.mu.Unlock()
			_ = raw.Close()
			return
		default:
		}
		if len(l.pending) >= l.ep.server.MaxHandshakes {
			l.mu.Unlock()
			l.ep.log.Warn("curve: too many handshakes in progress, closing new connection", "peer", raw.RemoteAddr().String(), "limit", l.ep.server.MaxHandshakes)
			_ = raw.Close()
			continue
		}
		l.pending[raw] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.handshake(raw)
	}
}

func (l *listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	c, err := serverHandshake(raw, l.ep.server, l.ep.allow, l.ep.log, true)
	l.mu.Lock()
	delete(l.pending, raw)
	l.mu.Unlock()
	if err != nil {
		select {
		case <-l.quit: // closed under us: not the peer's fault
		default:
			l.ep.log.Warn("curve: refused connection", "peer", raw.RemoteAddr().String(), "err", err)
		}
		_ = raw.Close()
		return
	}
	select {
	case l.ready <- c:
	case <-l.quit:
		_ = raw.Close()
	}
}

// Accept returns the next connection that completed the CURVE handshake.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.quit:
		return nil, &net.OpError{Op: "accept", Net: Scheme, Addr: l.ln.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting, aborts handshakes in progress and waits for every
// goroutine of the listener. Idempotent.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.quit)
		err = l.ln.Close()
		l.mu.Lock()
		for raw := range l.pending {
			_ = raw.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Addr returns the bound TCP address.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }
