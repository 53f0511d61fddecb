package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections from a local port to a target address, and can
// delay or reset them on demand. It stands between a node and the broker so
// scenarios can damage one node's control link without touching the others.
type Proxy struct {
	ln     net.Listener
	target string
	dial   func() (net.Conn, error)

	mu      sync.Mutex
	delay   time.Duration
	refuse  time.Time // refuse (RST) new connections until then
	conns   map[*pair]struct{}
	closed  bool
	quit    chan struct{}
	wg      sync.WaitGroup
	nconns  int
	nresets int
}

type pair struct{ a, b *net.TCPConn }

// NewProxy listens on 127.0.0.1:0 and forwards every connection to target
// ("host:port").
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy listen: %w", err)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return startProxy(ln, target, func() (net.Conn, error) { return d.Dial("tcp", target) }), nil
}

// NewProxyOn is NewProxy inside host h: it listens on the host's own
// loopback (127.0.0.1:0 as the host sees it) and dials target from the host,
// so the relayed link crosses the hosts' network (a partition cuts it) while
// the proxy adds its delay or resets.
func NewProxyOn(h *Host, target string) (*Proxy, error) {
	var ln net.Listener
	err := h.InNetNS(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy on %s: %w", h.Name, err)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return startProxy(ln, target, func() (c net.Conn, err error) {
		err = h.InNetNS(func() (err error) { c, err = d.Dial("tcp", target); return err })
		return c, err
	}), nil
}

func startProxy(ln net.Listener, target string, dial func() (net.Conn, error)) *Proxy {
	p := &Proxy{ln: ln, target: target, dial: dial, conns: map[*pair]struct{}{}, quit: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p
}

// Addr returns the proxy's listening address ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay makes every byte forwarded from now on (both directions) arrive d
// later; 0 removes the delay. Order within a direction is kept.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Reset aborts every open connection with a TCP RST, and for refuseFor after
// that aborts new connections at once. It returns how many were open.
func (p *Proxy) Reset(refuseFor time.Duration) (int, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, ErrClosed
	}
	p.refuse = time.Now().Add(refuseFor)
	pairs := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		pairs = append(pairs, c)
	}
	p.nresets += len(pairs)
	p.mu.Unlock()
	for _, c := range pairs {
		abort(c.a)
		abort(c.b)
	}
	return len(pairs), nil
}

// Stats returns how many connections were accepted and reset so far.
func (p *Proxy) Stats() (conns, resets int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nconns, p.nresets
}

func abort(c *net.TCPConn) {
	_ = c.SetLinger(0) // close sends RST
	_ = c.Close()
}

// Close stops accepting, aborts every connection and waits for every goroutine
// of the proxy. Idempotent.
func (p *Proxy) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.quit)
	pairs := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		pairs = append(pairs, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range pairs {
		abort(c.a)
		abort(c.b)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c.(*net.TCPConn))
	}
}

func (p *Proxy) serve(a *net.TCPConn) {
	defer p.wg.Done()
	p.mu.Lock()
	refusing := time.Now().Before(p.refuse)
	closed := p.closed
	p.mu.Unlock()
	if refusing || closed {
		abort(a)
		return
	}
	bc, err := p.dial()
	if err != nil {
		abort(a)
		return
	}
	b := bc.(*net.TCPConn)
	pr := &pair{a: a, b: b}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		abort(a)
		abort(b)
		return
	}
	p.conns[pr] = struct{}{}
	p.nconns++
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(b, a) }()
	go func() { defer wg.Done(); p.pump(a, b) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
	_ = a.Close()
	_ = b.Close()
}

type chunk struct {
	at   time.Time
	data []byte
}

// pump copies src to dst, holding each chunk back by the delay in force when it
// was read. A separate writer goroutine keeps reads flowing while writes wait.
func (p *Proxy) pump(dst, src *net.TCPConn) {
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if wait := time.Until(c.at); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-p.quit:
					t.Stop()
					return
				}
			}
			if _, err := dst.Write(c.data); err != nil {
				abort(src)
				return
			}
		}
		_ = dst.CloseWrite()
	}()
	defer func() { <-done }()
	defer close(q)
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			data := append([]byte(nil), buf[:n]...)
			select {
			case q <- chunk{at: time.Now().Add(d), data: data}:
			case <-done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				abort(dst)
			}
			return
		}
	}
}
