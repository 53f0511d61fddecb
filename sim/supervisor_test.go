package sim

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

func newSup(t *testing.T) *supervisor {
	t.Helper()
	return &supervisor{logDir: t.TempDir(), col: newCollector(nil)}
}

func endOf(t *testing.T, s *supervisor, name string) event.Event {
	t.Helper()
	for _, ev := range s.col.Timeline() {
		if ev.Kind == "process_end" && ev.Str("target") == name {
			return ev
		}
	}
	t.Fatalf("no process_end for %s", name)
	return event.Event{}
}

// TestSupervisorEventsLogsAndStop drives a plain shell process: its stdout
// lines become events (others go to the log), stderr goes to the log, and stop
// ends it with SIGTERM; its death without an exit event is recorded.
func TestSupervisorEventsLogsAndStop(t *testing.T) {
	s := newSup(t)
	script := `echo '{"t":1,"node":"n1","kind":"ready","pid":1}'; echo 'not an event'; echo 'to stderr' >&2; exec sleep 60`
	c, err := s.start("n1", "consumer", scenario.ExitAny, []string{"sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.waitReady(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.send([]byte("{}\n")); err != nil {
		t.Fatalf("control line to a running node: %v", err)
	}
	s.stopAll(10 * time.Second)
	s.wg.Wait()
	end := endOf(t, s, "n1")
	if end.Str("signal") != "SIGTERM" || end.Fields["stopped"] != true || end.Fields["forced"] != false {
		t.Fatalf("process_end %+v", end.Fields)
	}
	var recorded bool
	for _, ev := range s.col.Timeline() {
		recorded = recorded || (ev.Node == "n1" && ev.Kind == "exit" && ev.Str("recorded_by") == scenario.EngineName)
	}
	if !recorded {
		t.Fatal("death without exit event not recorded")
	}
	log, _ := os.ReadFile(filepath.Join(s.logDir, "n1.log"))
	if !strings.Contains(string(log), "to stderr") || !strings.Contains(string(log), "not an event") {
		t.Fatalf("log: %s", log)
	}
	if l := s.leaked(); len(l) != 0 {
		t.Fatalf("leaked %v", l)
	}
	if err := c.send([]byte("{}\n")); err == nil {
		t.Fatal("control line to an exited node accepted")
	}
}

func TestSupervisorForcesStubbornProcess(t *testing.T) {
	s := newSup(t)
	script := `trap '' TERM; echo '{"t":1,"node":"n2","kind":"ready"}'; while :; do sleep 1; done`
	c, err := s.start("n2", "producer", scenario.ExitClean, []string{"sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.waitReady(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(-c.pid, syscall.SIGSTOP) // paused processes are continued before SIGTERM
	s.stop(c, 300*time.Millisecond)
	s.wg.Wait()
	end := endOf(t, s, "n2")
	if end.Str("signal") != "SIGKILL" || end.Fields["forced"] != true {
		t.Fatalf("process_end %+v", end.Fields)
	}
}

func TestSupervisorReadyFailsWhenProcessExits(t *testing.T) {
	s := newSup(t)
	c, err := s.start("n3", "consumer", scenario.ExitAny, []string{"sh", "-c", "echo bad flag >&2; exit 2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.waitReady(ctx, c, 0); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("waitReady = %v", err)
	}
	s.wg.Wait()
	if code, _ := endOf(t, s, "n3").Num("code"); code != 2 {
		t.Fatalf("code %v", code)
	}
	if _, err := s.start("n4", "consumer", scenario.ExitAny, []string{"/nonexistent/binary"}); err == nil {
		t.Fatal("start of a missing binary succeeded")
	}
}

func TestJanitor(t *testing.T) {
	dir := t.TempDir()
	seg := filepath.Join(dir, "plh_x")
	_ = os.WriteFile(seg, nil, 0o600)
	// "done": nothing is touched.
	if got := RunJanitor(strings.NewReader("shm plh_x\ndone\n"), dir); got != nil {
		t.Fatalf("cleaned %v after done", got)
	}
	if _, err := os.Stat(seg); err != nil {
		t.Fatal("segment removed after done")
	}
	// End of input without done: groups killed, segments removed; bad names ignored.
	s := newSup(t)
	c, err := s.start("victim", "consumer", scenario.ExitAny, []string{"sleep", "60"})
	if err != nil {
		t.Fatal(err)
	}
	in := "pgid " + strconv.Itoa(c.pid) + "\nshm plh_x\nshm ../etc\npgid 1\nbogus\n"
	got := RunJanitor(strings.NewReader(in), dir)
	<-c.done
	s.wg.Wait()
	if len(got) != 2 {
		t.Fatalf("cleaned %v", got)
	}
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Fatal("segment not removed")
	}
}

// TestTailOfAKilledNode: a node killed without an exit event has its status
// file read; what it counted beyond its read events is recorded as one read
// event (tail, recorded_by plh-sim) with the last sequence and writer pid.
func TestTailOfAKilledNode(t *testing.T) {
	s := newSup(t)
	s.statusDir = t.TempDir()
	s.channelOf = func(string) string { return "plh_cam_x" }
	b := make([]byte, 32)
	for i, v := range []uint64{statusMagic, 9, 42, 77} {
		binary.NativeEndian.PutUint64(b[i*8:], v)
	}
	if err := os.WriteFile(filepath.Join(s.statusDir, "c"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo '{"t":1,"node":"c","kind":"read","count":5}'; echo '{"t":2,"node":"c","kind":"ready"}'; exec sleep 60`
	c, err := s.start("c", "consumer", scenario.ExitAny, []string{"sh", "-c", script})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.waitReady(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(-c.pid, syscall.SIGKILL)
	s.wg.Wait()
	var tail []event.Event
	for _, ev := range s.col.Timeline() {
		if ev.Node == "c" && ev.Kind == "read" && ev.Fields["tail"] == true {
			tail = append(tail, ev)
		}
	}
	if len(tail) != 1 {
		t.Fatalf("tail events %v", tail)
	}
	f := tail[0].Fields
	if f["count"] != uint64(4) || f["last_seq"] != uint64(42) || f["from_pid"] != uint64(77) || f["channel"] != "plh_cam_x" ||
		f["recorded_by"] != scenario.EngineName {
		t.Errorf("tail %+v", f)
	}
}
