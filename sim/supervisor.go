package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
)

// child is one supervised process. The hub may have several over a run (one per
// broker restart); every other node has one.
type child struct {
	name  string
	role  string // "hub", "producer", "consumer"
	exit  scenario.ExitMode
	cmd   *exec.Cmd
	pid   int
	stdin io.WriteCloser
	done  chan struct{} // closed once the process is reaped and its output read

	mu       sync.Mutex
	sawExit  bool // the process wrote its own exit event
	paused   bool
	stopping bool // the engine asked it to stop (end of run)
	forced   bool // the engine had to SIGKILL it at stop
	status   syscall.WaitStatus
}

func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// send writes one control line on the child's stdin.
func (c *child) send(line []byte) error {
	if c.stdin == nil {
		return fmt.Errorf("%s has no control input", c.name)
	}
	if !c.running() {
		return fmt.Errorf("%s is not running", c.name)
	}
	_, err := c.stdin.Write(line)
	return err
}

// supervisor starts processes in their own process group with a parent-death
// signal, turns their stdout into events and their stderr into log files.
type supervisor struct {
	logDir  string
	col     *collector
	janitor *janitorClient
	// statusDir holds the nodes' status files (recordTail); channelOf maps a
	// node name to its actual channel name.
	statusDir string
	channelOf func(name string) string
	// beforeHub runs in stopAll once every node has ended, before the hub is
	// stopped (nil: nothing).
	beforeHub func()

	mu       sync.Mutex
	children []*child
	wg       sync.WaitGroup
}

// start runs argv as the process of node name.
func (s *supervisor) start(name, role string, exit scenario.ExitMode, argv []string) (*child, error) {
	logf, err := os.OpenFile(filepath.Join(s.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: log of %s: %v", ErrHarness, name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logf
	if role == scenario.HubName {
		// The hub writes its generated admin token file under XDG_RUNTIME_DIR:
		// keep it in the run folder, never in the user's home.
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+s.logDir)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w: %v", ErrHarness, err)
	}
	c := &child{name: name, role: role, exit: exit, cmd: cmd, done: make(chan struct{})}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w: %v", ErrHarness, err)
	}
	fmt.Fprintf(logf, "# %s: %q\n", time.Now().Format(time.RFC3339Nano), argv)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w: start %s: %v", ErrHarness, name, err)
	}
	c.pid = cmd.Process.Pid
	s.janitor.add("pgid", fmt.Sprint(c.pid))
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	s.col.engine("spawned", map[string]any{"target": name, "role": role, "pid": c.pid})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer logf.Close()
		s.read(c, stdout, logf)
		err := cmd.Wait()
		_ = syscall.Kill(-c.pid, syscall.SIGKILL) // helpers left in its group
		if c.stdin != nil {
			_ = c.stdin.Close()
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			fmt.Fprintf(logf, "# wait: %v\n", err)
		}
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		c.mu.Lock()
		c.status = ws
		saw, forced, stopping := c.sawExit, c.forced, c.stopping
		c.mu.Unlock()
		code, sig := ws.ExitStatus(), ""
		if ws.Signaled() {
			code, sig = -1, unixSignalName(ws.Signal())
		}
		if !saw {
			s.recordTail(c)
			// A process killed by a signal writes no exit event: record its death.
			s.col.add(event.Event{T: proc.Now(), Node: name, Kind: "exit", Fields: map[string]any{
				"code": code, "reason": map[bool]string{true: "signal", false: "error"}[sig != ""],
				"signal": sig, "recorded_by": scenario.EngineName}})
		}
		s.col.engine("process_end", map[string]any{"target": name, "role": role, "pid": c.pid,
			"code": code, "signal": sig, "forced": forced, "stopped": stopping})
		close(c.done)
	}()
	return c, nil
}

// read turns stdout lines into events; other lines go to the log file.
func (s *supervisor) read(c *child, r io.Reader, logf io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), event.MaxLine)
	for sc.Scan() {
		ev, err := event.Decode(sc.Bytes())
		if err != nil {
			fmt.Fprintf(logf, "# stdout (not an event: %v): %s\n", err, sc.Bytes())
			continue
		}
		if ev.Kind == "exit" {
			c.mu.Lock()
			c.sawExit = true
			c.mu.Unlock()
		}
		s.col.add(ev)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(logf, "# stdout: %v\n", err)
		_, _ = io.Copy(io.Discard, r) // keep the pipe drained so the child can exit
	}
}

// stop ends c: SIGCONT if paused, SIGTERM to its group, SIGKILL after grace.
func (s *supervisor) stop(c *child, grace time.Duration) {
	if !c.running() {
		return
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	_ = syscall.Kill(-c.pid, syscall.SIGCONT)
	_ = syscall.Kill(-c.pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.mu.Lock()
		c.forced = true
		c.mu.Unlock()
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-c.done
	}
}

// stopAll stops every running child, role tier by tier (consumers, then
// producers, then the hub), the members of a tier in parallel.
func (s *supervisor) stopAll(grace time.Duration) {
	for _, tier := range []string{"consumer", "producer", scenario.HubName} {
		if tier == scenario.HubName && s.beforeHub != nil {
			s.beforeHub()
		}
		var wg sync.WaitGroup
		for _, c := range s.list() {
			if c.role == tier {
				wg.Add(1)
				go func() { defer wg.Done(); s.stop(c, grace) }()
			}
		}
		wg.Wait()
	}
}

// killAll SIGKILLs every child's group and waits for the reapers.
func (s *supervisor) killAll() {
	for _, c := range s.list() {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
	}
	s.wg.Wait()
}

// leaked returns the names of children whose process group still has a member,
// and kills those groups.
func (s *supervisor) leaked() []string {
	var out []string
	for _, c := range s.list() {
		if err := syscall.Kill(-c.pid, 0); !errors.Is(err, syscall.ESRCH) {
			out = append(out, c.name)
			_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		}
	}
	return out
}

func (s *supervisor) list() []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*child(nil), s.children...)
}

// current returns the newest process of node name, or nil.
func (s *supervisor) current(name string) *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.children) - 1; i >= 0; i-- {
		if s.children[i].name == name {
			return s.children[i]
		}
	}
	return nil
}

// waitReady waits for the ready event of c (written after index from of the
// collector), failing early when c exits first.
func (s *supervisor) waitReady(ctx context.Context, c *child, from int) (event.Event, error) {
	ev, err := s.col.wait(ctx, from, func(ev event.Event) bool { return ev.Node == c.name && ev.Kind == "ready" }, c.done)
	if err != nil {
		return ev, fmt.Errorf("%s (pid %d) not ready: %w", c.name, c.pid, err)
	}
	return ev, nil
}

func unixSignalName(sig syscall.Signal) string {
	for _, n := range []string{"KILL", "TERM", "INT", "ABRT", "SEGV", "BUS", "QUIT", "HUP", "USR1", "USR2", "PIPE"} {
		if s, _ := chaos.ParseSignal(n); s == sig {
			return "SIG" + n
		}
	}
	return sig.String()
}
