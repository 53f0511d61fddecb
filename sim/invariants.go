package sim

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// What the engine gathers for verdict's built-in invariants
// (docs/scenarios.md, "Invariants"): the broker's registry against the
// parties alive at the end of the load phase, and a killed node's last
// totals from its status file.

// registryGrace bounds how long the engine asks the hub for its registry
// again while it disagrees with the live parties (a death is noticed
// asynchronously: pidfd, heartbeat timeouts).
const registryGrace = 3 * time.Second

// snapshotLine asks plh-hub for a registry event.
var snapshotLine = []byte(`{"cmd":"snapshot"}` + "\n")

// snapshotRegistry records, at the end of the load phase, a `parties` engine
// event and the hub's `registry` event after it, asking again (every 250 ms,
// up to registryGrace) while they disagree. It records nothing when the hub
// does not answer (the invariant is then inconclusive).
func (r *run) snapshotRegistry(ctx context.Context) {
	hub := r.sup.current(scenario.HubName)
	if hub == nil || !hub.running() {
		return
	}
	chans := make([]string, 0, len(r.channels))
	for _, a := range r.channels {
		chans = append(chans, a)
	}
	sort.Strings(chans)
	deadline := time.Now().Add(registryGrace)
	for {
		ps := r.parties()
		r.col.engine("parties", verdict.PartiesFields(ps))
		from := r.col.len()
		if err := hub.send(snapshotLine); err != nil {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, statsTimeout)
		reg, err := r.col.wait(wctx, from, func(ev event.Event) bool { return ev.Node == hub.name && ev.Kind == "registry" }, hub.done)
		cancel()
		if err != nil || len(verdict.RegistryDiff(ps, reg, chans)) == 0 || time.Now().After(deadline) {
			return
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// parties lists the running producers and consumers (intruders included).
func (r *run) parties() []verdict.Party {
	// The registry names each party by the pid it announced in its ready
	// event: on a host of its own (a PID namespace) that is not c.pid.
	ready, wirePid := map[string]bool{}, map[string]int{}
	for _, ev := range r.col.Timeline() {
		if ev.Kind == "ready" {
			ready[ev.Node] = true
			if pid, ok := ev.Num("pid"); ok && pid > 0 {
				wirePid[ev.Node] = int(pid)
			}
		}
	}
	pidOf := func(c *child) int {
		if p, ok := wirePid[c.name]; ok && len(r.plan.Hosts) > 0 {
			return p
		}
		return c.pid
	}
	var out []verdict.Party
	for _, c := range r.sup.list() {
		if c.role == scenario.HubName {
			continue
		}
		if !c.running() {
			if c.role == "producer" && r.endedWithin(c, r.channelTimeout()) {
				out = append(out, verdict.Party{Name: c.name, Role: c.role, Pid: pidOf(c),
					Channel: r.channels[r.channelOf(c.name)], Ready: ready[c.name], Gone: true})
			}
			continue
		}
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		out = append(out, verdict.Party{Name: c.name, Role: c.role, Pid: pidOf(c),
			Channel: r.channels[r.channelOf(c.name)], Ready: ready[c.name], Paused: paused})
	}
	return out
}

// defaultChannelTimeout is the broker's channel timeout when the scenario
// sets none (broker.DefaultConfig).
const defaultChannelTimeout = 10 * time.Second

// channelTimeout is how long the hub keeps a silent producer's channel (plus
// a second of sweep); a negative timeout (disabled) is forever.
func (r *run) channelTimeout() time.Duration {
	d := r.plan.Hub.ChannelTimeout.D()
	if d == 0 {
		d = defaultChannelTimeout
	}
	return d + time.Second
}

// endedWithin reports whether child c's process ended less than d ago.
func (r *run) endedWithin(c *child, d time.Duration) bool {
	now := proc.Now()
	for _, ev := range r.col.Timeline() {
		if ev.Node == scenario.EngineName && ev.Kind == "process_end" && ev.Str("target") == c.name {
			if pid, _ := ev.Num("pid"); int(pid) == c.pid {
				return now-ev.T < int64(d)
			}
		}
	}
	return false
}

// channelOf returns the logical channel of node name: a plan node's, or a
// schema_conflict intruder's.
func (r *run) channelOf(name string) string {
	if n, ok := r.plan.Node(name); ok {
		return n.Channel
	}
	for _, f := range r.plan.Faults {
		if f.Kind == scenario.FaultSchemaConflict && f.Name == name ||
			f.Kind == scenario.FaultConsumerChurn && f.NodeName() == name {
			return f.Channel
		}
	}
	return ""
}

// statusPath is the status file of node name (plh-node --status-file).
func statusPath(dir, name string) string { return filepath.Join(dir, "status", name) }

// statusMagic is plh-node's status file marker (noderole.StatusMagic).
const statusMagic = 0x706c682d73746174

// recordTail records what a node that died without an exit event did after
// its last aggregated event: its status file's total minus the counts it
// reported, as one `read` or `written` event with recorded_by plh-sim (the
// sequence range is known only by its end: last_seq, and from_pid).
func (s *supervisor) recordTail(c *child) {
	if c.role != "producer" && c.role != "consumer" || s.statusDir == "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(s.statusDir, c.name))
	if err != nil || len(b) < 32 || binary.NativeEndian.Uint64(b) != statusMagic {
		return
	}
	total := binary.NativeEndian.Uint64(b[8:])
	last := binary.NativeEndian.Uint64(b[16:])
	from := binary.NativeEndian.Uint64(b[24:])
	kind := "read"
	if c.role == "producer" {
		kind = "written"
	}
	var reported uint64
	for _, ev := range s.col.Timeline() {
		if ev.Node == c.name && ev.Kind == kind && ev.Fields["upstream"] == nil {
			n, _ := ev.Num("count")
			reported += uint64(n)
		}
	}
	if total <= reported {
		return
	}
	f := map[string]any{"count": total - reported, "last_seq": last, "recorded_by": scenario.EngineName,
		"tail": true}
	if from != 0 {
		f["from_pid"] = from
	}
	if s.channelOf != nil {
		f["channel"] = s.channelOf(c.name)
	}
	s.col.add(event.Event{T: proc.Now(), Node: c.name, Kind: kind, Fields: f})
}
