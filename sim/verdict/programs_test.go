package verdict

import (
	"strings"
	"testing"

	"github.com/pylabhub/plh/sim/scenario"
)

// A consumer program that writes no events (events = "none") is skipped by
// the invariants that need its reads, with the reason, and an expectation on
// its events is inconclusive: never a silent pass. Its exit is still judged.
func TestSilentProgramIsNeverASilentPass(t *testing.T) {
	tl := invBase()
	tl.at(-395, scenario.EngineName, "spawned", "target", "s", "pid", 20.0, "role", "consumer")
	tl.at(-390, "s", "ready", "role", "consumer", "pid", 20.0, "recorded_by", scenario.EngineName)
	tl.at(5200, "s", "exit", "code", -1.0, "reason", "signal", "signal", "TERM", "recorded_by", scenario.EngineName)
	tl.at(5201, scenario.EngineName, "process_end", "target", "s", "role", "consumer", "pid", 20.0, "code", -1.0,
		"signal", "TERM", "forced", false, "stopped", true)
	v := invEval(t, tl, `
[[consumers]]
name = "s"
channel = "cam"
command = ["sh", "-c", "sleep 9"]
events = "none"

[[expect]]
name = "no gap at s"
type = "never"
kind = "gap"
node = "s"

[[expect]]
name = "s read"
type = "metric"
metric = "read"
node = "s"
min = 1

[[expect]]
name = "no gap anywhere"
type = "never"
kind = "gap"

[[expect]]
name = "each message once"
type = "delivery"
delivery = "each"
channel = "cam"

[[expect]]
name = "s ended"
type = "exit"
node = "s"
reason = "killed"
`)
	for _, name := range []string{"invariant consumers_read", "invariant ordered_complete"} {
		x := v[name]
		if x.Status != StatusPass || !strings.Contains(x.Message, "skipped s: no events of its own") {
			t.Errorf("%s: %s %q", name, x.Status, x.Message)
		}
	}
	if x := v["no gap anywhere"]; x.Status != StatusPass || !strings.Contains(x.Message, "judged without s: no events of its own") {
		t.Errorf("any node: %s %q", x.Status, x.Message)
	}
	for _, name := range []string{"no gap at s", "s read", "each message once"} {
		if x := v[name]; x.Status != StatusInconclusive || !strings.Contains(x.Message, `s write(s) no events (events = "none")`) {
			t.Errorf("%s: %s %q", name, x.Status, x.Message)
		}
	}
	if x := v["s ended"]; x.Status != StatusPass {
		t.Errorf("exit: %s %q", x.Status, x.Message)
	}
}

// With only silent consumers, consumers_read judged nobody: inconclusive.
func TestSilentOnlyConsumersAreInconclusive(t *testing.T) {
	v := withSkipped(verdictOf(true, "no consumer was ready"), 0, []string{"s"})
	if v.Status != StatusInconclusive || !strings.Contains(v.Message, "skipped s") {
		t.Fatalf("%s %q", v.Status, v.Message)
	}
}
