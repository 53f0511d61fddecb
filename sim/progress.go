package sim

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
)

// notable event kinds are printed as they happen.
var notable = map[string]bool{
	"ready": true, "registered": true, "discovered": true, "attached": true,
	"consumer_joined": true, "consumer_left": true, "consumer_died": true,
	"notification": true, "broker_lost": true, "broker_reconnected": true,
	"checksum_error": true, "reorder": true, "error": true, "exit": true,
	"fault": true, "fault_failed": true, "fault_end": true, "run_start": true,
	"interrupted": true, scenario.KindLockHeld: true, scenario.KindLockReclaimed: true, scenario.KindLockReclaimFailed: true,
}

// progress prints a run as it goes: one plain line per notable event, and on a
// terminal also a status line rewritten in place (time, events, faults).
type progress struct {
	w        io.Writer
	terminal bool
	plan     *scenario.Plan

	mu     sync.Mutex
	t0     int64
	events int
	faults int
	stalls int
	done   bool
}

func newProgress(w io.Writer, terminal bool, p *scenario.Plan) *progress {
	return &progress{w: w, terminal: terminal, plan: p}
}

func (g *progress) start(t0 int64) {
	if g.w == nil {
		return
	}
	g.mu.Lock()
	g.t0 = t0
	g.mu.Unlock()
}

func (g *progress) event(ev event.Event) {
	if g.w == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return
	}
	g.events++
	switch ev.Kind {
	case "fault":
		g.faults++
	case "backpressure_stall":
		g.stalls++
	}
	if g.terminal {
		fmt.Fprint(g.w, "\r\033[K")
	}
	if notable[ev.Kind] && !(ev.Node == scenario.EngineName && ev.Kind == "exit") {
		fmt.Fprintf(g.w, "%s %-10s %-18s %s\n", g.stamp(ev.T), ev.Node, ev.Kind, brief(ev))
	}
	if g.terminal {
		fmt.Fprintf(g.w, "%s  %s: %d events, %d/%d faults fired, %d stalls", g.stamp(proc.Now()), g.plan.Name,
			g.events, g.faults, len(g.plan.Faults), g.stalls)
	}
}

// stamp formats t relative to run start ("  +1.234s", or "setup" before it).
func (g *progress) stamp(t int64) string {
	if g.t0 == 0 {
		return "   setup"
	}
	return fmt.Sprintf("%+8.3fs", time.Duration(t-g.t0).Seconds())
}

func (g *progress) finish() {
	if g.w == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.terminal && !g.done {
		fmt.Fprint(g.w, "\r\033[K")
	}
	g.done = true
}

// brief is the one-line summary of an event's fields.
func brief(ev event.Event) string {
	s := ""
	for _, k := range []string{"type", "fault", "target", "id", "channel", "reason", "detail", "error", "code", "signal", "endpoint", "consumer_pid", "slot_index"} {
		if v, ok := ev.Fields[k]; ok && v != "" && v != nil {
			s += fmt.Sprintf("%s=%v ", k, v)
		}
	}
	return s
}
