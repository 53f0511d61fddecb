package shm

// Tests for a control zone scribbled by another process of the same user (one
// word changed on a live segment): every wait either goes on correctly or fails
// with a clear error within a deadline, never spins or blocks for good, never
// panics.

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/proc"
)

// fastCorrupt asserts err is ErrCorrupt naming field, returned well before the
// operation's own timeout (10 s).
func fastCorrupt(t *testing.T, what string, start time.Time, err error, field string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), field) {
		t.Fatalf("%s: err = %v, want ErrCorrupt naming %s", what, err, field)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%s: took %v to report the corruption", what, d)
	}
}

// An ordered writer or reader facing indices that cannot be (read ahead of
// write, more than N slots in flight, a commit beyond what was claimed, a
// Sync_reader cursor ahead of write) reports ErrCorrupt instead of waiting.
func TestScribbledIndicesOrdered(t *testing.T) {
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		for _, sp := range []SyncPolicy{SingleReader, SyncReader} {
			for _, c := range []struct {
				name, field string
				scribble    func(b *Block, r *Reader)
				writerSees  bool
				readerSees  bool
			}{
				{"read ahead of write", "read_index", func(b *Block, r *Reader) {
					atomic.StoreUint64(&b.h.readIndex, atomic.LoadUint64(&b.h.writeIndex)+5)
				}, true, sp == SingleReader},
				{"more than N in flight", "write_index", func(b *Block, r *Reader) {
					atomic.StoreUint64(&b.h.writeIndex, atomic.LoadUint64(&b.h.readIndex)+b.lay.capacity+3)
				}, true, false},
				{"commit beyond write", "commit_index", func(b *Block, r *Reader) {
					atomic.StoreUint64(&b.h.commitIndex, atomic.LoadUint64(&b.h.writeIndex)+7)
				}, false, true},
				{"cursor ahead of write", "position", func(b *Block, r *Reader) {
					if sp == SyncReader {
						atomic.StoreUint64(&b.h.syncPositions[r.entry], atomic.LoadUint64(&b.h.writeIndex)+9)
					}
				}, false, sp == SyncReader},
			} {
				t.Run(sp.String()+"/"+c.name, func(t *testing.T) {
					b := mk(t, testConfig(4, sp))
					w, r := mustWriter(t, b), mustReader(t, b, "r")
					for i := range 4 {
						writeSeq(t, w, uint64(i), time.Second)
					}
					readSeq(t, r, time.Second)
					c.scribble(b, r)
					if c.writerSees {
						start := time.Now()
						_, err := w.AcquireWrite(t.Context(), 10*time.Second)
						fastCorrupt(t, "writer", start, err, c.field)
					}
					if c.readerSees { // slots really committed are still read; then the error
						start := time.Now()
						var err error
						for k := 0; k < 8 && err == nil; k++ {
							var s *ReadSlot
							if s, err = r.AcquireRead(t.Context(), 10*time.Second); err == nil {
								s.Release()
							}
						}
						fastCorrupt(t, "reader", start, err, c.field)
					}
				})
			}
		}
	})
}

// Latest_only: a commit_index scribbled near 2^64 (never lowered by the
// writer's "never move back" rule) is reported to readers, and the writer's
// next publish reports it and puts it back, so the channel goes on.
func TestLatestOnlyCommitNearMaxDoesNotWedge(t *testing.T) {
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		b := mk(t, testConfig(4, LatestOnly))
		w, r := mustWriter(t, b), mustReader(t, b, "r")
		for i := range 3 {
			writeSeq(t, w, uint64(i), time.Second)
		}
		if v, err := readSeq(t, r, time.Second); err != nil || v != 2 {
			t.Fatalf("first read %d %v", v, err)
		}
		atomic.StoreUint64(&b.h.commitIndex, ^uint64(0)-1)
		start := time.Now()
		_, err := r.AcquireRead(t.Context(), 10*time.Second)
		fastCorrupt(t, "reader", start, err, "commit_index")
		start = time.Now()
		err = writeSeq(t, w, 3, 10*time.Second)
		fastCorrupt(t, "writer", start, err, "commit_index")
		if err := writeSeq(t, w, 4, time.Second); err != nil {
			t.Fatalf("write after the repair: %v", err)
		}
		if v, err := readSeq(t, r, time.Second); err != nil || v != 4 {
			t.Fatalf("read after the repair: %d %v", v, err)
		}
	})
}

// Reader counts nobody can own: an absurd count is reported at once; a count
// no registered consumer records is reported when the drain gives up, instead
// of ErrTimeout every lap.
func TestScribbledReaderCounts(t *testing.T) {
	for _, sp := range []SyncPolicy{LatestOnly, SingleReader} {
		for _, c := range []struct {
			name    string
			count   uint32
			timeout time.Duration
		}{{"absurd", 0xFFFF_FFF0, 10 * time.Second}, {"unowned", 1, 100 * time.Millisecond}} {
			t.Run(sp.String()+"/"+c.name, func(t *testing.T) {
				b, _ := newHeapBlock(testConfig(2, sp))
				defer b.Close()
				w, r := mustWriter(t, b), mustReader(t, b, "r")
				writeSeq(t, w, 0, time.Second)
				readSeq(t, r, time.Second)
				writeSeq(t, w, 1, time.Second)
				readSeq(t, r, time.Second)
				atomic.StoreUint32(&b.slots[0].readerCount, c.count) // id 2 lands on slot 0
				start := time.Now()
				err := writeSeq(t, w, 2, c.timeout)
				fastCorrupt(t, "writer", start, err, "reader_count")
				if st, _, _ := loadState(&b.slots[0]); atomic.LoadUint64(&b.slots[0].writeLock) != 0 || st == stateWriting || st == stateDraining {
					t.Fatalf("slot 0 not given back: state %d lock %#x", st, b.slots[0].writeLock)
				}
			})
		}
	}
}

// Attach takes every field from the header copy it validated: a scribbler
// toggling the policy words while consumers attach never yields a Block with
// an out-of-range policy (which panicked with index out of range).
func TestAttachUsesTheValidatedCopy(t *testing.T) {
	cfg := testConfig(4, SyncReader)
	b := createT(t, cfg)
	w := mustWriter(t, b)
	writeSeq(t, w, 0, time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() }) // before b is unmapped
	wg.Add(1)
	go func() {
		defer wg.Done()
		good := atomic.LoadUint32(&b.h.syncPolicy)
		goodCsum := atomic.LoadUint32(&b.h.checksumPolicy)
		for {
			select {
			case <-stop:
				atomic.StoreUint32(&b.h.syncPolicy, good)
				atomic.StoreUint32(&b.h.checksumPolicy, goodCsum)
				return
			default:
			}
			atomic.StoreUint32(&b.h.syncPolicy, ^uint32(0))
			atomic.StoreUint32(&b.h.checksumPolicy, ^uint32(0))
			atomic.StoreUint32(&b.h.syncPolicy, good)
			atomic.StoreUint32(&b.h.checksumPolicy, goodCsum)
		}
	}()
	attached := 0
	for i := 0; i < 300 || attached == 0; i++ {
		a, err := Attach(b.Name(), cfg.Secret, nil)
		if err != nil {
			if !errors.Is(err, ErrCorruptHeader) && !errors.Is(err, ErrLayoutChecksum) {
				t.Fatalf("attach under a scribbler: %v", err)
			}
			continue
		}
		attached++
		sync, csum := a.Sync(), a.ChecksumPolicy()
		r, err := a.NewReader(ReaderOptions{UID: "x"})
		if err == nil {
			_, err = r.AcquireRead(t.Context(), 0)
			r.Close()
		}
		a.Close()
		if sync != SyncReader || csum != ChecksumEnforced {
			t.Fatalf("attach %d: policies %v/%v taken from the live header, want Sync_reader/Enforced", i, sync, csum)
		}
		if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatalf("read after attach: %v", err)
		}
	}
}

// The checksum policy word is outside the layout checksum (spec §12.5, kept
// for compatibility): a consumer that requires a policy refuses a segment whose
// word was changed.
func TestRequireChecksumPolicy(t *testing.T) {
	cfg := testConfig(2, LatestOnly)
	b := createT(t, cfg)
	atomic.StoreUint32(&b.h.checksumPolicy, uint32(ChecksumNone-1)) // verification off for later attachers
	if _, err := Attach(b.Name(), cfg.Secret, &AttachOptions{RequireChecksum: ChecksumEnforced}); !errors.Is(err, ErrConfigMismatch) ||
		!strings.Contains(err.Error(), "checksum policy") {
		t.Fatalf("attach requiring Enforced on a None segment: %v", err)
	}
	a, err := Attach(b.Name(), cfg.Secret, &AttachOptions{RequireChecksum: ChecksumNone})
	if err != nil {
		t.Fatalf("attach requiring what the segment has: %v", err)
	}
	a.Close()
	a, err = Attach(b.Name(), cfg.Secret, nil) // no requirement: the header's policy
	if err != nil || a.ChecksumPolicy() != ChecksumNone {
		t.Fatalf("attach without requirement: %v %v", a.ChecksumPolicy(), err)
	}
	a.Close()
}

// foreignID is the packed identity of a live process that is not us (the
// parent: go test's runner or the shell).
func foreignID(t *testing.T) uint64 {
	t.Helper()
	st, err := proc.StartTime(os.Getppid())
	if err != nil {
		t.Skip("parent process not readable:", err)
	}
	return proc.Identity{Pid: os.Getppid(), StartTime: st}.Pack()
}

// Sync_reader: when a live reader's heartbeat entry is taken from it (its id
// word overwritten, the entry reclaimed and given to the next consumer), the
// reader gets a clear error and, on Close, leaves the next owner's cursor alone.
func TestSyncReaderEntryTakenOver(t *testing.T) {
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		b := mk(t, testConfig(4, SyncReader))
		w, r := mustWriter(t, b), mustReader(t, b, "victim")
		writeSeq(t, w, 0, time.Second)
		e := r.Entry()
		atomic.StoreUint64(&b.h.consumers[e].id, deadID)
		if n, err := b.Reap(); err != nil || n != 1 {
			t.Fatalf("reap %d %v", n, err)
		}
		next := foreignID(t) // the next owner, another process
		if !atomic.CompareAndSwapUint64(&b.h.consumers[e].id, 0, next) {
			t.Fatal("entry not freed")
		}
		atomic.StoreUint64(&b.h.syncPositions[e], 42)
		start := time.Now()
		_, err := r.AcquireRead(t.Context(), 10*time.Second)
		if !errors.Is(err, ErrEntryLost) || time.Since(start) > 2*time.Second {
			t.Fatalf("reader whose entry was taken: %v after %v", err, time.Since(start))
		}
		if err := r.Heartbeat(); !errors.Is(err, ErrEntryLost) {
			t.Fatalf("heartbeat: %v", err)
		}
		r.Close()
		if id, pos := atomic.LoadUint64(&b.h.consumers[e].id), atomic.LoadUint64(&b.h.syncPositions[e]); id != next || pos != 42 {
			t.Fatalf("close of the old reader changed the next owner's entry: id %#x position %d", id, pos)
		}
		atomic.StoreUint64(&b.h.consumers[e].id, 0)
	})
}

// An entry left at the "reclaiming" sentinel (its reclaimer died, or a
// scribble) is freed by the next reap, and a new consumer gets it.
func TestStuckReclaimingEntryFreed(t *testing.T) {
	b, _ := newHeapBlock(testConfig(4, SyncReader))
	defer b.Close()
	atomic.StoreUint64(&b.h.consumers[0].id, reclaiming) // its reclaimer died long ago
	atomic.StoreUint64(&b.h.consumers[0].held[0], 3)     // slot index 2 held by whoever it was
	atomic.StoreUint32(&b.slots[2].readerCount, 1)
	for i := 1; i < maxConsumers; i++ {
		mustReader(t, b, "r"+strconv.Itoa(i)) // entries 1..7
	}
	r := mustReader(t, b, "fresh")
	if r.Entry() != 0 {
		t.Fatalf("fresh consumer got entry %d, want the stuck entry 0", r.Entry())
	}
	if rc := atomic.LoadUint32(&b.slots[2].readerCount); rc != 0 {
		t.Fatalf("hold of the stuck entry not given back: reader_count %d", rc)
	}
}

const childEnv = "PLH_SHM_TEST_CONSUMER" // "name secret": attach, register, wait to be killed

// consumerChild is the body of a re-executed test binary: it attaches to the
// segment, registers a Reader, prints "ready ENTRY" and waits for stdin to close.
func consumerChild(spec string) int {
	f := strings.Fields(spec)
	secret, _ := strconv.ParseUint(f[1], 10, 64)
	b, err := Attach(f[0], secret, nil)
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		return 1
	}
	r, err := b.NewReader(ReaderOptions{UID: "child"})
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("ready " + strconv.Itoa(r.Entry()) + "\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// Latest_only: eight consumers killed with SIGKILL leave their heartbeat
// entries; a fresh consumer still gets one (dead entries are reaped when the
// pool looks full), so it does not run untracked with "pool full".
func TestLatestOnlyReapsDeadConsumersEntries(t *testing.T) {
	cfg := testConfig(4, LatestOnly)
	b := createT(t, cfg)
	w := mustWriter(t, b)
	writeSeq(t, w, 0, time.Second)
	for i := range maxConsumers {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+b.Name()+" "+strconv.FormatUint(cfg.Secret, 10))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if !strings.HasPrefix(line, "ready ") || strings.TrimSpace(line) == "ready -1" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child %d: %q", i, line)
		}
		cmd.Process.Kill()
		cmd.Wait()
		stdin.Close()
	}
	if n := b.Metrics().ActiveConsumers; n != maxConsumers {
		t.Fatalf("active consumers after the kills: %d, want %d (entries left by the dead)", n, maxConsumers)
	}
	r := mustReader(t, b, "fresh")
	if r.Entry() < 0 {
		t.Fatal("fresh consumer found the heartbeat pool full of dead consumers' entries")
	}
	if v, err := readSeq(t, r, time.Second); err != nil || v != 0 {
		t.Fatalf("fresh consumer read %d %v", v, err)
	}
}

// Check reports what the waits refuse: reader counts nobody owns, a cursor ahead
// of write_index, an entry stuck at the reclaiming sentinel.
func TestCheckReportsScribbles(t *testing.T) {
	b := createT(t, testConfig(4, SyncReader))
	w, r := mustWriter(t, b), mustReader(t, b, "r")
	writeSeq(t, w, 0, time.Second)
	atomic.StoreUint32(&b.slots[1].readerCount, 1)
	atomic.StoreUint64(&b.h.syncPositions[r.Entry()], 99)
	atomic.StoreUint64(&b.h.consumers[5].id, reclaiming)
	rep, err := Check(b.Name(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"slot 1: reader count 1, but registered consumers hold it 0 times",
		"position 99 > write_index 1",
		"consumer entry 5 stuck at the reclaiming sentinel",
	} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report %q lacks %q", rep.String(), want)
		}
	}
	atomic.StoreUint64(&b.h.consumers[5].id, 0)
}

// A write lock scribbled with the identity of a live process that never wrote
// here is reported when the lock wait gives up, instead of ErrTimeout every lap.
func TestForeignLiveLockHolder(t *testing.T) {
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		b := mk(t, testConfig(2, LatestOnly))
		w := mustWriter(t, b)
		writeSeq(t, w, 0, time.Second)
		atomic.StoreUint64(&b.slots[1].writeLock, foreignID(t))
		start := time.Now()
		err := writeSeq(t, w, 1, 100*time.Millisecond)
		fastCorrupt(t, "writer", start, err, "write_lock of slot 1")
		if err := writeSeq(t, w, 2, time.Second); err != nil { // slot 0: the channel goes on
			t.Fatalf("next write: %v", err)
		}
		atomic.StoreUint64(&b.slots[1].writeLock, 0)
	})
}
