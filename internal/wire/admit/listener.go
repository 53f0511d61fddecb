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
	// the cap the oldest silent one (else the oldest) is closed for a new one.
	Max int
	// IdleTimeout closes a connection that has sent nothing by then (default 1 s).
	IdleTimeout time.Duration
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
	Idle     uint64 // of Failed: closed because they sent nothing within IdleTimeout
}

// ErrEvicted and ErrIdle are the causes given to OnFail and the log for
// connections the Listener closed itself.
var (
	ErrEvicted = errors.New("admit: closed to make room for a new connection (too many handshakes)")
	ErrIdle    = errors.New("admit: peer sent nothing")
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

	admitted, failed, evicted, idle atomic.Uint64

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
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Listener{ln: ln, cfg: cfg, hs: hs, warn: NewLimiter(cfg.Logger, cfg.LogEvery),
		ready: make(chan net.Conn), quit: make(chan struct{}), pending: list.New()}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Conn is an accepted connection as Handshake sees it: it notes whether the
// peer has sent anything, for the idle timeout and the eviction order.
type Conn struct {
	net.Conn
	heard    atomic.Bool
	reason   atomic.Pointer[error] // why the Listener closed it, if it did
	reported atomic.Bool           // its failure has been counted
	elem     *list.Element
	timer    *time.Timer
}

// Read reads from the connection and notes that the peer spoke.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
	}
	return n, err
}

// kill closes c for reason, counted before the peer can see the close.
func (l *Listener) kill(c *Conn, reason error) {
	c.reason.CompareAndSwap(nil, &reason)
	l.report(c, reason)
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
		c := &Conn{Conn: raw}
		if !l.admit(c) {
			_ = raw.Close()
			return
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

// admit adds c to the pending list, evicting at the cap; false after Close.
func (l *Listener) admit(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing() {
		return false
	}
	if l.pending.Len() >= l.cfg.Max {
		victim := l.pending.Front()
		for e := victim; e != nil; e = e.Next() {
			if !e.Value.(*Conn).heard.Load() {
				victim = e
				break
			}
		}
		v := victim.Value.(*Conn)
		l.pending.Remove(victim)
		v.elem = nil
		l.evicted.Add(1)
		l.kill(v, ErrEvicted)
	}
	c.elem = l.pending.PushBack(c)
	c.timer = time.AfterFunc(l.cfg.IdleTimeout, func() {
		if !c.heard.Load() {
			l.idle.Add(1)
			l.kill(c, ErrIdle)
		}
	})
	l.wg.Add(1)
	return true
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
	return Stats{Admitted: l.admitted.Load(), Failed: l.failed.Load(), Evicted: l.evicted.Load(), Idle: l.idle.Load()}
}
