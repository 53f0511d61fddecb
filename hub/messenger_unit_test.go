package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/wire"
)

func TestPendingTableMatchesByID(t *testing.T) {
	p := newPendingTable()
	id1, ch1 := p.add()
	id2, ch2 := p.add()
	if id1 == id2 {
		t.Fatalf("ids not unique: %q", id1)
	}
	// Replies arrive out of order; each reaches its own caller.
	if !p.resolve(id2, reply{typ: "B"}) || !p.resolve(id1, reply{typ: "A"}) {
		t.Fatal("resolve of a pending id failed")
	}
	if r := <-ch1; r.typ != "A" {
		t.Fatalf("caller 1 got %q", r.typ)
	}
	if r := <-ch2; r.typ != "B" {
		t.Fatalf("caller 2 got %q", r.typ)
	}
	// A second reply for the same id, and a reply for an id given up, are stale.
	if p.resolve(id1, reply{typ: "again"}) {
		t.Fatal("duplicate reply was delivered")
	}
	id3, _ := p.add()
	p.remove(id3)
	if p.resolve(id3, reply{typ: "late"}) {
		t.Fatal("reply after remove was delivered")
	}
	if p.len() != 0 {
		t.Fatalf("table not empty: %d", p.len())
	}
}

func TestPendingTableFailAll(t *testing.T) {
	p := newPendingTable()
	var chs []chan reply
	for range 5 {
		_, ch := p.add()
		chs = append(chs, ch)
	}
	cause := errors.New("gone")
	if n := p.failAll(cause); n != 5 {
		t.Fatalf("failAll ended %d waits, want 5", n)
	}
	for _, ch := range chs {
		if r := <-ch; !errors.Is(r.err, cause) {
			t.Fatalf("got %v", r.err)
		}
	}
}

func TestPendingIDsUniqueAcrossTables(t *testing.T) {
	a, b := newPendingTable(), newPendingTable()
	if a.newID() == b.newID() {
		t.Fatal("two Messengers produced the same correlation id")
	}
}

func TestSubListManyPerChannel(t *testing.T) {
	var s subList[func() string]
	un1 := s.add("ch", func() string { return "one" })
	s.add("ch", func() string { return "two" })
	s.add("other", func() string { return "x" })
	got := ""
	for _, fn := range s.get("ch") {
		got += fn()
	}
	if got != "onetwo" {
		t.Fatalf("got %q", got)
	}
	un1()
	un1() // idempotent
	if n := s.count("ch"); n != 1 {
		t.Fatalf("count after unsubscribe = %d", n)
	}
	if fns := s.get("ch"); fns[0]() != "two" {
		t.Fatal("wrong callback removed")
	}
}

func TestDispatcherOrderPanicAndSlowCallback(t *testing.T) {
	d := newDispatcher(slog.New(slog.DiscardHandler), 100)
	defer d.close()
	release := make(chan struct{})
	var mu sync.Mutex
	var order []int
	d.submit("slow", func() { <-release })
	d.submit("panic", func() { panic("boom") })
	for i := range 3 {
		// Submitting never waits for the slow callback.
		if !d.submit("n", func() { mu.Lock(); order = append(order, i); mu.Unlock() }) {
			t.Fatal("submit refused")
		}
	}
	close(release)
	done := make(chan struct{})
	d.submit("done", func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("dispatcher stuck")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[0 1 2]" {
		t.Fatalf("order %v", order)
	}
	if d.panics.Load() != 1 {
		t.Fatalf("panics = %d", d.panics.Load())
	}
}

func TestDispatcherBoundedQueue(t *testing.T) {
	d := newDispatcher(slog.New(slog.DiscardHandler), 2)
	release := make(chan struct{})
	started := make(chan struct{})
	d.submit("block", func() { close(started); <-release })
	<-started
	d.submit("a", func() {})
	d.submit("b", func() {})
	if d.submit("c", func() {}) {
		t.Fatal("submit beyond the bound was accepted")
	}
	if d.dropped.Load() != 1 {
		t.Fatalf("dropped = %d", d.dropped.Load())
	}
	close(release)
	d.close()
	if d.submit("after", func() {}) {
		t.Fatal("submit after close accepted")
	}
}

// Behaviours §1: without a broker every call fails fast with ErrNotConnected.
func TestNeverConnectedFailsFast(t *testing.T) {
	m, err := NewMessenger(MessengerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background() // no deadline: a hang would show as a test timeout
	start := time.Now()
	calls := map[string]error{
		"register":     m.RegisterProducer(ctx, "plh_c", ProducerInfo{}),
		"unregister":   m.UnregisterChannel(ctx, "plh_c"),
		"consumer":     m.RegisterConsumer(ctx, "plh_c"),
		"deconsumer":   m.DeregisterConsumer(ctx, "plh_c"),
		"checksum":     m.ReportChecksumError("plh_c", 1, "x"),
		"close":        m.CloseChannel(ctx, "plh_c"),
		"disconnect":   m.Disconnect(),
		"disconnect 2": m.Disconnect(),
	}
	_, calls["discover"] = m.Discover(ctx, "plh_c")
	_, calls["list"] = m.ListChannels(ctx)
	_, calls["ping"] = m.Ping(ctx)
	for name, err := range calls {
		if name == "disconnect" || name == "disconnect 2" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s: got %v, want ErrNotConnected", name, err)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("calls took %v, want fast failure", el)
	}
}

func TestConnectWithoutBrokerFails(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "tcp://" + l.Addr().String()
	l.Close()
	m, _ := NewMessenger(MessengerConfig{})
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := m.Connect(ctx, ep, ""); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("connect: %v", err)
	}
	if _, err := m.Discover(context.Background(), "plh_x"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("discover after failed connect: %v", err)
	}
}

func TestConnectValidates(t *testing.T) {
	m, _ := NewMessenger(MessengerConfig{})
	defer m.Close()
	ctx := context.Background()
	for _, c := range []struct{ ep, key string }{{"", ""}, {"tcp://127.0.0.1:1", "short"}, {"nonsense", ""}} {
		if err := m.Connect(ctx, c.ep, c.key); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Connect(%q, %q) = %v, want ErrInvalidArgument", c.ep, c.key, err)
		}
	}
	if err := m.RegisterProducer(ctx, "", ProducerInfo{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty channel: %v", err)
	}
}

func TestCloseIdempotentAndNilSafe(t *testing.T) {
	var nilM *Messenger
	if err := nilM.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := NewMessenger(MessengerConfig{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Close() }()
	}
	wg.Wait()
	if err := m.Connect(context.Background(), "tcp://127.0.0.1:1", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("connect after close: %v", err)
	}
	if _, err := m.Discover(context.Background(), "plh_x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("discover after close: %v", err)
	}
}

func TestBrokerErrorUnwrapsToSentinel(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &BrokerError{Op: "REG_REQ", Channel: "c", Code: "SCHEMA_MISMATCH", Message: "differs"})
	if !errors.Is(err, ErrSchemaMismatch) || errors.Is(err, ErrChannelNotFound) {
		t.Fatalf("errors.Is mapping wrong for %v", err)
	}
}

// Close interrupts a Connect that waits for a peer that never speaks ZMTP.
func TestCloseInterruptsConnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	dialed := make(chan struct{}, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // accepted, never answered
			mu.Unlock()
			select {
			case dialed <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	// wire's Close waits for a dial stuck in its handshake: keep that short.
	m, _ := NewMessenger(MessengerConfig{Wire: wire.Config{HandshakeTimeout: 500 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- m.Connect(ctx, "tcp://"+l.Addr().String(), "") }()
	select {
	case <-dialed: // Connect is waiting for the handshake
	case <-time.After(20 * time.Second):
		t.Fatal("Connect never dialed")
	}
	closed := make(chan struct{})
	go func() { _ = m.Close(); close(closed) }()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotConnected) {
			t.Fatalf("connect: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Connect not interrupted by Close")
	}
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
}

// The broker-lost threshold follows the request timeout, not the heartbeat
// (issue 11 item 5): a fast heartbeat does not make a late reply a loss.
func TestLostAfterDerivedFromTimeouts(t *testing.T) {
	for _, tc := range []struct {
		cfg  MessengerConfig
		want time.Duration
	}{
		{MessengerConfig{}, 5 * time.Second},
		{MessengerConfig{HeartbeatInterval: 500 * time.Millisecond}, 5 * time.Second},
		{MessengerConfig{HeartbeatInterval: 10 * time.Second}, 20 * time.Second},
		{MessengerConfig{RequestTimeout: 8 * time.Second}, 8 * time.Second},
		{MessengerConfig{LostAfter: time.Second}, time.Second},
	} {
		if got := tc.cfg.withDefaults().LostAfter; got != tc.want {
			t.Errorf("%+v: LostAfter %v, want %v", tc.cfg, got, tc.want)
		}
	}
	host, _ := os.Hostname()
	if got := (MessengerConfig{}).withDefaults().Hostname; got != host {
		t.Errorf("default Hostname %q, want %q", got, host)
	}
}

// Each consumer registration keeps its consumer_id: re-registrations repeat it,
// a deregistration removes one.
func TestOwnedConsumerIDs(t *testing.T) {
	o := newOwnedSet()
	if id := o.removeConsumer("c"); id != "" {
		t.Fatalf("removed %q from nothing", id)
	}
	o.addConsumer("c", "c1")
	o.addConsumer("c", "c2")
	_, cons := o.snapshot()
	if got := cons["c"]; len(got) != 2 || got[0] != "c1" || got[1] != "c2" {
		t.Fatalf("snapshot %v", got)
	}
	if id := o.removeConsumer("c"); id != "c2" {
		t.Fatalf("removed %q, want c2", id)
	}
	if ids := o.consumerIDs("c"); len(ids) != 1 || ids[0] != "c1" {
		t.Fatalf("left %v", ids)
	}
	o.removeConsumer("c")
	if ids := o.consumerIDs("c"); len(ids) != 0 {
		t.Fatalf("left %v", ids)
	}
}

// inFlight never runs more than its window at once and runs everything.
func TestInFlightWindow(t *testing.T) {
	var cur, peak, ran atomic.Int64
	var mu sync.Mutex
	inFlight(500, 8, func() bool { return false }, func(int) {
		n := cur.Add(1)
		mu.Lock()
		peak.Store(max(peak.Load(), n))
		mu.Unlock()
		time.Sleep(time.Millisecond)
		cur.Add(-1)
		ran.Add(1)
	})
	if ran.Load() != 500 || peak.Load() > 8 {
		t.Fatalf("ran %d (want 500), peak %d (want ≤ 8)", ran.Load(), peak.Load())
	}
}
