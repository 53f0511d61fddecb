package noderole_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/cmd/internal/noderole"
	"github.com/pylabhub/plh/cmd/internal/shutdown"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/wire/wiretest"
	"github.com/pylabhub/plh/suites/support"
)

// childEnv makes the test binary run as plh-node (real processes, real signals).
const childEnv = "PLH_NODEROLE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := shutdown.OnSignal(context.Background(), os.Exit)
		code := noderole.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...)
}

func startNode(t *testing.T, name string, args ...string) *support.Proc {
	t.Helper()
	p, err := support.Start(name, nil, []string{childEnv + "=1"}, os.Args[0], append([]string{"--name", name}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, p *support.Proc, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not seen within %v; stderr ends:\n%s", p.Name, what, d, tail(p.Stderr()))
		}
		select {
		case <-p.Done():
			if !cond() {
				t.Fatalf("%s exited before %s; stderr ends:\n%s", p.Name, what, tail(p.Stderr()))
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(s string) string { return s[max(0, len(s)-2000):] }

func sum(p *support.Proc, kind, field string) float64 {
	var s float64
	for _, e := range p.Events() {
		if e.Kind == kind {
			v, _ := e.Num(field)
			s += v
		}
	}
	return s
}

func typed(typ string) func(event.Event) bool {
	return func(e event.Event) bool { return e.Str("type") == typ }
}

// A Single_reader consumer whose next slots stay corrupted reports each damaged
// slot once (event + CHECKSUM_ERROR_REPORT, seen by the producer as
// CHANNEL_EVENT_NOTIFY), moves past them, reads what follows, and stops promptly
// with an exit event on SIGTERM. (It used to re-read the first damaged slot
// forever, ~60,000 events per second, and ignore SIGTERM.)
func TestConsumerPassesOverDamagedSlotsAndStopsOnSignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Endpoint: "tcp://127.0.0.1:0", Checksum: broker.ChecksumNotifyOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ch := support.UniqueName("damaged")
	t.Cleanup(func() { _ = os.Remove(chaos.SegmentPath(ch)) }) // after a failure's SIGKILL
	common := []string{"--broker", b.Endpoint(), "--broker-key", b.PublicKey(), "--channel", ch, "--shm", "--secret", "0x5eed", "--heartbeat", "500ms"}

	p := startNode(t, "p", append(common, "--role", "producer", "--policy", "single", "--slots", "4",
		"--count", "8", "--linger", "1m")...)
	// No consumer yet: the producer fills the ring (ids 0..3) and waits for room.
	waitFor(t, p, "4 slots written", 30*time.Second, func() bool { return sum(p, "written", "count") >= 4 })
	desc, err := chaos.CorruptSlot(chaos.SegmentPath(ch), "all")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(desc)

	c := startNode(t, "c", append(common, "--role", "consumer")...)
	waitFor(t, c, "the 4 slots after the damaged ones", 30*time.Second, func() bool { return sum(c, "read", "count") >= 4 })
	waitFor(t, p, "4 CHANNEL_EVENT_NOTIFY", 30*time.Second, func() bool {
		return p.Count("notification", typed("CHANNEL_EVENT_NOTIFY")) >= 4
	})
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("consumer still running 20 s after SIGTERM (%d checksum_error events)",
			c.Count("checksum_error", nil))
	}
	ex, ok := c.Find("exit", nil)
	if !ok {
		t.Fatalf("no exit event; stderr:\n%s", c.Stderr())
	}
	if ex.Str("reason") != "signal" {
		t.Errorf("exit reason %q, want signal", ex.Str("reason"))
	}
	seen := map[float64]int{}
	for _, e := range c.Events() {
		if e.Kind == "checksum_error" {
			id, _ := e.Num("slot_id")
			seen[id]++
		}
	}
	if fmt.Sprint(seen) != "map[0:1 1:1 2:1 3:1]" {
		t.Errorf("checksum_error per slot id %v, want each of 0..3 once", seen)
	}
	if v, _ := ex.Num("checksum_errors"); v != 4 {
		t.Errorf("exit.checksum_errors %v, want 4", v)
	}
	if v, _ := ex.Num("read"); v != 4 {
		t.Errorf("exit.read %v, want 4 (ids 4..7)", v)
	}
	if n := p.Count("notification", typed("CHANNEL_EVENT_NOTIFY")); n != 4 {
		t.Errorf("producer saw %d CHANNEL_EVENT_NOTIFY, want 4 (one per damaged slot)", n)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("producer still running 20 s after SIGTERM")
	}
}
