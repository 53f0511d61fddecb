package verdict

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// Sequence accounting across nodes: per producer incarnation (a producer
// process, named by its pid in the read events' from_pid), what each consumer
// read against what the producer wrote.

// defaultSlots is plh-node's --slots default.
const defaultSlots = 8

// incarnation is one producer process.
type incarnation struct {
	node    string
	pid     int
	written float64 // sum of its written counts (tail record included)
}

// incarnations lists the producer processes of a logical channel, in the
// order they became ready.
func (e *evaluator) incarnations(channel string) []*incarnation {
	var out []*incarnation
	byPid := map[int]*incarnation{}
	for _, ev := range e.evs {
		if ev.Kind == "ready" && ev.Str("role") == "producer" && e.channelOfNode(ev.Node) == channel {
			pid, _ := ev.Num("pid")
			in := &incarnation{node: ev.Node, pid: int(pid)}
			byPid[in.pid] = in
			out = append(out, in)
		}
	}
	// written events carry no pid: they belong to the node's incarnation
	// ready last before them.
	cur := map[string]*incarnation{}
	for _, ev := range e.evs {
		if ev.Kind == "ready" {
			pid, _ := ev.Num("pid")
			if in, ok := byPid[int(pid)]; ok {
				cur[ev.Node] = in
			}
		}
		if ev.Kind == "written" && ev.Fields["upstream"] == nil {
			if in, ok := cur[ev.Node]; ok {
				c, _ := ev.Num("count")
				in.written += c
			}
		}
	}
	return out
}

// readFrom sums consumer's read counts of incarnation pid.
func (e *evaluator) readFrom(consumer string, pid int) float64 {
	var n float64
	for _, ev := range e.evs {
		if ev.Node == consumer && ev.Kind == "read" && ev.Fields["upstream"] == nil {
			if f, _ := ev.Num("from_pid"); int(f) == pid {
				c, _ := ev.Num("count")
				n += c
			}
		}
	}
	return n
}

// consumersOf lists the consumer nodes of a logical channel matching pattern
// ("" = all).
func (e *evaluator) consumersOf(channel, pattern string) []string {
	var out []string
	for _, n := range e.plan.Nodes {
		if n.Role == "consumer" && n.Channel == channel && nodeMatch(pattern, n.Name) {
			out = append(out, n.Name)
		}
	}
	return out
}

func nodeMatch(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// checkDelivery evaluates a delivery expectation over the whole run:
// exactly_once, the reads of the channel's consumers (those matching node)
// sum to what each producer incarnation wrote; each, every one of them read
// all of it.
func (e *evaluator) checkDelivery(x scenario.ExpectSpec, v Verdict) Verdict {
	ins := e.incarnations(x.Channel)
	cons := e.consumersOf(x.Channel, x.Node)
	if len(ins) == 0 || len(cons) == 0 {
		v.Status, v.Message = StatusInconclusive, fmt.Sprintf("channel %s: %d producer incarnation(s), %d consumer(s)", x.Channel, len(ins), len(cons))
		return v
	}
	v.Status = StatusPass
	var parts []string
	for _, in := range ins {
		var per []string
		var sum float64
		for _, c := range cons {
			r := e.readFrom(c, in.pid)
			sum += r
			per = append(per, fmt.Sprintf("%s %v", c, r))
			if x.Delivery == "each" && r != in.written {
				v.Status = StatusFail
			}
		}
		if x.Delivery == "exactly_once" && sum != in.written {
			v.Status = StatusFail
		}
		parts = append(parts, fmt.Sprintf("%s (pid %d) wrote %v, read %v (%s)", in.node, in.pid, in.written, sum, strings.Join(per, ", ")))
	}
	v.Message = x.Delivery + ": " + strings.Join(parts, "; ")
	return v
}

// orderedChannels returns the logical channels written over shared memory
// under Single_reader or Sync_reader, with their ring capacity.
func (e *evaluator) orderedChannels() map[string]int {
	out := map[string]int{}
	for _, n := range e.plan.Nodes {
		if n.Role == "producer" && n.Shm != nil && *n.Shm && (n.Policy == "Single_reader" || n.Policy == "Sync_reader") {
			slots := n.Slots
			if slots == 0 {
				slots = defaultSlots
			}
			out[n.Channel] = slots
		}
	}
	return out
}

// orderedComplete: under the ordered policies, every consumer read every
// sequence each producer incarnation committed while it read: no sequence
// lost between its first and last read (gap events), its last read no more
// than the ring's capacity behind what the producer had written 200 ms
// before that read, and an incarnation that wrote more than a ring while the
// consumer ran was read at all.
func (e *evaluator) orderedComplete() Verdict {
	chans := e.orderedChannels()
	if len(chans) == 0 {
		return verdictOf(true, "no channel under Single_reader or Sync_reader")
	}
	names := make([]string, 0, len(chans))
	for c := range chans {
		names = append(names, c)
	}
	sort.Strings(names)
	var bad []string
	var evid []event.Event
	checked := 0
	for _, ch := range names {
		ins := e.incarnations(ch)
		for _, c := range e.consumersOf(ch, "") {
			if !e.wasReady(c) || e.excepted("ordered_complete", c) {
				continue
			}
			for _, in := range ins {
				checked++
				if msg, ev := e.orderedOne(c, in, chans[ch]); msg != "" {
					bad = append(bad, msg)
					evid = append(evid, ev...)
				}
			}
		}
	}
	if len(bad) > 0 {
		return verdictOf(false, strings.Join(bad, "; "), evid...)
	}
	return verdictOf(true, fmt.Sprintf("%d consumer × producer incarnation pair(s) complete", checked))
}

func (e *evaluator) wasReady(name string) bool {
	_, ok := e.first(func(ev event.Event) bool { return ev.Node == name && ev.Kind == "ready" })
	return ok
}

// orderedOne checks consumer c against incarnation in ("" when complete).
func (e *evaluator) orderedOne(c string, in *incarnation, slots int) (string, []event.Event) {
	var lost, lastRead float64
	var lastOwn event.Event
	read := false
	var gaps []event.Event
	var from, to int64 // c's life: ready .. last event
	for _, ev := range e.evs {
		if ev.Node != c {
			continue
		}
		if ev.Kind == "ready" && from == 0 {
			from = ev.T
		}
		to = ev.T
		f, _ := ev.Num("from_pid")
		if int(f) != in.pid {
			continue
		}
		switch ev.Kind {
		case "gap":
			l, _ := ev.Num("lost")
			lost += l
			gaps = append(gaps, ev)
		case "read":
			if ev.Fields["upstream"] != nil {
				continue
			}
			read = true
			l, _ := ev.Num("last_seq")
			lastRead = max(lastRead, l)
			if ev.Str("recorded_by") == "" {
				lastOwn = ev
			}
		}
	}
	if lost > 0 {
		return fmt.Sprintf("%s missed %v sequence(s) of %s (pid %d)", c, lost, in.node, in.pid), gaps
	}
	written, wroteWhile := -1.0, 0.0
	for _, ev := range e.evs {
		if ev.Node != in.node || ev.Kind != "written" || ev.Fields["upstream"] != nil || !e.isIncarnation(in, ev.T) {
			continue
		}
		if ev.T >= from && ev.T <= to {
			c, _ := ev.Num("count")
			wroteWhile += c
		}
		if read && ev.T <= lastOwn.T-200e6 {
			l, _ := ev.Num("last_seq")
			written = max(written, l)
		}
	}
	if !read {
		if wroteWhile > float64(slots) {
			return fmt.Sprintf("%s read nothing of %s (pid %d), which wrote %v while it ran", c, in.node, in.pid, wroteWhile), nil
		}
		return "", nil
	}
	if written-lastRead > float64(slots) {
		return fmt.Sprintf("%s stopped at sequence %v of %s (pid %d), which had written up to %v 200 ms before (ring of %d)",
			c, lastRead, in.node, in.pid, written, slots), []event.Event{lastOwn}
	}
	return "", nil
}

// isIncarnation reports whether a written event of in.node at t belongs to
// in (the node's process ready last before t has in's pid).
func (e *evaluator) isIncarnation(in *incarnation, t int64) bool {
	pid := 0
	for _, ev := range e.evs {
		if ev.T > t {
			break
		}
		if ev.Node == in.node && ev.Kind == "ready" {
			p, _ := ev.Num("pid")
			pid = int(p)
		}
	}
	return pid == in.pid
}
