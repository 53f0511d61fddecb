package noderole_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/suites/support"
)

// A Single_reader producer whose only reader is killed fills the ring and then
// blocks for good. The stall is an event when it starts (after --stall-after,
// default 100 ms), again every --stall-every (default 1 s) while it lasts, and when it ends (here: SIGTERM)
// with its length; exit.stalls counts it. (It used to say nothing: the stall
// event came only after a write succeeded, and exit said stalls 0.)
func TestProducerReportsAStallThatNeverEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Endpoint: "tcp://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ch := support.UniqueName("stall")
	t.Cleanup(func() { _ = os.Remove(chaos.SegmentPath(ch)) })
	common := []string{"--broker", b.Endpoint(), "--broker-key", b.PublicKey(), "--channel", ch, "--shm", "--secret", "0x5eed", "--heartbeat", "500ms"}
	p := startNode(t, "p", append(common, "--role", "producer", "--policy", "single", "--slots", "4", "--rate", "200")...)
	waitFor(t, p, "ready", 30*time.Second, func() bool { return p.Count("ready", nil) >= 1 })
	c := startNode(t, "c", append(common, "--role", "consumer")...)
	waitFor(t, c, "a few reads", 30*time.Second, func() bool { return sum(c, "read", "count") >= 4 })
	// Waiting for the consumer at start may already have been a stall: count from here.
	starts, ongoing := p.Count("backpressure_stall_start", nil), p.Count("backpressure_stall_ongoing", nil)
	c.Kill()
	<-c.Done()

	// Reported while the write still waits (it never ends: the reader is
	// dead), not when it ends.
	waitFor(t, p, "backpressure_stall_start", 10*time.Second, func() bool { return p.Count("backpressure_stall_start", nil) > starts })
	start := lastOf(p, "backpressure_stall_start")
	if w, _ := start.Num("waited_ns"); w < float64(100*time.Millisecond) {
		t.Errorf("start waited_ns %v, want ≥ 100ms", w)
	}
	waitFor(t, p, "two backpressure_stall_ongoing", 6*time.Second, func() bool { return p.Count("backpressure_stall_ongoing", nil) >= ongoing+2 })
	var last float64
	for _, e := range p.Events() {
		if e.Kind == "backpressure_stall_ongoing" && e.T > start.T {
			w, _ := e.Num("waited_ns")
			if w <= last {
				t.Errorf("ongoing waited_ns %v not above the previous %v", w, last)
			}
			last = w
		}
	}

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("producer still running 20 s after SIGTERM")
	}
	end := lastOf(p, "backpressure_stall")
	if end.T < start.T || end.Fields["reported"] != true || end.Fields["written"] != false {
		t.Fatalf("no backpressure_stall ending the reported stall (last: %v)", end)
	}
	if d, _ := end.Num("duration_ns"); d < last {
		t.Errorf("stall length %v below the last ongoing waited_ns %v", d, last)
	}
	ex, ok := p.Find("exit", nil)
	if !ok {
		t.Fatal("no exit event")
	}
	if v, _ := ex.Num("stalls"); v < 1 {
		t.Errorf("exit.stalls %v, want ≥ 1", v)
	}
}

// lastOf returns the last event of kind (zero Event if none).
func lastOf(p *support.Proc, kind string) event.Event {
	var last event.Event
	for _, e := range p.Events() {
		if e.Kind == kind {
			last = e
		}
	}
	return last
}
