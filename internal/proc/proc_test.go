package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestSelfAlive(t *testing.T) {
	self := Self()
	if self.Pid != os.Getpid() || self.StartTime == 0 {
		t.Fatalf("Self() = %v", self)
	}
	if !self.Alive() {
		t.Fatal("own process reported dead")
	}
	if (Identity{Pid: self.Pid, StartTime: self.StartTime + 1}).Alive() {
		t.Fatal("identity with another start time (a reused pid) reported alive")
	}
	if got := Unpack(self.Pack()); got != self {
		t.Fatalf("Unpack(Pack(%v)) = %v", self, got)
	}
	if AlivePid(0) || AlivePid(1<<30) || (Identity{}).Alive() {
		t.Fatal("invalid pids reported alive")
	}
}

func TestZombieIsDead(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, _ := Lookup(cmd.Process.Pid)
	// Not reaped yet: wait until the child is a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for AlivePid(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("exited child (zombie) still reported alive")
		}
		time.Sleep(time.Millisecond)
	}
	if id.StartTime != 0 && id.Alive() {
		t.Fatal("zombie identity alive")
	}
	_ = cmd.Wait()
}

func TestWatchReportsExit(t *testing.T) {
	defer goleak.VerifyNone(t)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := Lookup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan Identity, 1)
	w, err := NewWatch(func(i Identity) { exited <- i })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
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
		t.Fatal("exit not reported")
	}
	_ = cmd.Wait()
	// An identity already dead is reported at once.
	if err := w.Add(Identity{Pid: 1 << 21, StartTime: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("dead identity not reported")
	}
	w.Close()
	w.Close()
	if err := w.Add(Self()); err != ErrClosed {
		t.Fatalf("Add after Close = %v", err)
	}
}

func TestNowMonotonic(t *testing.T) {
	a := Now()
	b := Now()
	if a <= 0 || b < a {
		t.Fatalf("Now not monotonic: %d then %d", a, b)
	}
}
