package noderole_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/suites/support"
)

func ringBroker(t *testing.T) (*broker.Service, []string, string) {
	t.Helper()
	b, err := broker.Start(context.Background(), broker.Config{Endpoint: "tcp://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ch := support.UniqueName("ring")
	t.Cleanup(func() { _ = os.Remove(chaos.SegmentPath(ch)) })
	return b, []string{"--broker", b.Endpoint(), "--broker-key", b.PublicKey(), "--channel", ch, "--shm", "--secret", "0x5eed", "--heartbeat", "500ms"}, ch
}

// stopNode sends SIGTERM and waits for the exit.
func stopNode(t *testing.T, p *support.Proc, within time.Duration) event.Event {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(within):
		t.Fatalf("%s still running %v after SIGTERM", p.Name, within)
	}
	ex, ok := p.Find("exit", nil)
	if !ok {
		t.Fatalf("%s: no exit event", p.Name)
	}
	return ex
}

// A producer whose Single_reader ring was scribbled (read_index ahead of
// write_index) says so: ring_error with the cause at once, then again while
// it lasts (ongoing), beside the stall events; it keeps running and stops on
// SIGTERM. (It used to fail the write and exit, or wait without a word.)
func TestNodeProducerReportsCorruptRing(t *testing.T) {
	_, common, ch := ringBroker(t)
	p := startNode(t, "p", append(common, "--role", "producer", "--policy", "single", "--slots", "4", "--rate", "200")...)
	waitFor(t, p, "stall on the full ring", 30*time.Second, func() bool { return p.Count("backpressure_stall_start", nil) >= 1 })
	if _, err := chaos.CorruptControl(ch, chaos.TargetIndices); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "ring_error", 10*time.Second, func() bool { return p.Count("ring_error", nil) >= 1 })
	first := lastOf(p, "ring_error")
	if !strings.Contains(first.Str("cause"), "read_index") || first.Fields["ongoing"] != false {
		t.Fatalf("first ring_error %v: want the read_index cause, not ongoing", first)
	}
	waitFor(t, p, "ring_error reminder", 10*time.Second, func() bool {
		return p.Count("ring_error", func(e event.Event) bool { return e.Fields["ongoing"] == true }) >= 1
	})
	if n := p.Count("ring_error", func(e event.Event) bool { return e.Fields["ongoing"] == false }); n != 1 {
		t.Errorf("%d first ring_error events for one cause, want 1", n)
	}
	ex := stopNode(t, p, 10*time.Second)
	if code, _ := ex.Num("code"); code != 0 || ex.Str("reason") != "signal" {
		t.Fatalf("exit %v, want code 0 on signal", ex)
	}
}

// A consumer whose heartbeat entry was taken over (its id overwritten with a
// dead identity) replaces its Reader (ring_reattached) and goes on reading,
// without an error, a gap beyond the ring or a reorder.
func TestNodeConsumerReattachesAfterEntryLost(t *testing.T) {
	_, common, ch := ringBroker(t)
	p := startNode(t, "p", append(common, "--role", "producer", "--policy", "latest", "--rate", "200")...)
	waitFor(t, p, "ready", 30*time.Second, func() bool { return p.Count("ready", nil) >= 1 })
	c := startNode(t, "c", append(common, "--role", "consumer")...)
	waitFor(t, c, "a few reads", 30*time.Second, func() bool { return sum(c, "read", "count") >= 4 })
	if _, err := chaos.CorruptControl(ch, chaos.TargetHeartbeats); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "ring_reattached", 10*time.Second, func() bool { return c.Count("ring_reattached", nil) >= 1 })
	before := sum(c, "read", "count")
	waitFor(t, c, "reads after the reattach", 10*time.Second, func() bool { return sum(c, "read", "count") >= before+20 })
	if r := lastOf(c, "ring_reattached"); r.Fields["reattached"] != float64(1) {
		t.Errorf("ring_reattached %v, want reattached 1", r)
	}
	ex := stopNode(t, c, 10*time.Second)
	if code, _ := ex.Num("code"); code != 0 || c.Count("error", nil) != 0 || c.Count("reorder", nil) != 0 {
		t.Fatalf("consumer exit %v, %d error and %d reorder events; want code 0 and none", ex, c.Count("error", nil), c.Count("reorder", nil))
	}
	stopNode(t, p, 10*time.Second)
}
