package admit

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen starts a Listener on loopback whose handshake reads need bytes and
// reports each first byte read on heard.
func listen(t *testing.T, cfg Config, need int, heard chan<- struct{}) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, cfg, func(c net.Conn) (net.Conn, error) {
		b := make([]byte, need)
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return nil, err
		}
		if heard != nil {
			heard <- struct{}{}
		}
		if _, err := io.ReadFull(c, b[1:]); err != nil {
			return nil, err
		}
		return c, nil
	})
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedByPeer reports whether c was closed by the listener (not a timeout).
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestCapOrder: at the cap, a new connection that has got no further than the
// least advanced one in handshake is refused; one that has got further (its
// whole greeting) has the least advanced, oldest one closed for it.
func TestCapOrder(t *testing.T) {
	l := listen(t, Config{Max: 2, IdleTimeout: time.Minute, Greeting: 4}, 4, nil)
	p1, p2 := dial(t, l), dial(t, l)
	p1.Write([]byte{1})
	waitFor(t, "p1 admitted", func() bool { return l.Stats().Admitted == 1 })
	p2.Write([]byte{1, 2})
	waitFor(t, "p2 admitted", func() bool { return l.Stats().Admitted == 2 })
	r := dial(t, l)
	r.Write([]byte{1})
	if !closedByPeer(r) {
		t.Fatal("a third connection with part of its greeting was not refused")
	}
	if s := l.Stats(); s.Refused != 1 || s.Evicted != 0 {
		t.Fatalf("stats %+v", s)
	}
	g := dial(t, l)
	g.Write([]byte{1, 2, 3, 4})
	if !closedByPeer(p1) {
		t.Fatal("the oldest, least advanced connection was not closed for a greeted one")
	}
	if s := l.Stats(); s.Evicted != 1 || s.Failed != 2 {
		t.Fatalf("stats %+v", s)
	}
	p2.Write([]byte{3, 4})
	for range 2 { // g and p2, in either order
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
}

// TestNewClientAdmittedUnderChurn: the cap is held by connections that sent
// part of a greeting, and an attacker re-opens every one that is closed at
// once, while the listener's handshakes have not run yet (held back, as on a
// loaded machine). A new client that sent its whole greeting is admitted and
// kept: its handshake completes before any idle connection timed out. (Before,
// it was taken for silent, its greeting unread, and closed a few connections
// later.)
func TestNewClientAdmittedUnderChurn(t *testing.T) {
	const max, greeting = 4, 8
	gate := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, Config{Max: max, IdleTimeout: 5 * time.Second, Greeting: greeting}, func(c net.Conn) (net.Conn, error) {
		<-gate
		if _, err := io.ReadFull(c, make([]byte, greeting)); err != nil {
			return nil, err
		}
		return c, nil
	})
	t.Cleanup(func() { l.Close() })
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before Close, which waits for the handshakes
	for range max {
		c := dial(t, l)
		c.Write([]byte{0xff})
	}
	waitFor(t, "the cap filled", func() bool { return l.Stats().Admitted == max })
	stop := attack(t, l.Addr().String(), 2*max)
	base := l.Stats()
	client := dial(t, l)
	client.Write(make([]byte, greeting))
	waitFor(t, "the attacker's connections refused or evicted", func() bool {
		s := l.Stats()
		return s.Refused+s.Evicted >= base.Refused+base.Evicted+8*max
	})
	release()
	accepted := make(chan net.Conn, 1)
	go func() {
		if a, err := l.Accept(); err == nil {
			accepted <- a
		}
	}()
	var a net.Conn
	waitFor(t, "the new client admitted or an idle connection timed out", func() bool {
		select {
		case a = <-accepted:
			return true
		default:
			return l.Stats().Idle > 0
		}
	})
	if a == nil {
		t.Fatalf("an idle connection timed out before the new client was admitted: %+v", l.Stats())
	}
	defer a.Close()
	if a.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("admitted %v, not the new client %v", a.RemoteAddr(), client.LocalAddr())
	}
	stop()
}

// attack keeps n connections to addr open, each sending one byte of a
// greeting, and opens another at once when one is closed; stop ends it.
func attack(t *testing.T, addr string, n int) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return // the listener is gone
				}
				mu.Lock()
				select {
				case <-quit:
					mu.Unlock()
					c.Close()
					return
				default:
				}
				open[c] = true
				mu.Unlock()
				c.Write([]byte{0xff})
				_, _ = io.Copy(io.Discard, c) // until closed
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				c.Close()
			}
		}()
	}
	stop = func() {
		mu.Lock()
		select {
		case <-quit:
		default:
			close(quit)
		}
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// TestSilentClosedAfterIdleTimeout: a connection that sends nothing is closed
// after IdleTimeout, and counted.
func TestSilentClosedAfterIdleTimeout(t *testing.T) {
	l := listen(t, Config{IdleTimeout: 50 * time.Millisecond}, 1, nil)
	c := dial(t, l)
	if !closedByPeer(c) {
		t.Fatal("silent connection still open")
	}
	waitFor(t, "idle counted", func() bool { s := l.Stats(); return s.Idle == 1 && s.Failed == 1 })
}

// TestFailedHandshakeIsClosed: a Handshake that fails without closing its
// connection still gets it closed, and reported once.
func TestFailedHandshakeIsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var fails []error
	boom := errors.New("boom")
	l := Listen(ln, Config{OnFail: func(err error) { mu.Lock(); fails = append(fails, err); mu.Unlock() }},
		func(c net.Conn) (net.Conn, error) { return nil, boom })
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedByPeer(c) {
		t.Fatal("connection of a failed handshake left open")
	}
	waitFor(t, "failure reported", func() bool { mu.Lock(); defer mu.Unlock(); return len(fails) == 1 })
	if !errors.Is(fails[0], boom) {
		t.Fatalf("reported %v", fails[0])
	}
}

// TestCloseStopsHandshakes: Close closes connections in handshake and returns
// after their goroutines (goleak checks); Accept then fails.
func TestCloseStopsHandshakes(t *testing.T) {
	l := listen(t, Config{}, 2, nil)
	c := dial(t, l)
	c.Write([]byte{1})
	waitFor(t, "admitted", func() bool { return l.Stats().Admitted == 1 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !closedByPeer(c) {
		t.Fatal("connection in handshake left open by Close")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestLimiter: one line per interval at the given level, the rest at Debug,
// and the next line carries the count of those.
func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	lim := NewLimiter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), 50*time.Millisecond)
	for range 10 {
		lim.Log(slog.LevelWarn, "failed")
	}
	if w := strings.Count(buf.String(), "level=WARN"); w != 1 {
		t.Fatalf("%d Warn lines in a burst:\n%s", w, buf.String())
	}
	if d := strings.Count(buf.String(), "level=DEBUG"); d != 9 {
		t.Fatalf("%d Debug lines, want 9", d)
	}
	waitFor(t, "next Warn", func() bool { return lim.Log(slog.LevelWarn, "failed") })
	if !strings.Contains(buf.String(), "suppressed=") {
		t.Fatalf("no suppressed count:\n%s", buf.String())
	}
}
