package admit

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultMax         = 256
	DefaultIdleTimeout = time.Second
	DefaultLogEvery    = time.Second
)

// Handshake runs the handshake of one accepted connection (setting and
// enforcing its own deadline) and returns the connection to hand to Accept.
// On error the Listener closes raw; Handshake need not.
type Handshake func(raw net.Conn) (net.Conn, error)

// Config bounds the handshakes of one Listener. Zero fields take the defaults.
type Config struct {
	// Max is the number of connections in handshake at once (default 256); at
	// the cap the least advanced, oldest one is closed for a new one that has
	// got further or once it is older than IdleTimeout/4, else the new one is
	// refused (see victim).
	Max int
	// IdleTimeout closes a connection that has not sent its greeting (Greeting
	// bytes) by then (default 1 s). On a TCP listener a connection that has sent
	// nothing is not accepted from the kernel before it either (TCP_DEFER_ACCEPT).
	IdleTimeout time.Duration
	// Greeting is the length of the greeting a client sends at once (ZMTP: 64
	// bytes); default 1, i.e. any byte. It ranks connections for eviction:
	// silent, then part of a greeting, then greeted.
	Greeting int
	// Logger receives one rate-limited Warn per failed handshake (nil: discard).
	Logger *slog.Logger
	// LogEvery is the least interval between two such lines (default 1 s).
	LogEvery time.Duration
	// Name prefixes the log lines, e.g. "curve" or "wire".
	Name string
	// OnFail, if set, is called once per failed handshake (for counters).
	OnFail func(error)
}

// Stats counts what a Listener did with the connections it accepted.
type Stats struct {
	Admitted uint64 // connections accepted from the network
	Failed   uint64 // handshakes that failed (their connections closed)
	Evicted  uint64 // of Failed: closed to make room at the cap
	Refused  uint64 // of Failed: new connections closed at the cap (no room made)
	Idle     uint64 // of Failed: closed because they sent no greeting within IdleTimeout
}

// ErrEvicted, ErrRefused and ErrIdle are the causes given to OnFail and the log for
// connections the Listener closed itself.
var (
	ErrEvicted = errors.New("admit: closed to make room for a new connection (too many handshakes)")
	ErrRefused = errors.New("admit: too many handshakes, none behind this connection to close for it")
	ErrIdle    = errors.New("admit: peer sent no greeting in time")
)

// Listener is a net.Listener whose Accept returns handshaken connections.
type Listener struct {
	ln    net.Listener
	cfg   Config
	hs    Handshake
	warn  *Limiter
	ready chan net.Conn
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	probation time.Duration // see admit

	admitted, failed, evicted, refused, idle atomic.Uint64

	mu      sync.Mutex
	pending *list.List // of *Conn in handshake, oldest first
}

// Listen starts the accept goroutine on ln.
func Listen(ln net.Listener, cfg Config, hs Handshake) *Listener {
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Greeting <= 0 {
		cfg.Greeting = 1
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Listener{ln: ln, cfg: cfg, hs: hs, warn: NewLimiter(cfg.Logger, cfg.LogEvery),
		ready: make(chan net.Conn), quit: make(chan struct{}), pending: list.New(),
		probation: cfg.IdleTimeout / 4}
	if err := deferAccept(ln, cfg.IdleTimeout); err != nil {
		cfg.Logger.Debug(cfg.Name+": TCP_DEFER_ACCEPT not set", "err", err)
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Conn is an accepted connection as Handshake sees it: it counts the bytes
// the peer has sent, for the idle timeout and the eviction order.
type Conn struct {
	net.Conn
	read     atomic.Int64          // bytes read through Read
	peeked   atomic.Int64          // bytes known to have arrived at the last peek
	reason   atomic.Pointer[error] // why the Listener closed it, if it did
	reported atomic.Bool           // its failure has been counted
	at       time.Time             // accepted
	elem     *list.Element
	timer    *time.Timer
}

// Read reads from the connection and counts the bytes the peer sent.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Add(int64(n))
	}
	return n, err
}

// sent is the number of bytes the peer is known to have sent.
func (c *Conn) sent() int64 { return max(c.read.Load(), c.peeked.Load()) }

// Stages of a connection in handshake, lowest evicted first.
const (
	silent   = iota // nothing received
	greeting        // part of its greeting
	greeted         // its whole greeting: a client, most likely
)

func (l *Listener) stage(c *Conn) int {
	switch n := c.sent(); {
	case n == 0:
		return silent
	case n < int64(l.cfg.Greeting):
		return greeting
	default:
		return greeted
	}
}

// kill closes c for reason, counted before the peer can see the close.
// On TCP the close is a reset: no TIME_WAIT socket is left behind for each
// connection of a peer that opens them as fast as they are closed.
func (l *Listener) kill(c *Conn, reason error) {
	c.reason.CompareAndSwap(nil, &reason)
	l.report(c, reason)
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Conn.Close()
}

// report counts c's failure once and tells OnFail.
func (l *Listener) report(c *Conn, err error) {
	if c.reported.Swap(true) {
		return
	}
	l.failed.Add(1)
	if l.cfg.OnFail != nil {
		l.cfg.OnFail(err)
	}
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if l.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.warn.Log(slog.LevelWarn, l.cfg.Name+": accept failed", "err", err)
			select { // e.g. too many open files: do not spin
			case <-l.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		l.admitted.Add(1)
		c := &Conn{Conn: raw, at: time.Now()}
		c.peek()
		if !l.admit(c) {
			if l.closing() {
				return
			}
			continue
		}
		go l.handshake(c)
	}
}

func (l *Listener) closing() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

// admit adds c to the pending list (false after Close, or when c is refused
// at the cap, then closed and counted). At the cap, one connection in
// handshake is closed for c (see victim), or c is refused.
func (l *Listener) admit(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing() {
		_ = c.Conn.Close()
		return false
	}
	if l.pending.Len() >= l.cfg.Max {
		v := l.victim(c)
		if v == nil {
			l.refused.Add(1)
			l.kill(c, ErrRefused)
			return false
		}
		l.pending.Remove(v.elem)
		v.elem = nil
		l.evicted.Add(1)
		l.kill(v, ErrEvicted)
	}
	c.elem = l.pending.PushBack(c)
	c.timer = time.AfterFunc(l.cfg.IdleTimeout, func() {
		if l.stage(c) != greeted {
			l.idle.Add(1)
			l.kill(c, ErrIdle)
		}
	})
	l.wg.Add(1)
	return true
}

// peek notes the bytes that have arrived on c and that its goroutine has not
// read yet (it may not have run since the accept).
func (c *Conn) peek() {
	if n, err := pending(c.Conn); err == nil && n > 0 {
		c.peeked.Store(max(c.peeked.Load(), c.read.Load()+int64(n)))
	}
}

// victim returns the connection in handshake to close for c, or nil if c is
// to be refused. It is the one that has got least far, the oldest of those:
// silent before part of a greeting before greeted; it is closed for c if c has
// got further, or if it has been in handshake for the probation period (a
// client is done long before). Closing one that has got as far as c and is
// younger would only trade one for the other. The bytes a candidate has
// received but not read yet count (they are peeked), so a client whose
// greeting is waiting to be read is not taken for a silent one. Called with
// l.mu held and the pending list not empty.
func (l *Listener) victim(c *Conn) *Conn {
	for range maxPeeks {
		v := l.lowest()
		was := l.stage(v)
		if was >= l.stage(c) && c.at.Sub(v.at) < l.probation {
			return nil // peeking could only move v further up
		}
		v.peek()
		if l.stage(v) == was {
			return v
		}
	}
	return nil
}

// maxPeeks bounds the candidates victim peeks at (a syscall each) for one new
// connection; after that (all of them had moved up) c is refused.
const maxPeeks = 8

// lowest returns the oldest connection of the lowest stage. Called with l.mu
// held and the pending list not empty.
func (l *Listener) lowest() *Conn {
	var best *Conn
	bestStage := greeted + 1
	for e := l.pending.Front(); e != nil; e = e.Next() {
		c := e.Value.(*Conn)
		if s := l.stage(c); s < bestStage {
			best, bestStage = c, s
			if s == silent {
				break
			}
		}
	}
	return best
}

func (l *Listener) done(c *Conn) {
	c.timer.Stop()
	l.mu.Lock()
	if c.elem != nil {
		l.pending.Remove(c.elem)
		c.elem = nil
	}
	l.mu.Unlock()
}

func (l *Listener) handshake(c *Conn) {
	defer l.wg.Done()
	conn, err := l.hs(c)
	l.done(c)
	if err != nil {
		l.fail(c, err)
		return
	}
	select {
	case l.ready <- conn:
	case <-l.quit:
		_ = conn.Close()
		_ = c.Conn.Close()
	}
}

// fail reports a failed handshake (unless the Listener is closing: then it is
// not the peer's doing) and closes its connection.
func (l *Listener) fail(c *Conn, err error) {
	if l.closing() {
		_ = c.Conn.Close()
		return
	}
	if r := c.reason.Load(); r != nil {
		err = errors.Join(*r, err)
	}
	l.report(c, err)
	_ = c.Conn.Close()
	l.warn.Log(slog.LevelWarn, l.cfg.Name+": handshake failed, connection closed", "peer", c.RemoteAddr().String(), "err", err)
}

// Accept returns the next connection whose handshake succeeded.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.quit:
		return nil, &net.OpError{Op: "accept", Net: l.ln.Addr().Network(), Addr: l.ln.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting, closes every connection still in handshake or not yet
// accepted and waits for the Listener's goroutines. Idempotent.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.quit)
		for e := l.pending.Front(); e != nil; e = e.Next() {
			_ = e.Value.(*Conn).Conn.Close()
		}
		l.mu.Unlock()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stats returns the Listener's counters.
func (l *Listener) Stats() Stats {
	return Stats{Admitted: l.admitted.Load(), Failed: l.failed.Load(), Evicted: l.evicted.Load(),
		Refused: l.refused.Load(), Idle: l.idle.Load()}
}
