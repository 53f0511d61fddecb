package hub

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/shm"
)

// Tests of the ring sides against a scribbled control zone (doc.go, "Ring
// faults"): real segments, the scribble written through shm's inspector
// offsets (chaos.CorruptControl or pokeWord).

const ringSecret = 0x5eed

func ringConfig(sync shm.SyncPolicy, cs shm.ChecksumPolicy) *shm.Config {
	return &shm.Config{Secret: ringSecret, PageSize: shm.Page4K, SlotSize: shm.Page4K, Capacity: 4,
		Policy: shm.PolicyRingBuffer, Sync: sync, Checksum: cs}
}

// notices collects a party's OnChannelError notices.
type notices chan ChannelNotice

func (ns notices) callback() func(ChannelNotice) { return func(n ChannelNotice) { ns <- n } }

// next waits for the next notice of event.
func (ns notices) next(t *testing.T, event string, within time.Duration) ChannelNotice {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case n := <-ns:
			if n.Event == event {
				return n
			}
		case <-deadline:
			t.Fatalf("no %s notice within %v", event, within)
		}
	}
}

// pokeWord writes v into control word w (slot or entry i) of segment name, as
// another process of the same user could, and returns the old value.
func pokeWord(t *testing.T, name string, w shm.ControlWord, i int, v uint64) uint64 {
	t.Helper()
	in, err := shm.Inspect(name)
	if err != nil {
		t.Fatal(err)
	}
	off, size, err := in.Offset(w, i)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(in.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var old [8]byte
	if _, err := f.ReadAt(old[:size], off); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, v)[:size], off); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(old[:])
}

// eventually polls cond every 5 ms until it holds or within passes.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeOne(t *testing.T, p *Producer) {
	t.Helper()
	if err := p.SyncedWrite(context.Background(), time.Second, func(tx *WriteTxn) error {
		_, err := tx.Next()
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// A producer's write handler on a Single_reader ring whose read_index was
// scribbled ahead of write_index: every claim fails at once with
// shm.ErrCorrupt. The Producer reports it once (EventRingError), reminds every
// RingErrorEvery while it lasts, backs off in between (the handler runs a few
// times, not thousands), and Close returns promptly.
func TestProducerReportsCorruptRingAndBacksOff(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ns := make(notices, 64)
	p, err := NewProducer(context.Background(), m, ProducerOptions{Channel: chanName("ringp"), NoCurve: true,
		SHM: ringConfig(shm.SingleReader, shm.ChecksumNone), RingErrorEvery: 300 * time.Millisecond,
		Callbacks: ProducerCallbacks{OnChannelError: ns.callback()}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var calls atomic.Int64
	if err := p.SetWriteHandler(func(tx *WriteTxn) error {
		calls.Add(1)
		_, err := tx.Next()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ring full", 5*time.Second, func() bool {
		in, err := shm.Inspect(p.Channel())
		return err == nil && in.WriteIndex == 4
	})
	if _, err := chaos.CorruptControl(p.Channel(), chaos.TargetIndices); err != nil {
		t.Fatal(err)
	}
	first := ns.next(t, EventRingError, 5*time.Second)
	c0 := calls.Load()
	if first.Ring == nil || !errors.Is(first.Ring.Err, shm.ErrCorrupt) || first.Ring.Ongoing || first.Type != "" {
		t.Fatalf("first notice %+v (ring %+v): want a ring_error wrapping shm.ErrCorrupt, not ongoing", first, first.Ring)
	}
	reminder := ns.next(t, EventRingError, 5*time.Second)
	c1 := calls.Load()
	if !reminder.Ring.Ongoing || reminder.Ring.Cause != first.Ring.Cause || reminder.Ring.Count < 1 {
		t.Fatalf("second notice %+v: want a reminder of the same cause", reminder.Ring)
	}
	// 300 ms of backoff from 10 ms doubling is about six transactions; a loop
	// that retried at once would run thousands.
	t.Logf("write handler ran %d times between the notice and its reminder", c1-c0)
	if n := c1 - c0; n > 30 {
		t.Fatalf("write handler ran %d times between the notice and its reminder: the loop spins", n)
	}
	if st := p.RingStats(); st.Faults < uint64(c1-c0) || st.Notices < 2 {
		t.Fatalf("RingStats %+v after %d faulted calls and 2 notices", st, c1-c0)
	}
	rep, err := p.CheckSegment()
	if err != nil || rep.OK() {
		t.Fatalf("CheckSegment on a scribbled ring: %v, %v; want problems", rep, err)
	}
	t0 := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v while the ring was corrupt", d)
	}
	t.Logf("Close took %v while the ring was corrupt", time.Since(t0))
}

// A consumer's read handler on a Single_reader ring whose read_index was
// scribbled ahead: the wait returns shm.ErrCorrupt, the Consumer reports it
// (EventRingError) and backs off; once the word is put back it reads again.
func TestConsumerReportsCorruptRingAndRecovers(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	p, err := NewProducer(context.Background(), m, ProducerOptions{Channel: chanName("ringc"), NoCurve: true,
		SHM: ringConfig(shm.SingleReader, shm.ChecksumEnforced)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ns := make(notices, 64)
	c, err := Connect(context.Background(), m, ConsumerOptions{Channel: p.Channel(), Secret: ringSecret,
		RingErrorEvery: 300 * time.Millisecond, Callbacks: ConsumerCallbacks{OnChannelError: ns.callback()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.HasSHM() {
		t.Fatalf("not attached: %v", c.SHMError())
	}
	var calls atomic.Int64
	read := make(chan uint64, 16)
	if err := c.SetReadHandler(func(tx *ReadTxn) error {
		calls.Add(1)
		s, err := tx.Next()
		if err != nil {
			return err
		}
		read <- s.ID()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	writeOne(t, p)
	if id := <-read; id != 0 {
		t.Fatalf("read id %d, want 0", id)
	}
	eventually(t, "read_index 1", 5*time.Second, func() bool {
		in, err := shm.Inspect(p.Channel())
		return err == nil && in.ReadIndex == 1
	})
	old := pokeWord(t, p.Channel(), shm.WordReadIndex, 0, 100)
	first := ns.next(t, EventRingError, 5*time.Second)
	c0 := calls.Load()
	if !errors.Is(first.Ring.Err, shm.ErrCorrupt) || first.Ring.Ongoing {
		t.Fatalf("first notice %+v", first.Ring)
	}
	ns.next(t, EventRingError, 5*time.Second) // the reminder
	t.Logf("read handler ran %d times between the notice and its reminder", calls.Load()-c0)
	if n := calls.Load() - c0; n > 30 {
		t.Fatalf("read handler ran %d times between the notice and its reminder: the loop spins", n)
	}
	if rep, err := c.CheckSegment(); err != nil || rep.OK() {
		t.Fatalf("CheckSegment on a scribbled ring: %v, %v; want problems", rep, err)
	}
	t0 := time.Now()
	c.Stop() // the read goroutine is pausing or waiting: Stop cuts it short
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Stop took %v while the ring was corrupt", d)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pokeWord(t, p.Channel(), shm.WordReadIndex, 0, old)
	writeOne(t, p)
	select {
	case id := <-read:
		if id != 1 {
			t.Fatalf("read id %d after the repair, want 1", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing read after the word was put back")
	}
	if rep, err := c.CheckSegment(); err != nil || !rep.OK() {
		t.Fatalf("CheckSegment after the repair: %v, %v", rep, err)
	}
}

// A consumer whose heartbeat entry was taken over (its id word overwritten
// with a dead identity) gets shm.ErrEntryLost from its Reader: the Consumer
// replaces the Reader, raises EventRingReattached and goes on reading.
func TestConsumerReattachesAfterEntryLost(t *testing.T) {
	for _, sync := range []shm.SyncPolicy{shm.SyncReader, shm.SingleReader, shm.LatestOnly} {
		t.Run(sync.String(), func(t *testing.T) {
			s := startBroker(t)
			m := newMessenger(t, s)
			p, err := NewProducer(context.Background(), m, ProducerOptions{Channel: chanName("ringe"), NoCurve: true,
				SHM: ringConfig(sync, shm.ChecksumEnforced)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ns := make(notices, 64)
			c, err := Connect(context.Background(), m, ConsumerOptions{Channel: p.Channel(), Secret: ringSecret,
				Callbacks: ConsumerCallbacks{OnChannelError: ns.callback()}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var faults atomic.Int64
			read := make(chan uint64, 16)
			if err := c.SetReadHandler(func(tx *ReadTxn) error {
				s, err := tx.Next()
				if isRingFault(err) {
					faults.Add(1)
				}
				if err != nil {
					return err
				}
				read <- s.ID()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			writeOne(t, p)
			<-read
			if _, err := chaos.CorruptControl(p.Channel(), chaos.TargetHeartbeats); err != nil {
				t.Fatal(err)
			}
			n := ns.next(t, EventRingReattached, 5*time.Second)
			if n.Ring == nil || !errors.Is(n.Ring.Err, shm.ErrEntryLost) || n.Ring.Reattached != 1 {
				t.Fatalf("reattach notice %+v (ring %+v)", n, n.Ring)
			}
			writeOne(t, p)
			select {
			case id := <-read:
				if id != 1 {
					t.Fatalf("read id %d after the reattach, want 1", id)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("nothing read after the reattach")
			}
			if st := c.RingStats(); st.Reattached != 1 || faults.Load() != 0 {
				t.Fatalf("RingStats %+v, %d ring faults seen by the handler; want 1 reattach, none seen", st, faults.Load())
			}
		})
	}
}

// ConsumerOptions.RequireChecksum: a segment whose checksum policy is not the
// one demanded is not attached (SHMError wraps shm.ErrConfigMismatch).
func TestConsumerRequiresChecksumPolicy(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	p, err := NewProducer(context.Background(), m, ProducerOptions{Channel: chanName("ringk"), NoCurve: true,
		SHM: ringConfig(shm.LatestOnly, shm.ChecksumNone)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tc := range []struct {
		want     shm.ChecksumPolicy
		attached bool
	}{{shm.ChecksumEnforced, false}, {shm.ChecksumNone, true}, {shm.ChecksumDefault, true}} {
		c, err := Connect(context.Background(), m, ConsumerOptions{Channel: p.Channel(), Secret: ringSecret, RequireChecksum: tc.want})
		if err != nil {
			t.Fatal(err)
		}
		if c.HasSHM() != tc.attached || (!tc.attached && !errors.Is(c.SHMError(), shm.ErrConfigMismatch)) {
			t.Errorf("RequireChecksum %v on a %v segment: attached %v (%v), want %v", tc.want, shm.ChecksumNone,
				c.HasSHM(), c.SHMError(), tc.attached)
		}
		c.Close()
	}
	c, err := Connect(context.Background(), m, ConsumerOptions{Channel: p.Channel()}) // no secret: not attached
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CheckSegment(); !errors.Is(err, ErrNoSHM) {
		t.Fatalf("CheckSegment without shared memory: %v, want ErrNoSHM", err)
	}
}
