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

// TestEvictsOldestSilentAtCap: at the cap, the oldest connection that has
// sent nothing is closed for the new one, not an older one that is talking.
func TestEvictsOldestSilentAtCap(t *testing.T) {
	heard := make(chan struct{}, 4)
	l := listen(t, Config{Max: 2, IdleTimeout: time.Minute}, 2, heard)
	talking := dial(t, l)
	talking.Write([]byte{1})
	<-heard
	silent := dial(t, l)
	waitFor(t, "two admitted", func() bool { return l.Stats().Admitted == 2 })
	newer := dial(t, l)
	if !closedByPeer(silent) {
		t.Fatal("silent connection not evicted")
	}
	if s := l.Stats(); s.Evicted != 1 {
		t.Fatalf("stats %+v", s)
	}
	for _, c := range []net.Conn{talking, newer} {
		c.Write([]byte{1, 2})
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
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
