package main

// The hub process of the broker scale row, and a raw client for it.
//
// The hub is this binary re-executed with --hub-child: it runs exactly what
// cmd/plh-hub's main runs (cmd/internal/hubrole.Main under shutdown.OnSignal),
// in a process of its own, so its RSS is the hub's alone and no plh-hub binary
// has to be found or built.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/cmd/internal/hubrole"
	"github.com/pylabhub/plh/cmd/internal/shutdown"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// hubChild runs plh-hub's main with args in this process (--hub-child).
func hubChild(args []string) int {
	ctx, stop := shutdown.OnSignal(context.Background(), os.Exit)
	defer stop()
	return hubrole.Main(ctx, args, os.Stdout, os.Stderr)
}

// hubProc is a running hub child.
type hubProc struct {
	cmd      *exec.Cmd
	dir      string
	endpoint string
	pubkey   string
	logs     *logTail
	done     chan struct{}
}

// logTail takes the hub's stderr: it counts the lines and keeps the last 8 KiB.
type logTail struct {
	mu    sync.Mutex
	lines int
	buf   []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines += bytes.Count(p, []byte{'\n'})
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - 8<<10; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

// count returns the lines logged so far.
func (l *logTail) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines
}

func (l *logTail) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// startHubProc starts a hub child with configuration body cfg (JSON; the admin
// shell is off) and extra plh-hub flags, and waits for its ready event.
func startHubProc(cfg string, args ...string) (*hubProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "plh-bench-hub")
	if err != nil {
		return nil, err
	}
	f := filepath.Join(dir, "hub.json")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sec := "--no-curve"
	if !benchNull {
		sec = "--curve"
	}
	all := append([]string{"broker", "--hub-child", "--", "--config", f, "--endpoint", "tcp://127.0.0.1:0",
		sec, "--log-level", "warn"}, args...)
	cmd := exec.Command(exe, all...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "PYLABHUB_CONFIG_FILE=")
	logs := &logTail{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	h := &hubProc{cmd: cmd, dir: dir, logs: logs, done: make(chan struct{})}
	ready := make(chan event.Event, 1)
	go h.readEvents(out, ready)
	select {
	case ev := <-ready:
		h.endpoint, h.pubkey = ev.Str("endpoint"), ev.Str("pubkey")
		return h, nil
	case <-h.done:
		h.stop()
		return nil, fmt.Errorf("hub child exited before its ready event; its log ends:\n%s", logs.tail())
	case <-time.After(60 * time.Second):
		h.stop()
		return nil, fmt.Errorf("no ready event from the hub child within 60 s; its log ends:\n%s", logs.tail())
	}
}

// readEvents hands the first ready event to ready and reads the rest until EOF.
func (h *hubProc) readEvents(out io.Reader, ready chan<- event.Event) {
	defer close(h.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), event.MaxLine)
	sent := false
	for sc.Scan() {
		if ev, err := event.Decode(sc.Bytes()); err == nil && ev.Kind == "ready" && !sent {
			ready <- ev
			sent = true
		}
	}
}

// stop sends SIGTERM, waits up to 20 s (then SIGKILL) and removes the config.
func (h *hubProc) stop() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
	_ = h.cmd.Wait()
	os.RemoveAll(h.dir)
}

// rss returns the hub's resident set size in bytes (VmRSS).
func (h *hubProc) rss() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS line")
}

// wireConfig is the client side of the hub's security.
func (h *hubProc) wireConfig() (wire.Config, error) {
	cfg := wire.Config{Logger: quietLogger()}
	if h.pubkey == "" {
		return cfg, nil
	}
	pk, err := curve.ParsePublicKey(h.pubkey)
	if err != nil {
		return cfg, err
	}
	cfg.Security, err = curve.NewClientSecurity(curve.ClientConfig{ServerKey: pk})
	return cfg, err
}

// rawClient speaks broker/proto over one DEALER: call is one round trip,
// pipeline sends a batch before reading its replies. Notifications that arrive
// in between are skipped.
type rawClient struct {
	d   *wire.Dealer
	seq int
}

// dial connects a new client to h within timeout.
func (h *hubProc) dial(timeout time.Duration) (*rawClient, error) {
	cfg, err := h.wireConfig()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d, err := wire.Dial(ctx, cfg, h.endpoint)
	if err != nil {
		return nil, err
	}
	return &rawClient{d: d}, nil
}

func (c *rawClient) close() { c.d.Close() }

func (c *rawClient) send(r proto.Request) (string, error) {
	c.seq++
	id := "b" + strconv.Itoa(c.seq)
	proto.Stamp(r, id)
	frames, err := proto.Encode(r)
	if err != nil {
		return "", err
	}
	return id, c.d.Send(frames...)
}

// reply waits up to timeout for the reply with correlation id.
func (c *rawClient) reply(id string, timeout time.Duration) (proto.Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		f, err := c.d.Recv(ctx)
		if err != nil {
			return nil, fmt.Errorf("no reply to %s: %w", id, err)
		}
		m, err := proto.DecodeFrames(f)
		if err != nil {
			return nil, err
		}
		if r, ok := proto.AsReply(m); ok && proto.CorrelationOf(r) == id {
			if e, ok := r.(*proto.ErrorReply); ok {
				return r, fmt.Errorf("%s: %s", e.ErrorCode, e.Message)
			}
			return r, nil
		}
	}
}

func (c *rawClient) call(r proto.Request) (proto.Reply, error) {
	id, err := c.send(r)
	if err != nil {
		return nil, err
	}
	return c.reply(id, 10*time.Second)
}

// pipeline sends the requests of reqs in batches of 256 and checks every reply.
func (c *rawClient) pipeline(reqs []proto.Request) error {
	for len(reqs) > 0 {
		n := min(len(reqs), 256)
		ids := make([]string, 0, n)
		for _, r := range reqs[:n] {
			id, err := c.send(r)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if _, err := c.reply(id, 30*time.Second); err != nil {
				return err
			}
		}
		reqs = reqs[n:]
	}
	return nil
}
