package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pylabhub/plh/shm"
)

// holderEnv makes the test binary a lock holder: "NAME SECRET".
const holderEnv = "PLH_CHAOS_TEST_HOLD_LOCK"

// holdLockChild attaches to the segment, takes the next write slot, prints
// "held INDEX" and keeps the slot until stdin closes or it is killed.
func holdLockChild(spec string) int {
	var name string
	var secret uint64
	if _, err := fmt.Sscan(spec, &name, &secret); err != nil {
		fmt.Fprintln(os.Stderr, "holder:", err)
		return 2
	}
	b, err := shm.Attach(name, secret, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder:", err)
		return 2
	}
	w, err := b.NewWriter(shm.WaitOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder:", err)
		return 2
	}
	s, err := w.AcquireWrite(context.Background(), 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder:", err)
		return 2
	}
	fmt.Printf("held %d\n", s.Index())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// holder is a child process holding a write slot of a segment.
type holder struct {
	cmd  *exec.Cmd
	slot int
	done chan struct{}
}

// startHolder re-executes the test binary to hold the next write slot of name.
func startHolder(t *testing.T, name string, secret uint64) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", holderEnv, name, secret))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, slot: -1, done: make(chan struct{})}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	go func() { _ = cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		<-h.done
	})
	if f := strings.Fields(line); len(f) == 2 && f[0] == "held" {
		h.slot, _ = strconv.Atoi(f[1])
	}
	if h.slot < 0 {
		t.Fatalf("holder did not take a slot: %q %v; stderr: %s", line, rerr, stderr.String())
	}
	return h
}

// kill kills the holder and waits until it is reaped.
func (h *holder) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h.done
}

// readAll consumes every committed slot of an ordered block.
func readAll(t *testing.T, name string) {
	t.Helper()
	b, err := shm.Attach(name, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := b.NewReader(shm.ReaderOptions{UID: "drain"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		s, err := r.AcquireRead(context.Background(), 0)
		if errors.Is(err, shm.ErrTimeout) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

func watch(t *testing.T, name string, slot int) *LockWatch {
	t.Helper()
	lw, err := WatchLock(name, 7, slot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Close() })
	return lw
}

// TestReclaimLatestOnlyTakesTheLockOver: under Latest_only the engine's writer
// reaches the slot within one lap and takes the dead writer's lock over.
func TestReclaimLatestOnlyTakesTheLockOver(t *testing.T) {
	b, name := realBlock(t, shm.LatestOnly, 3)
	start := time.Now()
	h := startHolder(t, name, 7)
	lw := watch(t, name, h.slot)
	if pid, id := lw.Holder(); pid != h.cmd.Process.Pid || id == "" {
		t.Fatalf("holder %d %q, want pid %d", pid, id, h.cmd.Process.Pid)
	}
	if _, err := lw.Reclaim(context.Background(), time.Second); !errors.Is(err, ErrHolderAlive) {
		t.Fatalf("Reclaim with the holder alive = %v, want ErrHolderAlive", err)
	}
	h.kill(t)
	res, err := lw.Reclaim(context.Background(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.By != ByEngine || res.How != HowWriteLock || res.Contention != 1 || res.Recovery < 1 ||
		!res.Reacquired || !res.StuckSeen || res.Slot != h.slot || res.HolderPid != h.cmd.Process.Pid ||
		res.StuckFor <= 0 || res.StuckFor > time.Since(start) {
		t.Fatalf("reclaim %+v", res)
	}
	d, err := b.DiagnoseSlot(h.slot)
	if err != nil || d.Writer != "" || d.IsStuck {
		t.Fatalf("slot after reclaim: %+v, %v", d, err)
	}
	if locks, err := HeldLocks(shm.SegmentPath(name)); err != nil || len(locks) != 0 {
		t.Fatalf("held locks after reclaim: %+v, %v", locks, err)
	}
}

// TestReclaimOrderedSkipMarker: under Single_reader the dead writer's slot is
// at read_index; the engine's blocked writer reaps it into a skip marker. With
// no reader the ring stays full, so the engine cannot take the slot itself; a
// reader then steps over every skip marker.
func TestReclaimOrderedSkipMarker(t *testing.T) {
	b, name := realBlock(t, shm.SingleReader, 2)
	readAll(t, name)
	h := startHolder(t, name, 7)
	lw := watch(t, name, h.slot)
	h.kill(t)
	res, err := lw.Reclaim(context.Background(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.By != ByEngine || res.How != HowSkipMarker || res.Contention != 0 || res.Recovery != 1 ||
		res.Reacquired || !res.StuckSeen {
		t.Fatalf("reclaim %+v", res)
	}
	d, err := b.DiagnoseSlot(h.slot)
	if err != nil || d.Writer != "" || d.IsStuck || !d.Skipped || d.SlotID != 2 {
		t.Fatalf("slot after reclaim: %+v, %v", d, err)
	}
	readAll(t, name)
	if m := b.Metrics(); m.ReadIndex != m.WriteIndex {
		t.Fatalf("reader did not step over the skip markers: read_index %d, write_index %d", m.ReadIndex, m.WriteIndex)
	}
}

// TestReclaimOrderedWithReader: a live ordered reader waits at the dead
// writer's slot (it may reclaim it itself); either way the engine's writer
// then gets past the slot.
func TestReclaimOrderedWithReader(t *testing.T) {
	_, name := realBlock(t, shm.SingleReader, 2)
	start := time.Now()
	h := startHolder(t, name, 7)
	lw := watch(t, name, h.slot)
	rb, err := shm.Attach(name, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	r, err := rb.NewReader(shm.ReaderOptions{UID: "live"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if s, err := r.AcquireRead(ctx, 50*time.Millisecond); err == nil {
				_ = s.Release()
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	h.kill(t)
	res, err := lw.Reclaim(context.Background(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Whoever reclaimed it, the stuck time is known (from the holder's stored
	// acquisition time) and no older than the holder process.
	if res.How != HowSkipMarker || res.Recovery < 1 || !res.Reacquired || (res.By != ByEngine && res.By != ByOther) ||
		res.StuckFor <= 0 || res.StuckFor > time.Since(start) {
		t.Fatalf("reclaim %+v", res)
	}
}

// TestReclaimFailsWhenNothingCanReachTheSlot: the dead writer's slot is not at
// read_index (an unread commit before it) and nobody reads: the lock stays.
func TestReclaimFailsWhenNothingCanReachTheSlot(t *testing.T) {
	_, name := realBlock(t, shm.SingleReader, 1)
	h := startHolder(t, name, 7)
	lw := watch(t, name, h.slot)
	h.kill(t)
	_, err := lw.Reclaim(context.Background(), 1500*time.Millisecond)
	if !errors.Is(err, ErrNotReclaimed) {
		t.Fatalf("Reclaim = %v, want ErrNotReclaimed", err)
	}
	locks, err := HeldLocks(shm.SegmentPath(name))
	if err != nil || len(locks) != 1 || locks[0].Alive {
		t.Fatalf("locks %+v, %v: want the dead holder's", locks, err)
	}
}

func TestWatchLockRejects(t *testing.T) {
	_, name := realBlock(t, shm.LatestOnly, 1)
	if _, err := WatchLock(name+"_gone", 7, 0); !errors.Is(err, shm.ErrNotFound) {
		t.Fatalf("missing segment: %v", err)
	}
	if _, err := WatchLock(name, 8, 0); !errors.Is(err, shm.ErrSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := WatchLock(name, 7, 1); !errors.Is(err, ErrLockNotHeld) {
		t.Fatalf("free slot: %v", err)
	}
	if _, err := WatchLock(name, 7, 99); !errors.Is(err, shm.ErrRange) {
		t.Fatalf("slot out of range: %v", err)
	}
}
