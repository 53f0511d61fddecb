package nodeevent

import (
	"io"
	"os"
	"sync"

	"github.com/pylabhub/plh/internal/event"
)

// Exit reasons of the exit event.
const (
	ReasonDone   = "done"   // the work ended by itself (count reached, channel closed)
	ReasonSignal = "signal" // SIGINT/SIGTERM: the engine stops it at the end of a run
	ReasonError  = "error"  // it failed
)

// Emitter writes the events of one node. Its methods return the write error
// (a closed stdout must not crash a program; most callers ignore it).
type Emitter struct {
	w       *event.Writer
	role    string
	channel string

	mu            sync.Mutex
	written, read uint64
}

// New returns an Emitter writing to w for the node name, of role
// ("producer" or "consumer") on channel (the actual channel name, as in
// PLH_CHANNEL).
func New(w io.Writer, name, role, channel string) *Emitter {
	return &Emitter{w: event.NewWriter(w, name), role: role, channel: channel}
}

// FromEnv returns an Emitter on stdout for the node the environment names.
func FromEnv(env Env) *Emitter { return New(os.Stdout, env.Name, env.Role, env.Channel) }

// Ready says the node can be used: registered (producer) or connected
// (consumer). The engine waits for it before the run starts.
func (e *Emitter) Ready() error {
	return e.w.Emit("ready", map[string]any{"role": e.role, "channel": e.channel, "pid": os.Getpid()})
}

// Written reports the messages with sequences first..last (inclusive) that the
// producer handed to the channel, bytes in all.
func (e *Emitter) Written(first, last uint64, bytes int) error {
	n := last - first + 1
	e.mu.Lock()
	e.written += n
	e.mu.Unlock()
	return e.w.Emit("written", map[string]any{"channel": e.channel, "count": n, "first_seq": first, "last_seq": last, "bytes": bytes})
}

// Read reports the messages with sequences first..last that the consumer read
// from the producer process fromPid (0: unknown), bytes in all. last-first+1
// is the count: report a jump as two calls.
func (e *Emitter) Read(first, last uint64, bytes int, fromPid int) error {
	n := last - first + 1
	e.mu.Lock()
	e.read += n
	e.mu.Unlock()
	f := map[string]any{"channel": e.channel, "count": n, "first_seq": first, "last_seq": last, "bytes": bytes}
	if fromPid > 0 {
		f["from_pid"] = fromPid
	}
	return e.w.Emit("read", f)
}

// Notification reports a broker notification of wire type typ
// (CHANNEL_CLOSING_NOTIFY, CONSUMER_DIED_NOTIFY, ...) with its body fields
// (reason, consumer_pid, ...).
func (e *Emitter) Notification(typ string, fields map[string]any) error {
	f := map[string]any{"type": typ, "channel": e.channel}
	for k, v := range fields {
		f[k] = v
	}
	return e.w.Emit("notification", f)
}

// Exit is the last line: the exit status the program is about to return,
// why (ReasonDone, ReasonSignal, ReasonError) and the totals of Written and
// Read.
func (e *Emitter) Exit(code int, reason string) error {
	e.mu.Lock()
	f := map[string]any{"code": code, "reason": reason}
	if e.role == "producer" {
		f["written"] = e.written
	} else {
		f["read"] = e.read
	}
	e.mu.Unlock()
	return e.w.Emit("exit", f)
}

// Emit writes an event of any other kind of docs/events.md.
func (e *Emitter) Emit(kind string, fields map[string]any) error { return e.w.Emit(kind, fields) }
