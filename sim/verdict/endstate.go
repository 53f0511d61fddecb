package verdict

import (
	"fmt"
	"path"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// lastEnd returns the last process_end event of node name (the hub may have
// several instances; the last one is how it ended).
func (e *evaluator) lastEnd(name string) (event.Event, bool) {
	var out event.Event
	found := false
	for _, ev := range e.evs {
		if ev.Node == scenario.EngineName && ev.Kind == "process_end" && ev.Str("target") == name {
			out, found = ev, true
		}
	}
	return out, found
}

// ownExit returns the exit event the node wrote itself, if any (the last one).
func (e *evaluator) ownExit(name string) (event.Event, bool) {
	var out event.Event
	found := false
	for _, ev := range e.evs {
		if ev.Node == name && ev.Kind == "exit" && ev.Str("recorded_by") == "" {
			out, found = ev, true
		}
	}
	return out, found
}

// exitOK checks one process_end against an exit mode.
func exitOK(end event.Event, mode scenario.ExitMode) (bool, string) {
	code, _ := end.Num("code")
	sig := end.Str("signal")
	forced, _ := end.Fields["forced"].(bool)
	stopped, _ := end.Fields["stopped"].(bool)
	how := fmt.Sprintf("exit code %v", code)
	if sig != "" {
		how = "killed by " + sig
	}
	if forced {
		how += " (did not stop within stop_grace after SIGTERM: killed)"
	}
	switch mode {
	case scenario.ExitClean:
		return code == 0 && sig == "" && !forced, how
	case scenario.ExitFailed:
		return code > 0 && !forced, how
	case scenario.ExitKilled:
		return sig != "" && !stopped, how
	}
	return true, how
}

// checkExit evaluates an exit expectation: code and/or reason of every node
// matching x.Node.
func (e *evaluator) checkExit(x scenario.ExpectSpec, v Verdict) Verdict {
	v.Status = StatusPass
	var msgs []string
	matched := false
	for _, name := range e.nodeNames() {
		if ok, _ := path.Match(x.Node, name); !ok {
			continue
		}
		matched = true
		end, ok := e.lastEnd(name)
		if !ok {
			v.Status = StatusFail
			msgs = append(msgs, name+" never ran")
			continue
		}
		v.Evidence = append(v.Evidence, end)
		code, _ := end.Num("code")
		if x.Code != nil && int(code) != *x.Code {
			v.Status = StatusFail
			msgs = append(msgs, fmt.Sprintf("%s exited with code %v, want %d", name, code, *x.Code))
		}
		if x.Reason != "" {
			reason := "killed"
			if own, ok := e.ownExit(name); ok {
				reason = own.Str("reason")
				v.Evidence = append(v.Evidence, own)
			}
			if reason != x.Reason {
				v.Status = StatusFail
				msgs = append(msgs, fmt.Sprintf("%s exit reason %q, want %q", name, reason, x.Reason))
			}
		}
	}
	if !matched {
		v.Status = StatusFail
		msgs = append(msgs, "no process named "+x.Node+" ran")
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "as expected")
	}
	v.Message = strings.Join(msgs, "; ")
	v.Evidence = capEvents(v.Evidence)
	return v
}

// nodeNames returns the hub, the plan's nodes and any node spawned by a fault.
func (e *evaluator) nodeNames() []string {
	seen := map[string]bool{scenario.HubName: true}
	names := []string{scenario.HubName}
	for _, n := range e.plan.Nodes {
		if !seen[n.Name] {
			seen[n.Name] = true
			names = append(names, n.Name)
		}
	}
	for _, ev := range e.evs {
		if ev.Node == scenario.EngineName && ev.Kind == "spawned" && !seen[ev.Str("target")] {
			seen[ev.Str("target")] = true
			names = append(names, ev.Str("target"))
		}
	}
	return names
}

// endState gives the implicit checks every run gets: nothing left running, no
// segment left behind (except after a producer that was killed), and every
// node ended as its exit mode says.
func (e *evaluator) endState() []Verdict {
	var out []Verdict
	st, ok := e.first(func(ev event.Event) bool { return ev.Node == scenario.EngineName && ev.Kind == "end_state" })
	if !ok {
		return []Verdict{{Name: "end state", Type: "end_state", Status: StatusInconclusive, Message: "no end_state record"}}
	}
	leaked := strs(st.Fields["leaked"])
	v := Verdict{Name: "end state: no process left running", Type: "end_state", Status: StatusPass,
		Message: "every process group is gone", Evidence: []event.Event{st}}
	if len(leaked) > 0 {
		v.Status, v.Message = StatusFail, "process groups still alive after their leader ended: "+strings.Join(leaked, ", ")
	}
	out = append(out, v)

	killed := map[string]bool{} // channels whose producer died by a signal
	for _, n := range e.plan.Nodes {
		if end, ok := e.lastEnd(n.Name); ok && n.Role == "producer" && end.Str("signal") != "" {
			killed[n.Channel] = true
		}
	}
	var bad, orphans []string
	for _, ch := range strs(st.Fields["leftover_segments"]) {
		if killed[ch] {
			orphans = append(orphans, ch)
		} else {
			bad = append(bad, ch)
		}
	}
	v = Verdict{Name: "end state: no segment left behind", Type: "end_state", Status: StatusPass,
		Message: "no segment of the run's channels left in /dev/shm", Evidence: []event.Event{st}}
	if len(orphans) > 0 {
		v.Message = "only segments of killed producers were left (swept): " + strings.Join(orphans, ", ")
	}
	if len(bad) > 0 {
		v.Status, v.Message = StatusFail, "segments left behind (swept by the engine): "+strings.Join(bad, ", ")
	}
	out = append(out, v)

	modes := map[string]scenario.ExitMode{scenario.HubName: e.plan.Hub.Exit}
	for _, n := range e.plan.Nodes {
		modes[n.Name] = n.Exit
	}
	for _, name := range e.nodeNames() {
		mode, ok := modes[name]
		if !ok || mode == scenario.ExitAny {
			continue
		}
		v := Verdict{Name: fmt.Sprintf("end state: %s exited %s", name, mode), Type: "end_state"}
		end, ok := e.lastEnd(name)
		if !ok {
			v.Status, v.Message = StatusFail, name+" never ran"
			out = append(out, v)
			continue
		}
		good, how := exitOK(end, mode)
		v.Status, v.Message, v.Evidence = StatusPass, how, []event.Event{end}
		if own, ok := e.ownExit(name); ok {
			v.Evidence = append(v.Evidence, own)
		}
		if !good {
			v.Status = StatusFail
		}
		out = append(out, v)
	}
	return out
}

// strs reads a JSON list of strings.
func strs(v any) []string {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = l
	}
	return out
}
