package verdict

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

const invPlan = `name = "inv"
duration = "5s"

[[producers]]
name = "p"
channel = "cam"
shm = true
policy = "Single_reader"
slots = 4

[[consumers]]
name = "c"
instances = 2
channel = "cam"

[[faults]]
id = "kill"
at = "1s"
kind = "kill"
target = "c1"
`

// invBase: p (pid 10) writes 0..99 at 100 ms steps; c1 (pid 11) reads them
// until it is killed at 1 s; c2 (pid 12) reads all; the registry at run_end
// holds p and c2; the hub's samples are flat.
func invBase() *timeline {
	tl := &timeline{}
	en := scenario.EngineName
	tl.at(-600, en, "spawned", "target", scenario.HubName, "pid", 9.0, "role", "hub")
	tl.at(-550, scenario.HubName, "resource", "pid", 9.0, "fds", 13.0, "goroutines", 16.0, "phase", "baseline")
	for i, n := range []string{"p", "c1", "c2"} {
		role := "consumer"
		if n == "p" {
			role = "producer"
			tl.at(-410, n, "registered", "channel", "plh_cam_x")
		}
		pid := float64(10 + i)
		tl.at(-500, en, "spawned", "target", n, "pid", pid, "role", role)
		tl.at(-400, n, "ready", "role", role, "pid", pid)
	}
	tl.at(0, en, "run_start")
	tl.at(1, scenario.HubName, "resource", "pid", 9.0, "fds", 16.0, "goroutines", 20.0, "phase", "t0")
	for k := int64(0); k < 10; k++ {
		seq := float64(k * 10)
		tl.at(k*100+50, "p", "written", "count", 10.0, "first_seq", seq, "last_seq", seq+9)
		tl.at(k*100+90, "c2", "read", "count", 10.0, "first_seq", seq, "last_seq", seq+9, "from_pid", 10.0)
		if k < 9 {
			tl.at(k*100+90, "c1", "read", "count", 10.0, "first_seq", seq, "last_seq", seq+9, "from_pid", 10.0)
		}
	}
	tl.at(1000, en, "fault", "id", "kill", "fault", "kill", "target", "c1")
	tl.at(1001, "c1", "read", "count", 4.0, "last_seq", 93.0, "from_pid", 10.0, "tail", true, "recorded_by", en)
	tl.at(1002, "c1", "exit", "code", -1.0, "reason", "signal", "recorded_by", en)
	tl.at(1003, "p", "consumer_died", "consumer_pid", 11.0, "reason", "process_dead")
	tl.at(5000, en, "run_end")
	tl.at(5001, scenario.HubName, "resource", "pid", 9.0, "fds", 17.0, "goroutines", 21.0, "phase", "run_end")
	tl.at(5002, en, "parties", "parties", []any{
		map[string]any{"name": "p", "role": "producer", "pid": 10, "channel": "plh_cam_x", "ready": true, "paused": false},
		map[string]any{"name": "c2", "role": "consumer", "pid": 12, "channel": "plh_cam_x", "ready": true, "paused": false},
	})
	tl.at(5003, scenario.HubName, "registry", "channels", []any{map[string]any{"name": "plh_cam_x", "producer_pid": 10.0,
		"consumers": []any{map[string]any{"pid": 12.0, "hostname": ""}}}})
	tl.at(5300, scenario.HubName, "resource", "pid", 9.0, "fds", 14.0, "goroutines", 17.0, "phase", "quiesced")
	tl.at(5400, en, "end_state", "leaked", []any{}, "leftover_segments", []any{})
	return tl
}

func invEval(t *testing.T, tl *timeline, extra string) map[string]Verdict {
	t.Helper()
	p, err := loadOne(t, invPlan+extra)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(tl.evs, func(i, j int) bool { return tl.evs[i].T < tl.evs[j].T })
	return verdicts(Evaluate(p, tl.evs, map[string]string{"cam": "plh_cam_x"}))
}

func TestInvariantChecksCoverEveryName(t *testing.T) {
	got := slices.Sorted(maps.Keys(invariantChecks))
	want := slices.Sorted(slices.Values(scenario.Invariants))
	if !slices.Equal(got, want) {
		t.Fatalf("invariantChecks %v, scenario.Invariants %v", got, want)
	}
}

func TestInvariantsHoldOnAHealthyRun(t *testing.T) {
	v := invEval(t, invBase(), "")
	for _, name := range scenario.Invariants {
		if x := v["invariant "+name]; x.Status != StatusPass {
			t.Errorf("%s: %s %s", name, x.Status, x.Message)
		}
	}
}

// fails asserts that invariant name failed with a message containing each of
// want.
func fails(t *testing.T, v map[string]Verdict, name string, want ...string) {
	t.Helper()
	x := v["invariant "+name]
	if x.Status != StatusFail {
		t.Fatalf("%s: %s %s, want fail", name, x.Status, x.Message)
	}
	for _, w := range want {
		if !strings.Contains(x.Message, w) {
			t.Errorf("%s message %q lacks %q", name, x.Message, w)
		}
	}
}

func TestRegistryMatchesCatchesDuplicatesStaleAndMissing(t *testing.T) {
	tl := invBase()
	for i := range tl.evs {
		if tl.evs[i].Kind == "registry" {
			tl.evs[i].Fields["channels"] = []any{map[string]any{"name": "plh_cam_x", "producer_pid": 10.0,
				"consumers": []any{map[string]any{"pid": 11.0}, map[string]any{"pid": 11.0}}}}
		}
	}
	fails(t, invEval(t, tl, ""), "registry_matches", "cam: consumer pid 11 (not a live process of the run) registered more than once",
		"registered consumer pid 11 (not a live process of the run) is no live consumer", "consumer c2 (pid 12) is alive, not in the registry")
}

func TestRegistryMatchesToleratesAPausedParty(t *testing.T) {
	tl := invBase()
	for i := range tl.evs {
		if tl.evs[i].Kind == "parties" {
			ps := tl.evs[i].Fields["parties"].([]any)
			ps[1].(map[string]any)["paused"] = true
		}
		if tl.evs[i].Kind == "registry" {
			tl.evs[i].Fields["channels"] = []any{map[string]any{"name": "plh_cam_x", "producer_pid": 10.0, "consumers": []any{}}}
		}
	}
	if x := invEval(t, tl, "")["invariant registry_matches"]; x.Status != StatusPass {
		t.Errorf("paused consumer absent: %s %s", x.Status, x.Message)
	}
}

func TestRegistryMatchesWithoutSnapshotIsInconclusive(t *testing.T) {
	tl := invBase()
	tl.evs = slices.DeleteFunc(tl.evs, func(e event.Event) bool { return e.Kind == "registry" })
	if x := invEval(t, tl, "")["invariant registry_matches"]; x.Status != StatusInconclusive {
		t.Errorf("%s %s", x.Status, x.Message)
	}
}

func TestConsumersReadCatchesAConsumerThatReadNothing(t *testing.T) {
	tl := invBase()
	tl.evs = slices.DeleteFunc(tl.evs, func(e event.Event) bool { return e.Node == "c2" && e.Kind == "read" })
	tl.at(-300, "c2", "attached", "shm", false, "reason", "segment not found")
	fails(t, invEval(t, tl, ""), "consumers_read", "c2 could not attach: segment not found", "c2 read 0 messages")
}

func TestNoFalseDeath(t *testing.T) {
	// c2 declared dead, never killed or paused, and still reading.
	tl := invBase()
	tl.at(2000, "p", "consumer_died", "consumer_pid", 12.0, "reason", "heartbeat_timeout")
	fails(t, invEval(t, tl, ""), "no_false_death", "c2 declared dead (consumer_died heartbeat_timeout at p)")

	// Paused past the timeout, declared dead, then reads on (defect 4).
	tl = invBase()
	tl.at(1500, scenario.EngineName, "fault", "id", "pause-c2", "fault", "pause", "target", "c2")
	tl.at(1600, "p", "consumer_died", "consumer_pid", 12.0, "reason", "heartbeat_timeout")
	tl.at(2600, "c2", "read", "count", 1.0, "from_pid", 10.0)
	tl.at(2700, "c2", "read", "count", 1.0, "from_pid", 10.0)
	fails(t, invEval(t, tl, ""), "no_false_death", "then 2 more written/read events of its own")

	// A producer_lost about a producer never killed (p keeps writing).
	tl = invBase()
	tl.at(300, "c2", "producer_lost", "channel", "plh_cam_x")
	fails(t, invEval(t, tl, ""), "no_false_death", "p declared dead (producer_lost at c2)")
}

func TestOrderedComplete(t *testing.T) {
	// A hole in what c2 read of p.
	tl := invBase()
	tl.at(550, "c2", "gap", "expected", 50.0, "got", 53.0, "lost", 3.0, "from_pid", 10.0)
	fails(t, invEval(t, tl, ""), "ordered_complete", "c2 missed 3 sequence(s) of p (pid 10)")

	// c2 stopped reading while p went on writing (more than a ring ahead).
	tl = invBase()
	tl.evs = slices.DeleteFunc(tl.evs, func(e event.Event) bool {
		last, _ := e.Num("last_seq")
		return e.Node == "c2" && e.Kind == "read" && last > 50
	})
	tl.at(2000, "c2", "read", "count", 0.0, "last_seq", 59.0, "from_pid", 10.0)
	tl.at(2100, "p", "written", "count", 10.0, "last_seq", 109.0)
	fails(t, invEval(t, tl, ""), "ordered_complete", "c2 stopped at sequence 59 of p (pid 10)")

	// A successor producer p (pid 20) writes; c2 never reads it (stranded).
	tl = invBase()
	tl.at(2000, scenario.EngineName, "spawned", "target", "p", "pid", 20.0, "role", "producer")
	tl.at(2010, "p", "registered", "channel", "plh_cam_x")
	tl.at(2020, "p", "ready", "role", "producer", "pid", 20.0)
	tl.at(2500, "p", "written", "count", 50.0, "first_seq", 0.0, "last_seq", 49.0)
	tl.at(2600, "c2", "stats", "goroutines", 10.0)
	fails(t, invEval(t, tl, ""), "ordered_complete", "c2 read nothing of p (pid 20), which wrote 50")
}

func TestHubResources(t *testing.T) {
	tl := invBase()
	for i := range tl.evs {
		if tl.evs[i].Str("phase") == "run_end" {
			tl.evs[i].Fields["fds"] = 218.0
		}
		if tl.evs[i].Str("phase") == "quiesced" {
			tl.evs[i].Fields["goroutines"] = 40.0
		}
	}
	v := invEval(t, tl, "")
	fails(t, v, "hub_resources_steady", "fds 16 at t0, 218 run_end (allowed +4)")
	fails(t, v, "hub_resources_return", "goroutines 16, 40 (allowed +8)")
}

func TestAnInvariantTurnedOffPassesWithItsReason(t *testing.T) {
	tl := invBase()
	tl.at(2000, "p", "consumer_died", "consumer_pid", 12.0, "reason", "heartbeat_timeout")
	v := invEval(t, tl, "\n[invariants]\nno_false_death = { off = \"defect 4: not re-admitted\" }\n")
	if x := v["invariant no_false_death"]; x.Status != StatusPass || !strings.Contains(x.Message, "turned off: defect 4") {
		t.Errorf("%s %s", x.Status, x.Message)
	}
}

func TestDeliveryAndPerFault(t *testing.T) {
	exp := `
[[expect]]
name = "each"
type = "delivery"
delivery = "each"
channel = "cam"
node = "c2"

[[expect]]
name = "once"
type = "delivery"
delivery = "exactly_once"
channel = "cam"

[[expect]]
name = "one death per kill"
type = "count"
kind = "consumer_died"
node = "p"
per_fault = true
min = 1
max = 1

[[expect]]
name = "two per kill"
type = "count"
kind = "consumer_died"
node = "p"
per_fault = true
faults = "k*"
min = 2

[[expect]]
name = "hub fds"
type = "resource"
node = "hub"
metric = "fds"
max_growth = 2
`
	v := invEval(t, invBase(), exp)
	if x := v["each"]; x.Status != StatusPass || !strings.Contains(x.Message, "p (pid 10) wrote 100, read 100 (c2 100)") {
		t.Errorf("each: %s %s", x.Status, x.Message)
	}
	// c1 read 94 and c2 100 of p's 100: not exactly once (both read all of it).
	if x := v["once"]; x.Status != StatusFail || !strings.Contains(x.Message, "wrote 100, read 194 (c1 94, c2 100)") {
		t.Errorf("once: %s %s", x.Status, x.Message)
	}
	if x := v["one death per kill"]; x.Status != StatusPass || !strings.Contains(x.Message, "1 fault(s)") {
		t.Errorf("per fault: %s %s", x.Status, x.Message)
	}
	if x := v["two per kill"]; x.Status != StatusFail {
		t.Errorf("per fault min 2: %s %s", x.Status, x.Message)
	}
	if x := v["hub fds"]; x.Status != StatusFail || !strings.Contains(x.Message, "grew by 3 (13 → 16") {
		t.Errorf("resource: %s %s", x.Status, x.Message)
	}
}

func TestInvariantExceptANode(t *testing.T) {
	tl := invBase()
	tl.evs = slices.DeleteFunc(tl.evs, func(e event.Event) bool { return e.Node == "c2" && e.Kind == "read" })
	fails(t, invEval(t, tl, ""), "consumers_read", "c2 read 0 messages")
	v := invEval(t, tl, "\n[invariants]\nconsumers_read = { except = [\"c2\"], reason = \"joins after the last message\" }\n")
	if x := v["invariant consumers_read"]; x.Status != StatusPass || !strings.Contains(x.Message, "(except c2: joins after the last message)") {
		t.Errorf("%s %s", x.Status, x.Message)
	}
}

// A producer killed shortly before run_end keeps its channel until the
// channel timeout: listed as gone, either answer is right; not listed, its
// pid in the registry is stale.
func TestRegistryMatchesToleratesAProducerGoneWithinTheTimeout(t *testing.T) {
	tl := invBase()
	for i := range tl.evs {
		if tl.evs[i].Kind == "parties" {
			ps := tl.evs[i].Fields["parties"].([]any)
			ps[0].(map[string]any)["gone"] = true
		}
	}
	if x := invEval(t, tl, "")["invariant registry_matches"]; x.Status != StatusPass {
		t.Errorf("gone producer still registered: %s %s", x.Status, x.Message)
	}
	tl = invBase()
	for i := range tl.evs {
		if tl.evs[i].Kind == "parties" {
			tl.evs[i].Fields["parties"] = tl.evs[i].Fields["parties"].([]any)[1:]
		}
	}
	fails(t, invEval(t, tl, ""), "registry_matches", "registered producer pid 10 is no live producer of the channel")
}
