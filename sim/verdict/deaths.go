package verdict

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// deathNotice is one claim that a party died.
type deathNotice struct {
	ev     event.Event
	victim string // node name
	what   string
}

// noFalseDeath: no party is declared dead (consumer_died, producer_lost, a
// CHANNEL_CLOSING_NOTIFY for a silent producer) while it goes on working: its
// own written/read events continue after the notice, or it was never killed,
// paused nor ended when the notice came (before run_end). A notice given while
// a partition cut the victim's host off from the hub's host is not false.
func (e *evaluator) noFalseDeath() Verdict {
	notices := e.deathNotices()
	var bad []string
	var evid []event.Event
	for _, n := range notices {
		if e.excepted("no_false_death", n.victim) || e.diedBefore(n.victim, n.ev.T) {
			continue
		}
		after := e.workAfter(n.victim, n.ev.T)
		switch {
		case e.cutOffFromHub(n.victim, n.ev.T):
			// A partition between the victim's host and the hub's: the broker
			// cannot tell a cut link from a death, and need not.
		case after >= workingAfter:
			bad = append(bad, fmt.Sprintf("%s declared dead (%s) %s after run start, then %d more written/read events of its own",
				n.victim, n.what, fmtDur(n.ev.T-e.t0), after))
			evid = append(evid, n.ev)
		case n.ev.T < e.end && !e.faulted(n.victim, n.ev.T) && !e.ended(n.victim, n.ev.T):
			bad = append(bad, fmt.Sprintf("%s declared dead (%s) %s after run start, never killed or paused and still running",
				n.victim, n.what, fmtDur(n.ev.T-e.t0)))
			evid = append(evid, n.ev)
		}
	}
	if len(bad) > 0 {
		return verdictOf(false, fmt.Sprintf("%d of %d death notice(s) false: %s", len(bad), len(notices), strings.Join(bad, "; ")), evid...)
	}
	return verdictOf(true, fmt.Sprintf("%d death notice(s), each about a party killed, paused or ended that did not go on working", len(notices)))
}

// deathNotices lists every death claim whose victim is a node of the run.
func (e *evaluator) deathNotices() []deathNotice {
	byPid := e.pidNames()
	var out []deathNotice
	for _, ev := range e.evs {
		switch {
		case ev.Kind == "consumer_died":
			pid, _ := ev.Num("consumer_pid")
			if name, ok := byPid[int(pid)]; ok {
				out = append(out, deathNotice{ev, name, "consumer_died " + ev.Str("reason") + " at " + ev.Node})
			}
		case ev.Kind == "producer_lost":
			if name := e.producerAt(e.channelOfNode(ev.Node), ev.T); name != "" {
				out = append(out, deathNotice{ev, name, "producer_lost at " + ev.Node})
			}
		case ev.Kind == "notification" && ev.Str("type") == "CHANNEL_CLOSING_NOTIFY" && ev.Str("reason") == "heartbeat_timeout":
			if name := e.producerAt(e.logicalOf(ev.Str("channel")), ev.T); name != "" && name != ev.Node {
				out = append(out, deathNotice{ev, name, "channel closed for heartbeat_timeout, told " + ev.Node})
			}
		}
	}
	return out
}

// pidNames maps the pid of every process the engine spawned to its name.
func (e *evaluator) pidNames() map[int]string {
	out := map[int]string{}
	for _, ev := range e.evs {
		if ev.Node == scenario.EngineName && ev.Kind == "spawned" {
			pid, _ := ev.Num("pid")
			out[int(pid)] = ev.Str("target")
		}
	}
	return out
}

// channelOfNode returns the logical channel of a plan node or intruder.
func (e *evaluator) channelOfNode(name string) string {
	if n, ok := e.plan.Node(name); ok {
		return n.Channel
	}
	for _, f := range e.plan.Faults {
		if f.Kind == scenario.FaultSchemaConflict && f.Name == name {
			return f.Channel
		}
	}
	return ""
}

// logicalOf maps a run channel name back to the scenario's.
func (e *evaluator) logicalOf(actual string) string {
	for l, a := range e.channels {
		if a == actual {
			return l
		}
	}
	return actual
}

// producerAt returns the producer of channel that registered last before t.
func (e *evaluator) producerAt(channel string, t int64) string {
	name := ""
	for _, ev := range e.evs {
		if ev.T > t {
			break
		}
		if ev.Kind == "registered" && e.channelOfNode(ev.Node) == channel {
			name = ev.Node
		}
	}
	return name
}

// workAfter counts name's own written/read events with count > 0 after t.
func (e *evaluator) workAfter(name string, t int64) int {
	n := 0
	for _, ev := range e.evs {
		if ev.T > t && ev.Node == name && (ev.Kind == "read" || ev.Kind == "written") && ev.Str("recorded_by") == "" {
			if c, _ := ev.Num("count"); c > 0 {
				n++
			}
		}
	}
	return n
}

// faulted reports whether a kill, kill_holding_lock, pause or producer_restart fault targeted
// name at or before t.
func (e *evaluator) faulted(name string, t int64) bool {
	for _, ev := range e.evs {
		if ev.T > t {
			break
		}
		if ev.Node == scenario.EngineName && ev.Kind == "fault" && ev.Str("target") == name {
			switch scenario.FaultKind(ev.Str("fault")) {
			case scenario.FaultKill, scenario.FaultKillHoldingLock, scenario.FaultPause, scenario.FaultProducerRestart:
				return true
			}
		}
	}
	return false
}

// ended reports whether name wrote its exit event (or was recorded dead) at
// or before t.
func (e *evaluator) ended(name string, t int64) bool {
	for _, ev := range e.evs {
		if ev.T > t {
			break
		}
		if ev.Node == name && ev.Kind == "exit" {
			return true
		}
	}
	return false
}

// cutOffFromHub reports whether a partition fault separated name's host from
// the hub's host at t: fired at or before t and neither ended (fault_end) nor
// healed (a heal fault of the same groups) by then.
func (e *evaluator) cutOffFromHub(name string, t int64) bool {
	n, ok := e.plan.Node(name)
	if !ok || n.Host == "" || n.Host == e.plan.Hub.Host {
		return false
	}
	for _, f := range e.plan.Faults {
		if f.Kind != scenario.FaultPartition || !separates(f, n.Host, e.plan.Hub.Host) {
			continue
		}
		start, fired := e.firedAt(f.ID, "fault")
		if !fired || start > t {
			continue
		}
		if end, ended := e.firedAt(f.ID, "fault_end"); ended && end <= t {
			continue
		}
		if e.healedBetween(f, start, t) {
			continue
		}
		return true
	}
	return false
}

// separates reports whether partition f cuts host a from host b (either
// direction: a one-way cut breaks the heartbeat or its reply all the same).
func separates(f scenario.FaultSpec, a, b string) bool {
	in := func(h string, group []string) bool { return slices.Contains(group, h) }
	return (in(a, f.Hosts) && in(b, f.Peers)) || (in(b, f.Hosts) && in(a, f.Peers))
}

// firedAt returns when the engine recorded event kind ("fault", "fault_end")
// for fault id.
func (e *evaluator) firedAt(id, kind string) (int64, bool) {
	for _, ev := range e.evs {
		if ev.Node == scenario.EngineName && ev.Kind == kind && ev.Str("id") == id {
			return ev.T, true
		}
	}
	return 0, false
}

// healedBetween reports whether a heal fault of partition f's groups fired in
// (from, to].
func (e *evaluator) healedBetween(f scenario.FaultSpec, from, to int64) bool {
	for _, h := range e.plan.Faults {
		if h.Kind != scenario.FaultHeal || !slices.Equal(h.Hosts, f.Hosts) || !slices.Equal(h.Peers, f.Peers) {
			continue
		}
		if t, ok := e.firedAt(h.ID, "fault"); ok && t > from && t <= to {
			return true
		}
	}
	return false
}

// diedBefore reports whether a process of node name ended shortly before t
// (within the hub's channel timeout + 1 s) and the node was started again
// after it (producer_restart): a notice then is about the dead incarnation,
// and the successor's own work does not make it false.
func (e *evaluator) diedBefore(name string, t int64) bool {
	window := int64(e.plan.Hub.ChannelTimeout)
	if window <= 0 {
		window = int64(10 * time.Second)
	}
	window += int64(time.Second)
	var died int64
	for _, ev := range e.evs {
		if ev.T > t {
			break
		}
		if ev.Node != scenario.EngineName || ev.Str("target") != name {
			continue
		}
		switch ev.Kind {
		case "process_end":
			died = ev.T
		case "spawned":
			if died > 0 && t-died <= window {
				return true
			}
		}
	}
	return false
}
