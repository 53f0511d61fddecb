package verdict

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// Built-in invariants (docs/scenarios.md, "Invariants"), checked after every
// run unless the scenario turned one off ([invariants] NAME = { off = "…" }).
// Each is reported like an expectation (type "invariant") with the number
// that decided it.

// Tolerances of the hub resource invariants.
const (
	// HubFDSlack and HubGoroutineSlack: how far above its baseline the hub
	// may stay once every node has ended (hub_resources_return), and how far
	// its run_end sample may exceed its t0 sample (hub_resources_steady).
	HubFDSlack        = 4
	HubGoroutineSlack = 8
	// PerSpawnFDs and PerSpawnGoroutines: what hub_resources_steady allows
	// more per node started between t0 and run_end (a connection, a pidfd
	// watch, the broker's and zmq4's per-peer goroutines).
	PerSpawnFDs        = 4
	PerSpawnGoroutines = 8
	// workingAfter: a party declared dead "went on working" when at least
	// this many of its own written/read events with count > 0 follow the
	// notice (one can be the flush of reads made before a pause).
	workingAfter = 2
)

// invariantChecks has one check per name of scenario.Invariants.
var invariantChecks = map[string]func(*evaluator) Verdict{
	"registry_matches":     (*evaluator).registryMatches,
	"consumers_read":       (*evaluator).consumersRead,
	"no_false_death":       (*evaluator).noFalseDeath,
	"ordered_complete":     (*evaluator).orderedComplete,
	"hub_resources_return": (*evaluator).hubResourcesReturn,
	"hub_resources_steady": (*evaluator).hubResourcesSteady,
}

// invariants checks every built-in invariant the plan did not turn off; one
// turned off is reported as passing with its reason.
func (e *evaluator) invariants() []Verdict {
	var out []Verdict
	for _, name := range scenario.Invariants {
		if off, ok := e.plan.Invariants[name]; ok && off.Off != "" {
			out = append(out, Verdict{Name: "invariant " + name, Type: "invariant", Status: StatusPass,
				Message: "turned off: " + off.Off})
			continue
		}
		v := invariantChecks[name](e)
		v.Name, v.Type = "invariant "+name, "invariant"
		if s := e.plan.Invariants[name]; len(s.Except) > 0 {
			v.Message += fmt.Sprintf(" (except %s: %s)", strings.Join(s.Except, ", "), s.Reason)
		}
		v.Evidence = capEvents(v.Evidence)
		out = append(out, v)
	}
	return out
}

// excepted reports whether the plan exempts node from invariant name.
func (e *evaluator) excepted(name, node string) bool {
	for _, g := range e.plan.Invariants[name].Except {
		if nodeMatch(g, node) {
			return true
		}
	}
	return false
}

func verdictOf(ok bool, msg string, ev ...event.Event) Verdict {
	st := StatusPass
	if !ok {
		st = StatusFail
	}
	return Verdict{Status: st, Message: msg, Evidence: ev}
}

func inconclusive(msg string) Verdict { return Verdict{Status: StatusInconclusive, Message: msg} }

// registryMatches: the last registry event of the hub against the parties
// event before it.
func (e *evaluator) registryMatches() Verdict {
	var reg, parties event.Event
	found := false
	for _, ev := range e.evs {
		if ev.Node == scenario.EngineName && ev.Kind == "parties" {
			parties = ev
		}
		if ev.Node == scenario.HubName && ev.Kind == "registry" && parties.Kind != "" {
			reg, found = ev, true
		}
	}
	if !found {
		return inconclusive("no registry snapshot at run_end (the hub was not running or did not answer)")
	}
	chans := make([]string, 0, len(e.channels))
	for _, a := range e.channels {
		chans = append(chans, a)
	}
	sort.Strings(chans)
	ps := partiesOf(parties)
	diff := RegistryDiff(ps, reg, chans)
	if len(diff) > 0 {
		return verdictOf(false, fmt.Sprintf("%d disagreement(s): %s", len(diff), e.logical(strings.Join(diff, "; "))), parties, reg)
	}
	return verdictOf(true, fmt.Sprintf("the registry holds exactly the %d live parties", len(ps)), parties, reg)
}

// logical replaces the run's channel names by the scenario's.
func (e *evaluator) logical(s string) string {
	for l, a := range e.channels {
		s = strings.ReplaceAll(s, a, l)
	}
	return s
}

// consumersRead: every consumer that was ready attached its segment (when it
// tried) and read at least one message (tail records included).
func (e *evaluator) consumersRead() Verdict {
	var bad []string
	var ev []event.Event
	n := 0
	for _, name := range e.readyNodes("consumer") {
		if e.excepted("consumers_read", name) {
			continue
		}
		n++
		read := 0.0
		for _, x := range e.evs {
			if x.Node != name {
				continue
			}
			switch {
			case x.Kind == "attached" && x.Fields["shm"] == false:
				bad = append(bad, fmt.Sprintf("%s could not attach: %s", name, x.Str("reason")))
				ev = append(ev, x)
			case x.Kind == "read" && x.Fields["upstream"] == nil:
				c, _ := x.Num("count")
				read += c
			}
		}
		if read == 0 {
			bad = append(bad, name+" read 0 messages")
		}
	}
	if n == 0 {
		return verdictOf(true, "no consumer was ready")
	}
	if len(bad) > 0 {
		return verdictOf(false, strings.Join(bad, "; "), ev...)
	}
	return verdictOf(true, fmt.Sprintf("each of %d consumers attached and read", n))
}

// readyNodes lists the nodes of role that wrote a ready event, in order.
func (e *evaluator) readyNodes(role string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ev := range e.evs {
		if ev.Kind == "ready" && ev.Str("role") == role && !seen[ev.Node] {
			seen[ev.Node] = true
			out = append(out, ev.Node)
		}
	}
	return out
}

// hubSample returns the hub's resource sample of phase (the last one).
func (e *evaluator) hubSample(phase string) (event.Event, bool) {
	var out event.Event
	ok := false
	for _, ev := range e.evs {
		if ev.Node == scenario.HubName && ev.Kind == "resource" && ev.Str("phase") == phase {
			out, ok = ev, true
		}
	}
	return out, ok
}

// hubResourcesReturn: once every node ended, the hub's fds and goroutines
// are back within the slack of its baseline (same hub process).
func (e *evaluator) hubResourcesReturn() Verdict {
	q, ok := e.hubSample("quiesced")
	if !ok {
		return inconclusive("no hub sample once every node had ended (the hub was gone or did not answer)")
	}
	pid, _ := q.Num("pid")
	var base event.Event
	found := false
	for _, ev := range e.evs {
		if p, _ := ev.Num("pid"); ev.Node == scenario.HubName && ev.Kind == "resource" && ev.Str("phase") == "baseline" && p == pid {
			base, found = ev, true
		}
	}
	if !found {
		return inconclusive("no baseline sample of the hub process that was stopped")
	}
	return compareGrowth(base, q, "baseline", "after every node ended", HubFDSlack, HubGoroutineSlack)
}

// hubResourcesSteady: the hub at run_end holds no more fds and goroutines
// than at t0, within the slack plus an allowance per node started meanwhile.
// A hub restarted in between is not compared.
func (e *evaluator) hubResourcesSteady() Verdict {
	a, ok1 := e.hubSample("t0")
	b, ok2 := e.hubSample("run_end")
	if !ok1 || !ok2 {
		return inconclusive("no hub sample at t0 and at run_end")
	}
	pa, _ := a.Num("pid")
	pb, _ := b.Num("pid")
	if pa != pb {
		return verdictOf(true, "not compared: the hub was restarted during the run", a, b)
	}
	spawned := 0
	for _, ev := range e.evs {
		if ev.Node == scenario.EngineName && ev.Kind == "spawned" && ev.T > a.T && ev.T < b.T && ev.Str("role") != scenario.HubName {
			spawned++
		}
	}
	v := compareGrowth(a, b, "t0", "run_end", HubFDSlack+PerSpawnFDs*spawned, HubGoroutineSlack+PerSpawnGoroutines*spawned)
	if spawned > 0 {
		v.Message += fmt.Sprintf(" (%d node(s) started meanwhile)", spawned)
	}
	return v
}

// compareGrowth checks that fds and goroutines of b exceed those of a by at
// most the slacks.
func compareGrowth(a, b event.Event, aName, bName string, fdSlack, gSlack int) Verdict {
	fa, _ := a.Num("fds")
	fb, _ := b.Num("fds")
	msg := fmt.Sprintf("fds %v at %s, %v %s (allowed +%d)", fa, aName, fb, bName, fdSlack)
	ok := fb-fa <= float64(fdSlack)
	ga, okA := a.Num("goroutines")
	gb, okB := b.Num("goroutines")
	if okA && okB {
		msg += fmt.Sprintf("; goroutines %v, %v (allowed +%d)", ga, gb, gSlack)
		ok = ok && gb-ga <= float64(gSlack)
	} else {
		msg += "; goroutines not known (no stats event)"
	}
	return verdictOf(ok, msg, a, b)
}
