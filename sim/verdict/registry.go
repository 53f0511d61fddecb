package verdict

import (
	"fmt"
	"sort"

	"github.com/pylabhub/plh/internal/event"
)

// Party is one process the engine knows at the moment it reads the broker's
// registry (the `parties` engine event).
type Party struct {
	Name    string `json:"name"`
	Role    string `json:"role"`    // "producer" or "consumer"
	Pid     int    `json:"pid"`     //
	Channel string `json:"channel"` // the run's (actual) channel name
	Ready   bool   `json:"ready"`   // it wrote its ready event
	Paused  bool   `json:"paused"`  // SIGSTOPped now: either answer is right
	// Gone: a producer that ended less than the hub's channel timeout ago;
	// the broker drops its channel only at that timeout, so either answer is
	// right.
	Gone bool `json:"gone"`
}

// PartiesFields is the `parties` event of ps.
func PartiesFields(ps []Party) map[string]any {
	list := make([]any, 0, len(ps))
	for _, p := range ps {
		list = append(list, map[string]any{"name": p.Name, "role": p.Role, "pid": p.Pid,
			"channel": p.Channel, "ready": p.Ready, "paused": p.Paused, "gone": p.Gone})
	}
	return map[string]any{"parties": list}
}

// partiesOf reads a `parties` event back.
func partiesOf(ev event.Event) []Party {
	var out []Party
	list, _ := ev.Fields["parties"].([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		p := Party{}
		p.Name, _ = m["name"].(string)
		p.Role, _ = m["role"].(string)
		p.Channel, _ = m["channel"].(string)
		p.Ready, _ = m["ready"].(bool)
		p.Paused, _ = m["paused"].(bool)
		p.Gone, _ = m["gone"].(bool)
		if n, ok := toFloat(m["pid"]); ok {
			p.Pid = int(n)
		}
		out = append(out, p)
	}
	return out
}

// regEntry is one channel of a `registry` event (plh-hub's snapshot).
type regEntry struct {
	producer  int
	consumers []int
}

func registryOf(ev event.Event) map[string]regEntry {
	out := map[string]regEntry{}
	list, _ := ev.Fields["channels"].([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		name, _ := m["name"].(string)
		var e regEntry
		if n, ok := toFloat(m["producer_pid"]); ok {
			e.producer = int(n)
		}
		cons, _ := m["consumers"].([]any)
		for _, c := range cons {
			cm, _ := c.(map[string]any)
			if n, ok := toFloat(cm["pid"]); ok {
				e.consumers = append(e.consumers, int(n))
			}
		}
		out[name] = e
	}
	return out
}

// RegistryDiff compares the broker's registry (a `registry` event) with the
// parties alive at that moment, over the run's channels (actual names). It
// returns one line per disagreement, sorted; none means they are equal:
//   - a channel whose live, ready, running producer is not registered, or is
//     registered under another pid;
//   - a registered producer or consumer pid that is no live party of that
//     channel (stale: dead, or never one);
//   - a consumer registered more than once;
//   - a live, ready, running consumer of a registered channel that is absent.
//
// A paused party, and a producer gone less than the channel timeout ago, may
// be present or absent. Consumers of a channel that is not
// registered are not expected in it.
func RegistryDiff(parties []Party, reg event.Event, channels []string) []string {
	entries := registryOf(reg)
	byPid := map[int]Party{}
	for _, p := range parties {
		byPid[p.Pid] = p
	}
	var out []string
	for _, ch := range channels {
		e, registered := entries[ch]
		for _, p := range parties {
			if p.Channel != ch || p.Role != "producer" || !p.Ready || p.Paused || p.Gone {
				continue
			}
			switch {
			case !registered:
				out = append(out, fmt.Sprintf("%s: producer %s (pid %d) is alive, the channel is not registered", ch, p.Name, p.Pid))
			case e.producer != p.Pid && !liveOn(byPid, e.producer, ch, "producer"):
				out = append(out, fmt.Sprintf("%s: producer %s (pid %d) is alive, the registry names pid %d", ch, p.Name, p.Pid, e.producer))
			}
		}
		if !registered {
			continue
		}
		if e.producer != 0 && !liveOn(byPid, e.producer, ch, "producer") {
			out = append(out, fmt.Sprintf("%s: registered producer pid %d is no live producer of the channel", ch, e.producer))
		}
		seen := map[int]int{}
		for _, pid := range e.consumers {
			seen[pid]++
			if seen[pid] == 2 {
				out = append(out, fmt.Sprintf("%s: consumer pid %d (%s) registered more than once", ch, pid, nameOf(byPid, pid)))
			}
			if seen[pid] == 1 && !liveOn(byPid, pid, ch, "consumer") {
				out = append(out, fmt.Sprintf("%s: registered consumer pid %d (%s) is no live consumer of the channel", ch, pid, nameOf(byPid, pid)))
			}
		}
		for _, p := range parties {
			if p.Channel == ch && p.Role == "consumer" && p.Ready && !p.Paused && !p.Gone && seen[p.Pid] == 0 {
				out = append(out, fmt.Sprintf("%s: consumer %s (pid %d) is alive, not in the registry", ch, p.Name, p.Pid))
			}
		}
	}
	sort.Strings(out)
	return out
}

func liveOn(byPid map[int]Party, pid int, ch, role string) bool {
	p, ok := byPid[pid]
	return ok && p.Channel == ch && p.Role == role
}

func nameOf(byPid map[int]Party, pid int) string {
	if p, ok := byPid[pid]; ok {
		return p.Name
	}
	return "not a live process of the run"
}
