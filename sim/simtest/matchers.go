package simtest

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/onsi/gomega/types"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// matcher is a Gomega matcher over a *Result: check returns whether it
// matched and what to say about the run either way.
type matcher struct {
	want  string // what the matcher asserts, for its messages
	check func(r *Result) (bool, string)
	said  string
}

func (m *matcher) Match(actual any) (bool, error) {
	r, ok := actual.(*Result)
	if !ok || r == nil {
		return false, fmt.Errorf("simtest matcher: want a *simtest.Result, got %T", actual)
	}
	got, msg := m.check(r)
	m.said = msg + "\nrun folder: " + folder(r)
	return got, nil
}

func (m *matcher) FailureMessage(any) string {
	return "expected the run to " + m.want + ", but " + m.said
}

func (m *matcher) NegatedFailureMessage(any) string {
	return "expected the run not to " + m.want + ", but " + m.said
}

func folder(r *Result) string {
	if r.Dir == "" {
		return "(none: the run did not start)"
	}
	return r.Dir
}

// Pass succeeds when the run passed: every expectation, end-state check and
// invariant held and every fault fired (plh-sim exit 0). Its failure message
// lists what did not pass.
func Pass() types.GomegaMatcher {
	return &matcher{want: "pass", check: func(r *Result) (bool, string) {
		if r.Report == nil {
			return false, fmt.Sprintf("%s did not run: %v", r.Name, r.Err)
		}
		if r.Report.Status == verdict.StatusPass && r.Err == nil {
			return true, fmt.Sprintf("%s passed", r.Name)
		}
		return false, r.Summary()
	}}
}

// Summary says how the run ended: its status, every verdict that did not
// pass, the faults that did not fire, and the run folder.
func (r *Result) Summary() string {
	if r.Report == nil {
		return fmt.Sprintf("%s did not run: %v", r.Name, r.Err)
	}
	rep := r.Report
	var b strings.Builder
	fmt.Fprintf(&b, "%s ended %s (exit %d, seed %d)", r.Name, rep.Status, rep.ExitCode, rep.Seed)
	if rep.Error != "" {
		fmt.Fprintf(&b, "\n  error: %s", rep.Error)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "\n  harness: %v", r.Err)
	}
	for _, f := range rep.Faults {
		if !f.Fired || f.Error != "" {
			fmt.Fprintf(&b, "\n  fault %s did not fire: %s", f.ID, f.Error)
		}
	}
	for _, v := range rep.Expectations {
		if v.Status != verdict.StatusPass {
			fmt.Fprintf(&b, "\n  %s: %s: %s", v.Status, v.Name, v.Message)
		}
	}
	fmt.Fprintf(&b, "\n  run folder: %s", folder(r))
	return b.String()
}

// HaveVerdict succeeds when the run has the verdict named name (an
// expectation's name, "invariant NAME", "end state: …") with status
// (verdict.StatusPass, StatusFail, StatusInconclusive).
func HaveVerdict(name, status string) types.GomegaMatcher {
	return &matcher{want: fmt.Sprintf("have %q %s", name, status), check: func(r *Result) (bool, string) {
		if r.Report == nil {
			return false, fmt.Sprintf("%s did not run: %v", r.Name, r.Err)
		}
		var names []string
		for _, v := range r.Report.Expectations {
			if v.Name == name {
				return v.Status == status, fmt.Sprintf("%q is %s: %s", name, v.Status, v.Message)
			}
			names = append(names, v.Name)
		}
		return false, fmt.Sprintf("no verdict named %q; the run has: %s", name, strings.Join(names, "; "))
	}}
}

// HoldInvariant succeeds when the built-in invariant name
// (scenario.Invariants) held.
func HoldInvariant(name string) types.GomegaMatcher {
	m := HaveVerdict("invariant "+name, verdict.StatusPass).(*matcher)
	m.want = "hold invariant " + name
	return m
}

// HaveEventWithin succeeds when an event of kind at a node matching node (a
// glob; "" any) happened within d after the run started (t0), or, with
// after, after the fault with that id fired.
func HaveEventWithin(kind, node string, d time.Duration, after ...string) types.GomegaMatcher {
	from := "run start"
	if len(after) > 0 {
		from = "fault " + after[0]
	}
	want := fmt.Sprintf("have a %s event at %q within %v after %s", kind, node, d, from)
	return &matcher{want: want, check: func(r *Result) (bool, string) {
		evs, err := r.Events()
		if err != nil {
			return false, fmt.Sprintf("its timeline could not be read: %v", err)
		}
		at, ok := anchor(evs, after)
		if !ok {
			return false, from + " never happened"
		}
		var near []string
		for _, ev := range evs {
			if ev.Kind != kind || (node != "" && !globMatch(node, ev.Node)) || ev.T < at {
				continue
			}
			dt := time.Duration(ev.T - at)
			if dt <= d {
				return true, fmt.Sprintf("%s at %s came %v after %s", kind, ev.Node, dt, from)
			}
			near = append(near, fmt.Sprintf("%s at %v", ev.Node, dt))
			if len(near) == 3 {
				break
			}
		}
		if len(near) == 0 {
			return false, fmt.Sprintf("no %s event at %q after %s", kind, node, from)
		}
		return false, fmt.Sprintf("the first %s events came too late: %s", kind, strings.Join(near, ", "))
	}}
}

// anchor returns t0, or the t the fault after[0] fired.
func anchor(evs []event.Event, after []string) (int64, bool) {
	for _, ev := range evs {
		if ev.Node != scenario.EngineName {
			continue
		}
		if len(after) == 0 && ev.Kind == "run_start" {
			return ev.T, true
		}
		if len(after) > 0 && ev.Kind == "fault" && ev.Str("id") == after[0] {
			return ev.T, true
		}
	}
	return 0, false
}

func globMatch(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}
