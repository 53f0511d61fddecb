package support

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/pylabhub/plh/internal/event"
)

// Proc is a started child process whose stdout is read as an event stream.
type Proc struct {
	Name string
	Cmd  *exec.Cmd

	mu     sync.Mutex
	events []event.Event
	lines  []string // stdout lines that were not events
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Start runs bin with args in its own process group, with a parent-death signal,
// and collects its events. extraEnv entries ("K=V") are added to the environment.
// stderr is kept in memory and also copied to tee when tee is non-nil.
func Start(name string, tee io.Writer, extraEnv []string, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &Proc{Name: name, Cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	if tee != nil {
		cmd.Stderr = io.MultiWriter(p.stderr, tee)
	} else {
		cmd.Stderr = p.stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	track(p)
	go p.read(stdout)
	return p, nil
}

func (p *Proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), event.MaxLine)
	for sc.Scan() {
		line := sc.Bytes()
		ev, err := event.Decode(line)
		p.mu.Lock()
		if err == nil {
			p.events = append(p.events, ev)
		} else {
			p.lines = append(p.lines, string(line))
		}
		p.mu.Unlock()
	}
	err := p.Cmd.Wait()
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	untrack(p)
	close(p.done)
}

// Events returns a copy of the events seen so far.
func (p *Proc) Events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.events...)
}

// Find returns the first event of kind for which match (may be nil) is true.
func (p *Proc) Find(kind string, match func(event.Event) bool) (event.Event, bool) {
	for _, ev := range p.Events() {
		if ev.Kind == kind && (match == nil || match(ev)) {
			return ev, true
		}
	}
	return event.Event{}, false
}

// Count returns how many events of kind match.
func (p *Proc) Count(kind string, match func(event.Event) bool) int {
	n := 0
	for _, ev := range p.Events() {
		if ev.Kind == kind && (match == nil || match(ev)) {
			n++
		}
	}
	return n
}

// Stderr returns what the process wrote on stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Done is closed when the process has exited and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its exit code (-1 when
// killed by a signal).
func (p *Proc) Exited() (bool, int) {
	select {
	case <-p.done:
		return true, p.Cmd.ProcessState.ExitCode()
	default:
		return false, 0
	}
}

// Signal sends sig to the process's whole group.
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Kill sends SIGKILL to the group and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM, waits up to grace, then kills. It returns the exit error of
// the process (nil for status 0).
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
		return errors.New(p.Name + ": did not stop within grace period, killed")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

var (
	liveMu sync.Mutex
	live   = map[*Proc]struct{}{}
)

func track(p *Proc)   { liveMu.Lock(); live[p] = struct{}{}; liveMu.Unlock() }
func untrack(p *Proc) { liveMu.Lock(); delete(live, p); liveMu.Unlock() }

// KillAll kills every process started by Start that is still running. Suites call
// it in AfterSuite as a backstop.
func KillAll() {
	liveMu.Lock()
	ps := make([]*Proc, 0, len(live))
	for p := range live {
		ps = append(ps, p)
	}
	liveMu.Unlock()
	for _, p := range ps {
		p.Kill()
	}
}
