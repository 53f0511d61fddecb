package verdict

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

const ms = int64(1e6)

// timeline builds a synthetic run: t0 at 1000 ms, events at offsets in ms.
type timeline struct{ evs []event.Event }

func (tl *timeline) at(offMs int64, node, kind string, kv ...any) *timeline {
	f := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	tl.evs = append(tl.evs, event.Event{T: 1000*ms + offMs*ms, Node: node, Kind: kind, Fields: f})
	return tl
}

// synthSystem is the system of synthPlan and anchorPlan: p writes, c1 and c2
// read; c1 is killed at 1 s, c2 paused at 4 s.
const synthSystem = `[[producers]]
name = "p"
channel = "cam"

[[consumers]]
name = "c"
instances = 2
channel = "cam"

[[faults]]
id = "kill"
at = "1s"
kind = "kill"
target = "c1"

[[faults]]
id = "later"
at = "4s"
kind = "pause"
target = "c2"
duration = "100ms"

`

const synthPlan = `name = "synth"
duration = "5s"

` + synthSystem + `[[expect]]
name = "died"
kind = "notification"
node = "p"
match = { type = "CONSUMER_DIED_NOTIFY", channel = "cam" }
after = "kill"
within = "1s"

[[expect]]
name = "no closing"
type = "never"
kind = "notification"
match = { type = "CHANNEL_CLOSING_*" }

[[expect]]
name = "stalls"
type = "metric"
metric = "stalls"
node = "p"
min = 1

[[expect]]
name = "lost"
type = "metric"
metric = "lost"
node = "c*"
max = 0

[[expect]]
name = "c read"
type = "metric"
metric = "read"
node = "c*"
min = 1

[[expect]]
name = "latency"
type = "metric"
metric = "latency_max_ns"
node = "c2"
max = "5ms"

[[expect]]
name = "reads"
type = "count"
kind = "read"
node = "c2"
min = 2
max = 3

[[expect]]
name = "c1 killed"
type = "exit"
node = "c1"
reason = "killed"

[[expect]]
name = "exit gaps"
type = "metric"
metric = "exit.gaps"
node = "c*"
max = 0

[[expect]]
name = "after later"
kind = "ready"
after = "later"
within = "1s"
`

func synthBase() *timeline {
	tl := &timeline{}
	for _, n := range []string{"p", "c1", "c2"} {
		tl.at(-500, scenario.EngineName, "spawned", "target", n, "pid", 10)
		tl.at(-400, n, "ready")
	}
	tl.at(-600, scenario.EngineName, "spawned", "target", scenario.HubName, "pid", 9)
	tl.at(0, scenario.EngineName, "run_start")
	tl.at(100, "p", "written", "count", 100.0)
	tl.at(200, "p", "backpressure_stall", "duration_ns", 2e6)
	tl.at(300, "c2", "read", "count", 50.0, "lat_max_ns", 1e6)
	tl.at(400, "c2", "read", "count", 50.0, "lat_max_ns", 3e6)
	tl.at(1000, scenario.EngineName, "fault", "id", "kill", "fault", "kill", "target", "c1")
	tl.at(1001, scenario.EngineName, "process_end", "target", "c1", "code", -1.0, "signal", "SIGKILL", "forced", false, "stopped", false)
	tl.at(1001, "c1", "exit", "code", -1.0, "reason", "signal", "recorded_by", scenario.EngineName)
	tl.at(1200, "p", "notification", "type", "CONSUMER_DIED_NOTIFY", "channel", "plh_cam_x")
	tl.at(5000, scenario.EngineName, "run_end")
	for _, n := range []string{"c2", "p", scenario.HubName} {
		tl.at(5100, n, "exit", "code", 0.0, "reason", "signal")
		tl.at(5101, scenario.EngineName, "process_end", "target", n, "code", 0.0, "signal", "", "forced", false, "stopped", true)
	}
	tl.at(5200, scenario.EngineName, "end_state", "leaked", []any{}, "leftover_segments", []any{})
	return tl
}

// loadOne loads and resolves a scenario given as text.
func loadOne(t *testing.T, body string) (*scenario.Plan, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "s.toml")
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	vs, err := scenario.Load(f)
	if err != nil {
		return nil, err
	}
	return scenario.Resolve(vs[0], 7)
}

func synthEval(t *testing.T, tl *timeline) *Report {
	t.Helper()
	p, err := loadOne(t, synthPlan)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(tl.evs, func(i, j int) bool { return tl.evs[i].T < tl.evs[j].T })
	return Evaluate(p, tl.evs, map[string]string{"cam": "plh_cam_x"})
}

func verdicts(rep *Report) map[string]Verdict {
	m := map[string]Verdict{}
	for _, v := range rep.Expectations {
		m[v.Name] = v
	}
	return m
}

func TestEvaluateHappy(t *testing.T) {
	rep := synthEval(t, synthBase())
	v := verdicts(rep)
	for _, name := range []string{"died", "exit gaps", "no closing", "stalls", "lost", "latency", "reads", "c1 killed",
		"end state: no process left running", "end state: no segment left behind", "end state: p exited clean",
		"end state: c1 exited killed", "end state: hub exited clean"} {
		if v[name].Status != StatusPass {
			t.Errorf("%s: %s %s", name, v[name].Status, v[name].Message)
		}
	}
	if d := v["died"]; len(d.Evidence) != 2 || d.Evidence[0].Kind != "fault" || d.Evidence[1].Str("type") != "CONSUMER_DIED_NOTIFY" ||
		!strings.Contains(d.Message, "200ms") {
		t.Errorf("died evidence/message: %s %+v", d.Message, d.Evidence)
	}
	// The fault "later" never fired: its expectation and the run are inconclusive.
	if v["after later"].Status != StatusInconclusive || rep.Status != StatusInconclusive || rep.ExitCode != ExitInconclusive {
		t.Errorf("unfired fault: %s / run %s %d", v["after later"].Status, rep.Status, rep.ExitCode)
	}
	if rep.Faults[0].ID != "kill" || !rep.Faults[0].Fired || rep.Faults[0].FiredAtS != 1 || rep.Faults[1].Fired {
		t.Errorf("faults %+v", rep.Faults)
	}
}

func TestEvaluateViolations(t *testing.T) {
	tl := synthBase()
	// Replace the notification with one outside the deadline and of another channel.
	for i := range tl.evs {
		if tl.evs[i].Kind == "notification" {
			tl.evs[i].T = 1000*ms + 2500*ms
		}
	}
	tl.at(3000, "c2", "notification", "type", "CHANNEL_CLOSING_NOTIFY")
	tl.at(3100, "c2", "gap", "expected", 10.0, "got", 13.0, "lost", 3.0)
	tl.at(3200, "c2", "read", "count", 1.0, "lat_max_ns", 9e6)
	tl.at(4000, scenario.EngineName, "fault", "id", "later", "fault", "pause", "target", "c2")
	tl.at(5150, scenario.EngineName, "process_end", "target", "ghost", "code", 0.0)
	tl.at(5160, "c2", "exit", "code", 0.0, "reason", "signal", "gaps", 3.0)
	tl.evs = tl.evs[:len(tl.evs)]
	for i := range tl.evs {
		if tl.evs[i].Kind == "end_state" {
			tl.evs[i].Fields["leaked"] = []any{"c2"}
			tl.evs[i].Fields["leftover_segments"] = []any{"cam"}
		}
		if tl.evs[i].Kind == "process_end" && tl.evs[i].Str("target") == "p" {
			tl.evs[i].Fields["forced"] = true
		}
	}
	rep := synthEval(t, tl)
	v := verdicts(rep)
	for name, want := range map[string]string{
		"died": "no notification", "no closing": "1 notification", "lost": "lost = 3", "latency": "9e+06",
		"reads": "3 read", "end state: no process left running": "c2", "end state: no segment left behind": "cam",
		"end state: p exited clean": "did not stop", "exit gaps": "exit.gaps = 3",
	} {
		if name == "reads" {
			if v[name].Status != StatusPass { // 3 reads within [2,3]
				t.Errorf("reads: %s %s", v[name].Status, v[name].Message)
			}
			continue
		}
		if v[name].Status != StatusFail || !strings.Contains(v[name].Message, want) {
			t.Errorf("%s: %s %q, want fail mentioning %q", name, v[name].Status, v[name].Message, want)
		}
	}
	// Near misses: the late notification is shown as evidence of the failed deadline.
	if d := v["died"]; len(d.Evidence) < 1 || d.Evidence[0].Kind != "fault" {
		t.Errorf("died evidence %+v", d.Evidence)
	}
	if v["after later"].Status != StatusFail {
		t.Errorf("after later: %s", v["after later"].Status)
	}
	if rep.Status != StatusFail || rep.ExitCode != ExitFail {
		t.Errorf("run %s %d", rep.Status, rep.ExitCode)
	}
}

func TestEvaluateNeverStarted(t *testing.T) {
	tl := &timeline{}
	tl.at(0, scenario.EngineName, "spawned", "target", scenario.HubName)
	rep := synthEval(t, tl)
	if rep.Status != StatusInconclusive || len(rep.Expectations) != 1 {
		t.Fatalf("%s %+v", rep.Status, rep.Expectations)
	}
	rep.SetError(errors.New("harness"))
	if rep.ExitCode != ExitError {
		t.Fatal(rep.ExitCode)
	}
}

func TestEqualField(t *testing.T) {
	for _, c := range []struct {
		got, want any
		ok        bool
	}{
		{"a", "a", true}, {"abc", "a*", true}, {"abc", "b*", false}, {1.0, int64(1), true},
		{2.0, int64(1), false}, {true, true, true}, {"1", int64(1), false}, {nil, "x", false},
	} {
		if equalField(c.got, c.want) != c.ok {
			t.Errorf("equalField(%v, %v) != %v", c.got, c.want, c.ok)
		}
	}
}

// TestExitOKForcedIsNotClean: a process the engine had to SIGKILL at the end
// did not exit clean, whatever its code.
func TestExitOKForcedIsNotClean(t *testing.T) {
	end := event.Event{Kind: "process_end", Fields: map[string]any{"code": -1.0, "signal": "SIGKILL", "forced": true, "stopped": true}}
	if ok, _ := exitOK(end, scenario.ExitClean); ok {
		t.Fatal("a forced stop counted as a clean exit")
	}
	if ok, _ := exitOK(end, scenario.ExitKilled); ok {
		t.Fatal("a process stopped by the engine counted as killed by a fault")
	}
}

// anchorPlan has the nodes and faults of synthPlan and expectations on the
// stop phase, on a fault's end, on a node's ready event and per node.
const anchorPlan = `name = "anchors"
duration = "5s"

` + synthSystem + `[[expect]]
name = "left, run window"
kind = "consumer_left"
node = "p"

[[expect]]
name = "left, until stop"
kind = "consumer_left"
node = "p"
until = "stop"

[[expect]]
name = "left, after stop"
kind = "consumer_left"
node = "p"
after = "stop"

[[expect]]
name = "no death in the stop phase"
type = "never"
kind = "consumer_died"
after = "stop"

[[expect]]
name = "read soon after the pause ended"
kind = "read"
node = "c2"
after = "later:end"
within = "100ms"

[[expect]]
name = "read soon after c2 was ready"
kind = "read"
node = "c2"
after = "c2:ready"
within = "800ms"

[[expect]]
name = "reads, summed"
type = "metric"
metric = "read"
node = "c*"
min = 1

[[expect]]
name = "reads, each"
type = "metric"
metric = "read"
node = "c*"
each = true
min = 1

[[expect]]
name = "ready, each"
type = "count"
kind = "ready"
node = "c*"
each = true
min = 1
`

// TestEvaluateStopPhaseAnchorsEach: windows reach the stop phase only when
// asked (until = "stop", after = "stop"); after = "FAULT:end" and
// "NODE:ready" anchor at those events; each = true checks node by node, so a
// consumer that read nothing fails a minimum the sum meets.
func TestEvaluateStopPhaseAnchorsEach(t *testing.T) {
	tl := synthBase()
	tl.at(4100, scenario.EngineName, "fault", "id", "later", "fault", "pause", "target", "c2") // fired late: at 4.1 s
	tl.at(4200, scenario.EngineName, "fault_end", "id", "later", "fault", "pause", "target", "c2")
	tl.at(4250, "c2", "read", "count", 5.0)
	tl.at(5050, "p", "consumer_left", "channel", "plh_cam_x", "identity", "ab")
	tl.at(5060, "p", "consumer_died", "channel", "plh_cam_x", "consumer_pid", 10.0, "reason", "process_dead")
	p, err := loadOne(t, anchorPlan)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(tl.evs, func(i, j int) bool { return tl.evs[i].T < tl.evs[j].T })
	v := verdicts(Evaluate(p, tl.evs, map[string]string{"cam": "plh_cam_x"}))
	for name, want := range map[string]string{
		"left, run window":                StatusFail,
		"left, until stop":                StatusPass,
		"left, after stop":                StatusPass,
		"no death in the stop phase":      StatusFail,
		"read soon after the pause ended": StatusPass,
		"read soon after c2 was ready":    StatusPass,
		"reads, summed":                   StatusPass,
		"reads, each":                     StatusFail,
		"ready, each":                     StatusPass,
	} {
		if v[name].Status != want {
			t.Errorf("%s: %s %q, want %s", name, v[name].Status, v[name].Message, want)
		}
	}
	if m := v["reads, each"].Message; !strings.Contains(m, "1 of 2 nodes") || !strings.Contains(m, "c1: read = 0") {
		t.Errorf("each: %q", m)
	}
	if ev := v["read soon after the pause ended"].Evidence; len(ev) == 0 || ev[0].Kind != "fault_end" {
		t.Errorf("the fault_end anchor is not the evidence: %+v", ev)
	}
	// An anchor whose event never came is inconclusive.
	tl.evs = slices.DeleteFunc(tl.evs, func(ev event.Event) bool { return ev.Kind == "fault_end" })
	v = verdicts(Evaluate(p, tl.evs, map[string]string{"cam": "plh_cam_x"}))
	if r := v["read soon after the pause ended"]; r.Status != StatusInconclusive || !strings.Contains(r.Message, "never ended") {
		t.Errorf("missing fault_end: %s %q", r.Status, r.Message)
	}
}
