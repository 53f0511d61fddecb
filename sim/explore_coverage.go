package sim

import (
	"fmt"
	"sort"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// stateKinds are the events that mark a change of a node's state; explore
// counts the transitions between them (per role) as coverage.
var stateKinds = map[string]bool{
	"ready": true, "attached": true, "broker_lost": true, "broker_reconnected": true, "producer_lost": true,
	"notification": true, "consumer_died": true, "consumer_joined": true, "consumer_left": true,
	"backpressure_stall_start": true, "checksum_error": true, "gap": true, "reorder": true, "error": true, "exit": true,
}

// features returns what a run reached, as a set of strings: event kinds per
// role, notification types with their reason, death reasons, fault outcomes,
// exits, recovery paths (lock reclaims, reconnects, segment checks), each
// node's state transitions (role/from>to) and the invariants' statuses. A run
// that adds a feature not seen before in the exploration joins the corpus.
func features(evs []event.Event, rep *verdict.Report) map[string]bool {
	out := map[string]bool{}
	roles := map[string]string{scenario.HubName: scenario.HubName, scenario.EngineName: "engine"}
	for _, ev := range evs {
		if ev.Node == scenario.EngineName && ev.Kind == "spawned" {
			roles[ev.Str("target")] = ev.Str("role")
		}
	}
	last := map[string]string{}
	for _, ev := range evs {
		role := roles[ev.Node]
		if role == "" {
			role = "node"
		}
		if ev.Kind == "resource" || ev.Kind == "stats" || ev.Kind == "written" || ev.Kind == "read" {
			continue // steady state: no coverage of its own
		}
		out["kind:"+role+"/"+ev.Kind] = true
		state := ev.Kind
		switch ev.Kind {
		case "notification":
			state = "notification " + ev.Str("type")
			out[fmt.Sprintf("notification:%s/%s/%s", role, ev.Str("type"), ev.Str("reason")+ev.Str("event"))] = true
		case "consumer_died":
			out["died:"+ev.Str("reason")] = true
		case "fault":
			out["fault:"+ev.Str("fault")+"/fired"] = true
		case "fault_failed":
			out["fault:"+ev.Str("fault")+"/failed"] = true
		case "exit":
			out[fmt.Sprintf("exit:%s/%s/%s", role, ev.Str("reason"), ev.Str("signal"))] = true
		case scenario.KindLockReclaimed:
			out["recovery:lock/"+ev.Str("how")+"/"+ev.Str("by")] = true
		case scenario.KindSegmentCheck:
			ok, _ := ev.Fields["ok"].(bool)
			out[fmt.Sprintf("recovery:segment_check/ok=%t/error=%t", ok, ev.Str("error") != "")] = true
		case "broker_reconnected":
			out["recovery:reconnect/"+role] = true
		}
		if stateKinds[ev.Kind] && ev.Node != scenario.EngineName {
			if prev := last[ev.Node]; prev != state {
				out["transition:"+role+"/"+prev+">"+state] = true
				last[ev.Node] = state
			}
		}
	}
	if rep != nil {
		for _, v := range rep.Expectations {
			if v.Type == "invariant" {
				out["invariant:"+v.Name+"/"+v.Status] = true
			}
		}
	}
	return out
}

// coverage is the set of features an exploration reached so far.
type coverage struct {
	seen map[string]bool
}

// add merges a run's features and returns the new ones, sorted.
func (c *coverage) add(fs map[string]bool) []string {
	var fresh []string
	for f := range fs {
		if !c.seen[f] {
			c.seen[f] = true
			fresh = append(fresh, f)
		}
	}
	sort.Strings(fresh)
	return fresh
}
