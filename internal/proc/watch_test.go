package proc

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// osThreads reads the Threads: line of /proc/self/status.
func osThreads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// Add and Remove of a live process, many times over: what one Add takes, the
// matching Remove gives back at once (descriptor, goroutine, OS thread), and the
// Watch still reports exits afterwards.
func TestWatchAddRemoveCyclesLeaveNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	exited := make(chan Identity, 4)
	w, err := NewWatch(func(i Identity) { exited <- i })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	self := Self()
	if err := w.Add(self); err != nil {
		t.Fatal(err)
	}
	w.Remove(self)
	fds, gs, threads := openFDs(t), runtime.NumGoroutine(), osThreads(t)
	const cycles = 500
	for range cycles {
		if err := w.Add(self); err != nil {
			t.Fatal(err)
		}
		w.Remove(self)
	}
	fds2, gs2, threads2 := openFDs(t), runtime.NumGoroutine(), osThreads(t)
	if n := w.Len(); n != 0 {
		t.Fatalf("Len after the cycles = %d", n)
	}
	t.Logf("after %d Add/Remove cycles: fds %d -> %d, goroutines %d -> %d, threads %d -> %d",
		cycles, fds, fds2, gs, gs2, threads, threads2)
	if fds2 > fds+2 || gs2 > gs+2 || threads2 > threads+8 {
		t.Fatalf("after %d Add/Remove cycles: fds %d -> %d, goroutines %d -> %d, threads %d -> %d",
			cycles, fds, fds2, gs, gs2, threads, threads2)
	}

	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(id); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	select {
	case got := <-exited:
		if got != id {
			t.Fatalf("exit of %v reported as %v", id, got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported after the cycles")
	}
	_ = cmd.Wait()
	select {
	case got := <-exited:
		t.Fatalf("removed identity reported as exited: %v", got)
	default:
	}
}

// A removed process that exits is not reported; the others still are, each once.
func TestWatchRemovedExitNotReported(t *testing.T) {
	defer goleak.VerifyNone(t)
	exited := make(chan Identity, 4)
	w, err := NewWatch(func(i Identity) { exited <- i })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var ids []Identity
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		id, err := Lookup(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if err := w.Add(id); err != nil {
			t.Fatal(err)
		}
	}
	w.Remove(ids[0])
	for _, c := range cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	select {
	case got := <-exited:
		if got != ids[1] {
			t.Fatalf("reported %v, want %v", got, ids[1])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported")
	}
	// Close waits for the watcher goroutine: nothing can be reported after it.
	w.Close()
	if len(exited) != 0 {
		t.Fatalf("unexpected report %v", <-exited)
	}
}
