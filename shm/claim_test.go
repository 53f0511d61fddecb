package shm

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pylabhub/plh/internal/proc"
)

// deadIdentity returns the packed identity of a process that has exited.
func deadIdentity(t *testing.T) uint64 {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return proc.Identity{Pid: cmd.Process.Pid, StartTime: 1}.Pack()
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// A segment whose owner lives is never replaced: Create fails with
// ErrSegmentInUse naming the owner, and the owner's segment stays attachable.
func TestCreateRefusesLiveOwner(t *testing.T) {
	name := testName("live")
	a, err := Create(name, testConfig(2, LatestOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	before := inode(t, a.path)
	b, err := Create(name, testConfig(4, SingleReader))
	if !errors.Is(err, ErrSegmentInUse) {
		b.Close()
		t.Fatalf("second Create: %v, want ErrSegmentInUse", err)
	}
	if !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("the error does not name the owner: %v", err)
	}
	if inode(t, a.path) != before {
		t.Fatal("the owner's segment was replaced")
	}
	c, err := Attach(name, 0xDEADBEEFCAFEBABE, nil)
	if err != nil {
		t.Fatalf("the owner's segment cannot be attached after the refusal: %v", err)
	}
	c.Close()
}

// Of creators racing for one name exactly one wins; the others get
// ErrSegmentInUse (never "file exists"), and the winner's segment survives them.
func TestCreateRaceHasOneWinner(t *testing.T) {
	for round := range 20 {
		name := testName("race")
		const racers = 6
		var wins atomic.Int32
		var winner atomic.Pointer[Block]
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, racers)
		for range racers {
			wg.Go(func() {
				<-start
				b, err := Create(name, testConfig(2, LatestOnly))
				if err != nil {
					errs <- err
					return
				}
				wins.Add(1)
				winner.Store(b)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, ErrSegmentInUse) {
				t.Errorf("round %d: a loser got %v, want ErrSegmentInUse", round, err)
			}
		}
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
		w := winner.Load()
		if _, err := os.Stat(w.path); err != nil {
			t.Fatalf("round %d: the winner's segment is gone: %v", round, err)
		}
		w.Close()
	}
}

// A segment whose creator and producer are dead is replaced, and the dead
// owner's Block (here still open) never unlinks its successor.
func TestCreateReplacesDeadOwner(t *testing.T) {
	name := testName("dead")
	old, err := Create(name, testConfig(2, LatestOnly))
	if err != nil {
		t.Fatal(err)
	}
	dead := deadIdentity(t)
	old.h.creatorID, old.h.producerID = dead, dead
	nb, err := Create(name, testConfig(2, LatestOnly))
	if err != nil {
		old.Close()
		t.Fatalf("stale segment not replaced: %v", err)
	}
	old.Close()
	if _, err := os.Stat(nb.path); err != nil {
		t.Fatalf("the old Block's Close removed its successor: %v", err)
	}
	nb.Close()
	if _, err := os.Stat(nb.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("creator did not unlink on close")
	}
}

// A creator whose name was removed and taken by another leaves that one alone.
func TestCloseLeavesAnotherSegment(t *testing.T) {
	name := testName("taken")
	a, err := Create(name, testConfig(2, LatestOnly))
	if err != nil {
		t.Fatal(err)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	b, err := Create(name, testConfig(2, LatestOnly))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(b.path); err != nil {
		t.Fatalf("a Close removed a segment it did not create: %v", err)
	}
	b.Close()
}

// One attachment holds the sole-reader lock until it closes.
func TestLockSoleReader(t *testing.T) {
	name := testName("sole")
	b, err := Create(name, testConfig(2, SingleReader))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	attach := func() *Block {
		a, err := Attach(name, 0xDEADBEEFCAFEBABE, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	r1, r2 := attach(), attach()
	defer r2.Close()
	if err := r1.LockSoleReader(); err != nil {
		t.Fatal(err)
	}
	if err := r2.LockSoleReader(); !errors.Is(err, ErrReaderLocked) {
		t.Fatalf("second reader: %v, want ErrReaderLocked", err)
	}
	r1.Close()
	if err := r2.LockSoleReader(); err != nil {
		t.Fatalf("after the first reader closed: %v", err)
	}
	if err := r1.LockSoleReader(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed Block: %v", err)
	}
}
