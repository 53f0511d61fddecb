// Command goconsumer is a consumer built on the hub library that runs as a
// node of a plh-sim scenario (`command = [...]`): it reads the channel the
// engine names in its PLH_* environment over the peer link (no shared
// memory) and reports what it read with package nodeevent: ready, read
// ranges every 100 ms, notifications, exit. suites/scenarios runs it under a
// pause and a kill.
//
// The first 8 bytes of a message are taken as its sequence number and bytes
// 16..23 as the writer's pid, as plh-node writes them; nothing else is
// checked.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/nodeevent"
)

func main() { os.Exit(run()) }

func run() int {
	env, err := nodeevent.LoadEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ev := nodeevent.FromEnv(env)
	fail := func(op string, err error) int {
		_ = ev.Emit("error", map[string]any{"op": op, "error": err.Error()})
		_ = ev.Exit(1, nodeevent.ReasonError)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	m, err := hub.NewMessenger(hub.MessengerConfig{HeartbeatInterval: 500 * time.Millisecond})
	if err != nil {
		return fail("messenger", err)
	}
	defer m.Close()
	if err := m.Connect(ctx, env.Broker, env.BrokerKey); err != nil {
		return fail("connect", err)
	}
	closed := make(chan struct{})
	c, err := hub.Connect(ctx, m, hub.ConsumerOptions{Channel: env.Channel, Name: env.Name,
		Callbacks: hub.ConsumerCallbacks{
			OnChannelClosing: func(reason string) {
				_ = ev.Notification("CHANNEL_CLOSING_NOTIFY", map[string]any{"reason": reason})
				close(closed)
			},
			OnProducerLost: func() { _ = ev.Emit("producer_lost", map[string]any{"channel": env.Channel}) },
		}})
	if err != nil {
		return fail("discover", err)
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		return fail("start", err)
	}
	_ = ev.Ready()

	_ = ev.Exit(0, read(ctx, c, ev, closed))
	return 0
}

// read receives until ctx ends (signal) or the channel closes (done), and
// reports contiguous ranges of sequences at most every 100 ms.
func read(ctx context.Context, c *hub.Consumer, ev *nodeevent.Emitter, closed <-chan struct{}) string {
	var r span
	flushAt := time.Now().Add(100 * time.Millisecond)
	for {
		select {
		case <-ctx.Done():
			r.flush(ev)
			return nodeevent.ReasonSignal
		case <-closed:
			r.flush(ev)
			return nodeevent.ReasonDone
		default:
		}
		rctx, cancel := context.WithDeadline(ctx, flushAt)
		b, err := c.Recv(rctx)
		cancel()
		if err == nil && len(b) >= 24 {
			r.add(ev, binary.LittleEndian.Uint64(b), int(binary.LittleEndian.Uint64(b[16:])), len(b))
		}
		if errors.Is(err, hub.ErrClosed) {
			r.flush(ev)
			return nodeevent.ReasonDone
		}
		if !time.Now().Before(flushAt) {
			r.flush(ev)
			flushAt = time.Now().Add(100 * time.Millisecond)
		}
	}
}

// span is a run of consecutive sequences from one writer not yet reported.
type span struct {
	first, last uint64
	from, bytes int
	open        bool
}

func (s *span) add(ev *nodeevent.Emitter, seq uint64, from, n int) {
	if s.open && (seq != s.last+1 || from != s.from) {
		s.flush(ev)
	}
	if !s.open {
		*s = span{first: seq, from: from, open: true}
	}
	s.last = seq
	s.bytes += n
}

func (s *span) flush(ev *nodeevent.Emitter) {
	if s.open {
		_ = ev.Read(s.first, s.last, s.bytes, s.from)
		s.open = false
	}
}
