package sim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// Resource watch (docs/scenarios.md, "Resource watch"): every process the
// engine started is sampled every resourceEvery into `resource` events under
// the process's own name (recorded_by plh-sim): open descriptors
// (/proc/PID/fd), threads and RSS (/proc/PID/status). Goroutines come from the
// process itself: plh-hub and plh-node emit `stats` events, and answer a
// {"cmd":"stats"} control line with one. The hub is also sampled at marked
// moments (phase): `baseline` right after it is ready (no node yet), `t0`,
// `run_end`, and `quiesced` once every node has ended and before the hub is
// stopped; verdict's hub_resources_* invariants compare them.

// resourceEvery is the period of the background samples.
const resourceEvery = 500 * time.Millisecond

// statsTimeout bounds the wait for a stats event after a stats request.
const statsTimeout = 2 * time.Second

// sample reads the resources of pid from /proc.
func sample(pid int) (map[string]any, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	f := map[string]any{"pid": pid, "fds": len(names), "recorded_by": scenario.EngineName}
	st, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sc := bufio.NewScanner(st)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "Threads":
			f["threads"] = n
		case "VmRSS":
			f["rss_kb"] = n
		}
	}
	return f, nil
}

// watchResources samples every running child until ctx ends.
func (r *run) watchResources(ctx context.Context) {
	t := time.NewTicker(resourceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range r.sup.list() {
			if !c.running() {
				continue
			}
			if f, err := sample(c.pid); err == nil {
				r.col.add(event.Event{T: proc.Now(), Node: c.name, Kind: "resource", Fields: f})
			}
		}
	}
}

// statsLine asks a role process for a stats event.
var statsLine = []byte(`{"cmd":"stats"}` + "\n")

// probeHub samples the current hub: /proc plus the goroutines of a stats event
// it is asked for (absent when none came within statsTimeout).
func (r *run) probeHub(ctx context.Context) (*child, map[string]any, bool) {
	c := r.sup.current(scenario.HubName)
	if c == nil || !c.running() {
		return nil, nil, false
	}
	from := r.col.len()
	if err := c.send(statsLine); err != nil {
		return nil, nil, false
	}
	wctx, cancel := context.WithTimeout(ctx, statsTimeout)
	st, err := r.col.wait(wctx, from, func(ev event.Event) bool { return ev.Node == c.name && ev.Kind == "stats" }, c.done)
	cancel()
	f, serr := sample(c.pid)
	if serr != nil {
		return nil, nil, false
	}
	if err == nil {
		if g, ok := st.Num("goroutines"); ok {
			f["goroutines"] = int64(g)
		}
	}
	return c, f, true
}

// sampleHub records a `resource` event of the current hub marked with phase.
func (r *run) sampleHub(ctx context.Context, phase string) {
	c, f, ok := r.probeHub(ctx)
	if !ok {
		return
	}
	f["phase"] = phase
	r.col.add(event.Event{T: proc.Now(), Node: c.name, Kind: "resource", Fields: f})
}

// quiesceHub samples the hub once every node has ended, until its fds and
// goroutines are back within verdict's slack of its baseline or
// quiesceTimeout passed, and records the last sample with phase "quiesced".
func (r *run) quiesceHub() {
	base, ok := r.hubBaseline()
	if !ok {
		return
	}
	deadline := time.Now().Add(quiesceTimeout)
	for {
		c, f, ok := r.probeHub(context.Background())
		if !ok {
			return
		}
		fds, _ := toInt(f["fds"])
		g, _ := toInt(f["goroutines"])
		settled := fds <= base.fds+verdict.HubFDSlack && g <= base.goroutines+verdict.HubGoroutineSlack
		if settled || time.Now().After(deadline) {
			f["phase"] = "quiesced"
			r.col.add(event.Event{T: proc.Now(), Node: c.name, Kind: "resource", Fields: f})
			return
		}
		t := time.NewTimer(100 * time.Millisecond)
		<-t.C
	}
}

// quiesceTimeout bounds how long the engine waits for the hub to settle.
const quiesceTimeout = 3 * time.Second

type hubBase struct{ pid, fds, goroutines int }

// hubBaseline returns the baseline sample of the current hub process.
func (r *run) hubBaseline() (hubBase, bool) {
	c := r.sup.current(scenario.HubName)
	if c == nil || !c.running() {
		return hubBase{}, false
	}
	for _, ev := range r.col.Timeline() {
		if ev.Node == c.name && ev.Kind == "resource" && ev.Str("phase") == "baseline" {
			if pid, _ := ev.Num("pid"); int(pid) == c.pid {
				fds, _ := ev.Num("fds")
				g, _ := ev.Num("goroutines")
				return hubBase{pid: c.pid, fds: int(fds), goroutines: int(g)}, true
			}
		}
	}
	return hubBase{}, false
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	}
	return 0, false
}
