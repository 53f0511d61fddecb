// Command worker is the shm suite's helper process: it produces, consumes, holds a
// slot or a write lock, or attaches, as the spec under test needs, and reports what
// happened as JSON-lines events on stdout (internal/event).
//
//	worker produce  -name N [-create] -sync latest|single|sync -cap 32 -count 500 ...
//	worker consume  -name N -until 499 [-ordered] [-max-sleep 10ms] ...
//	worker hold     -name N            (consumer: acquire one slot, report, wait to be killed)
//	worker lock     -name N -writes K  (writer: write K slots, take a write lock, wait)
//	worker attach   -name N [-wrong-type] (typed attach, report success or the error)
//	worker write    -name N -count K   (write-attach, write K slots, exit)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/shm/stress"
)

var ev = event.NewWriter(os.Stdout, "worker")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: worker produce|consume|hold|lock|attach|write [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	name := fs.String("name", "", "segment name")
	create := fs.Bool("create", false, "create the segment (else write-attach)")
	syncName := fs.String("sync", "latest", "latest|single|sync")
	capacity := fs.Uint("cap", 32, "ring capacity")
	count := fs.Int("count", 500, "slots to write")
	until := fs.Uint64("until", 499, "consume until this sequence")
	ordered := fs.Bool("ordered", false, "consumer: every sequence exactly once, in order")
	maxSleep := fs.Duration("max-sleep", 0, "random sleep up to this between slots")
	slotTimeout := fs.Duration("slot-timeout", 50*time.Millisecond, "acquire timeout per slot")
	retries := fs.Int("retries", 500, "acquire retries per slot")
	waitConsumers := fs.Int("wait-consumers", 0, "producer: wait for this many consumers first")
	writes := fs.Int("writes", 0, "lock: slots to write before taking the lock")
	wrongType := fs.Bool("wrong-type", false, "attach: use a slot type with another schema")
	fs.Parse(os.Args[2:])
	var err error
	switch mode {
	case "produce":
		err = produce(*name, *create, parseSync(*syncName), uint32(*capacity), *count, *maxSleep, *slotTimeout, *retries, *waitConsumers)
	case "consume":
		err = consume(*name, *until, *ordered, *maxSleep, *slotTimeout)
	case "hold":
		err = hold(*name)
	case "lock":
		err = lock(*name, *writes)
	case "attach":
		err = attach(*name, *wrongType)
	case "write":
		err = produce(*name, false, 0, 0, *count, 0, time.Second, 10, 0)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		ev.Emit("error", map[string]any{"err": err.Error()})
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func parseSync(s string) shm.SyncPolicy {
	switch s {
	case "single":
		return shm.SingleReader
	case "sync":
		return shm.SyncReader
	}
	return shm.LatestOnly
}

func sleepUpTo(d time.Duration) {
	if d > 0 {
		time.Sleep(rand.N(d + 1))
	}
}

// attachRetry attaches, retrying up to 50 × 100 ms while the segment does not exist.
func attachRetry(name string) (*shm.Block, error) {
	var err error
	for range 50 {
		var b *shm.Block
		b, err = shm.AttachTyped[stress.Flex, stress.Slot](name, stress.Secret, nil)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, shm.ErrNotFound) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, err
}

func produce(name string, create bool, sp shm.SyncPolicy, capacity uint32, count int, maxSleep, slotTimeout time.Duration, retries, waitConsumers int) error {
	var b *shm.Block
	var err error
	if create {
		b, err = shm.CreateTyped[stress.Flex, stress.Slot](name, shm.Config{Secret: stress.Secret, PageSize: shm.Page4K,
			Capacity: capacity, Policy: shm.PolicyRingBuffer, Sync: sp, FlexSize: 4096})
	} else {
		b, err = attachRetry(name)
	}
	if err != nil {
		return err
	}
	defer b.Close()
	w, err := shm.NewTypedWriter[stress.Flex, stress.Slot](b, shm.WaitOptions{})
	if err != nil {
		return err
	}
	if err := w.UpdateFlex(func(f *stress.Flex) error { f.ProducerPid = uint64(os.Getpid()); return nil }); err != nil {
		return err
	}
	ev.Emit("ready", map[string]any{"pid": os.Getpid()})
	for deadline := time.Now().Add(30 * time.Second); b.Metrics().ActiveConsumers < uint32(waitConsumers); {
		if time.Now().After(deadline) {
			return fmt.Errorf("consumers did not attach within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	timeouts := 0
	base := b.Metrics().TotalSlotsWritten
	for seq := range uint64(count) {
		seq += base
		for try := 0; ; try++ {
			_, err := w.Write(context.Background(), slotTimeout, func(_ *stress.Flex, s *stress.Slot) error {
				s.Fill(seq)
				return nil
			})
			if err == nil {
				break
			}
			if !errors.Is(err, shm.ErrTimeout) || try >= retries {
				return fmt.Errorf("write %d: %w", seq, err)
			}
			timeouts++
		}
		sleepUpTo(maxSleep)
	}
	m := b.Metrics()
	return ev.Emit("done", map[string]any{"written": count, "timeouts": timeouts, "seconds": time.Since(start).Seconds(),
		"write_lock_contention": m.WriteLockContention, "recovery_actions": m.RecoveryActions})
}

func consume(name string, until uint64, ordered bool, maxSleep, slotTimeout time.Duration) error {
	b, err := attachRetry(name)
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := shm.NewTypedReader[stress.Flex, stress.Slot](b, shm.ReaderOptions{UID: fmt.Sprint("c-", os.Getpid()), Name: "consumer"})
	if err != nil {
		return err
	}
	ev.Emit("ready", map[string]any{"pid": os.Getpid(), "entry": r.Reader().Entry()})
	var (
		reads, consecutive, maxConsecutive int
		last                               uint64
		first                              = true
	)
	start := time.Now()
	for first || last < until {
		var seq uint64
		_, err := r.Read(context.Background(), slotTimeout, func(f *stress.Flex, s *stress.Slot) error {
			if err := s.Verify(); err != nil {
				return fmt.Errorf("sequence %d: %w", s.Sequence, err)
			}
			if f.ProducerPid == 0 {
				return errors.New("flex zone has no producer pid")
			}
			seq = s.Sequence
			return nil
		})
		if errors.Is(err, shm.ErrTimeout) {
			consecutive++
			maxConsecutive = max(maxConsecutive, consecutive)
			if consecutive >= 200 {
				return fmt.Errorf("200 consecutive timeouts after %d reads (last %d)", reads, last)
			}
			continue
		}
		if err != nil {
			return err
		}
		consecutive = 0
		switch {
		case ordered && (first && seq != 0 || !first && seq != last+1):
			return fmt.Errorf("out of order: got %d after %d", seq, last)
		case !first && seq < last:
			return fmt.Errorf("sequence went back: %d after %d", seq, last)
		}
		first, last = false, seq
		reads++
		sleepUpTo(maxSleep)
	}
	m := b.Metrics()
	return ev.Emit("done", map[string]any{"reads": reads, "last": last, "max_consecutive_timeouts": maxConsecutive,
		"checksum_failures": m.ChecksumFailures, "seconds": time.Since(start).Seconds()})
}

func hold(name string) error {
	b, err := attachRetry(name)
	if err != nil {
		return err
	}
	r, err := b.NewReader(shm.ReaderOptions{Name: "holder"})
	if err != nil {
		return err
	}
	s, err := r.AcquireRead(context.Background(), 10*time.Second)
	if err != nil {
		return err
	}
	ev.Emit("holding", map[string]any{"id": s.ID(), "index": s.Index(), "entry": r.Entry()})
	waitSignal() // SIGKILL: the hold is left behind; SIGTERM: released properly
	if err := s.Release(); err != nil {
		return err
	}
	r.Close()
	b.Close()
	return ev.Emit("released", nil)
}

func lock(name string, writes int) error {
	b, err := attachRetry(name)
	if err != nil {
		return err
	}
	w, err := shm.NewTypedWriter[stress.Flex, stress.Slot](b, shm.WaitOptions{})
	if err != nil {
		return err
	}
	base := b.Metrics().TotalSlotsWritten
	for i := range uint64(writes) {
		if _, err := w.Write(context.Background(), time.Second, func(_ *stress.Flex, s *stress.Slot) error {
			s.Fill(base + i)
			return nil
		}); err != nil {
			return err
		}
	}
	s, err := w.Writer().AcquireWrite(context.Background(), time.Second)
	if err != nil {
		return err
	}
	ev.Emit("locked", map[string]any{"id": s.ID(), "index": s.Index()})
	return waitSignal() // holding the write lock until killed
}

// stopSig receives SIGTERM/SIGINT; registered before any event is emitted, so a
// test that signals right after an event never meets the default action.
var stopSig = make(chan os.Signal, 1)

func init() { signal.Notify(stopSig, syscall.SIGTERM, os.Interrupt) }

// waitSignal blocks until SIGTERM or SIGINT (tests usually SIGKILL instead).
func waitSignal() error {
	<-stopSig
	return nil
}

func attach(name string, wrongType bool) error {
	var err error
	var b *shm.Block
	if wrongType {
		b, err = shm.AttachTyped[stress.Flex, struct{ Value uint32 }](name, stress.Secret, nil)
	} else {
		b, err = attachRetry(name)
	}
	if err != nil {
		return ev.Emit("attach_failed", map[string]any{"err": err.Error(), "schema_mismatch": errors.Is(err, shm.ErrSchemaMismatch)})
	}
	defer b.Close()
	r, err := b.NewReader(shm.ReaderOptions{UID: "attach-uid", Name: "attacher"})
	if err != nil {
		return err
	}
	ev.Emit("attached", map[string]any{"consumers": len(b.Consumers()), "entry": r.Entry()})
	waitSignal()
	return r.Close()
}
