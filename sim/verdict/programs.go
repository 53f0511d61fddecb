package verdict

import (
	"fmt"
	"path"
	"strings"

	"github.com/pylabhub/plh/sim/scenario"
)

// A user's own program with events = "none" writes no events: what needs
// its events cannot be judged. Such checks are inconclusive, or skip the node
// and say so, never a silent pass (docs/events.md, "Your own program as a
// node"). What the engine sees from outside (ready when started, exit,
// resource samples, process_end) is judged as for any node.

// outsideKinds are the kinds the engine records about a silent node itself.
var outsideKinds = map[string]bool{"ready": true, "exit": true, "resource": true}

// silent reports whether node name runs a program that writes no events.
func (e *evaluator) silent(name string) bool {
	n, ok := e.plan.Node(name)
	return ok && n.Silent()
}

// silentMatches lists the silent nodes matching the pattern node.
func (e *evaluator) silentMatches(node string) []string {
	var out []string
	for _, n := range e.plan.Nodes {
		if ok, _ := path.Match(node, n.Name); ok && n.Silent() {
			out = append(out, n.Name)
		}
	}
	return out
}

// unjudgeable returns why x cannot be judged (""; it can): it needs events
// of a node that writes none.
func (e *evaluator) unjudgeable(x scenario.ExpectSpec) string {
	if !e.needsOwnEvents(x) {
		return ""
	}
	var s []string
	switch {
	case x.Type == scenario.ExpectDelivery:
		s = e.silentOnChannel(x)
	case x.Node != "":
		s = e.silentMatches(x.Node)
	}
	if len(s) == 0 {
		return ""
	}
	return fmt.Sprintf("cannot judge: %s write(s) no events (events = \"none\"), and this expectation needs them", strings.Join(s, ", "))
}

// skippedText is the note an invariant adds for the silent nodes it skipped.
func skippedText(skipped []string) string {
	if len(skipped) == 0 {
		return ""
	}
	return fmt.Sprintf("; skipped %s: no events of its own (events = \"none\")", strings.Join(skipped, ", "))
}

// withSkipped finishes an invariant verdict: the note for skipped nodes, and
// inconclusive when they were all it had to judge.
func withSkipped(v Verdict, judged int, skipped []string) Verdict {
	if len(skipped) == 0 {
		return v
	}
	v.Message += skippedText(skipped)
	if judged == 0 && v.Status == StatusPass {
		v.Status = StatusInconclusive
	}
	return v
}

// needsOwnEvents reports whether x is judged from events the nodes write
// themselves (not only from what the engine records about them).
func (e *evaluator) needsOwnEvents(x scenario.ExpectSpec) bool {
	switch x.Type {
	case scenario.ExpectExit, scenario.ExpectResource:
		return false
	case scenario.ExpectMetric, scenario.ExpectDelivery:
		return true
	}
	return !outsideKinds[x.Kind]
}

// silentOnChannel lists the silent nodes a delivery expectation counts: the
// channel's producers and its consumers matching x.Node (all when "").
func (e *evaluator) silentOnChannel(x scenario.ExpectSpec) []string {
	var out []string
	for _, n := range e.plan.Nodes {
		if n.Channel != x.Channel || !n.Silent() {
			continue
		}
		if n.Role == "consumer" && x.Node != "" && !nodeMatch(x.Node, n.Name) {
			continue
		}
		out = append(out, n.Name)
	}
	return out
}

// silentNote is what an expectation over any process (no node) adds to its
// message when some nodes write no events of their own: it was judged on
// the others only.
func (e *evaluator) silentNote(x scenario.ExpectSpec) string {
	if x.Node != "" || x.Type == scenario.ExpectDelivery || !e.needsOwnEvents(x) {
		return ""
	}
	s := e.silentMatches("*")
	if len(s) == 0 {
		return ""
	}
	return fmt.Sprintf(" (judged without %s: no events of its own, events = \"none\")", strings.Join(s, ", "))
}
