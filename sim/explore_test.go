package sim

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

const exploreSystem = `name = "x"
duration = "5s"
[[producers]]
name = "p"
channel = "cam"
shm = true
[[consumers]]
name = "c"
instances = 2
channel = "cam"
[explore]
kinds = ["kill", "pause", "slow_consumer", "consumer_churn", "corrupt_control", "hub_pause"]
max_faults = 4
window = ["1s", "3s"]
`

func exploreVariant(t *testing.T) scenario.Variant { return loadVariant(t, exploreSystem) }

// loadVariant loads the scenario text and returns its only variant.
func loadVariant(t *testing.T, text string) scenario.Variant {
	t.Helper()
	f := filepath.Join(t.TempDir(), "x.toml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	vs, err := scenario.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return vs[0]
}

// drawSchedules draws n schedules from seed: fresh ones, every other one
// mutated.
func drawSchedules(g *generator, seed uint64, n int) [][]scenario.FaultSpec {
	out := make([][]scenario.FaultSpec, n)
	for i := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		out[i] = g.fresh(rng)
		if i%2 == 1 {
			out[i], _ = g.mutate(rng, out[i])
		}
	}
	return out
}

// TestGeneratorDrawsValidSchedulesFromTheSeed: the same seed draws the same
// schedule; every schedule (fresh or mutated) has 1..max faults of allowed
// pairs inside the window, none after a SIGKILL of its target, and resolves.
func TestGeneratorDrawsValidSchedulesFromTheSeed(t *testing.T) {
	v := exploreVariant(t)
	g := newGenerator(v)
	a := g.fresh(rand.New(rand.NewPCG(9, 1)))
	b := g.fresh(rand.New(rand.NewPCG(9, 1)))
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different schedules:\n%v\n%v", a, b)
	}
	allowed := map[string]bool{}
	for _, p := range g.pairs {
		allowed[string(p.Kind)+" "+p.Target] = true
	}
	kinds := map[scenario.FaultKind]bool{}
	for i, fs := range drawSchedules(g, 1, 300) {
		if len(fs) < 1 || len(fs) > 4 {
			t.Fatalf("%d faults: %v", len(fs), fs)
		}
		dead := map[string]bool{}
		for _, f := range fs {
			kinds[f.Kind] = true
			if !allowed[string(f.Kind)+" "+f.Target] {
				t.Fatalf("drew %s on %s, not an allowed pair", f.Kind, f.Target)
			}
			if f.At < scenario.Duration(1e9) || f.At > scenario.Duration(3e9) {
				t.Fatalf("%s at %v: outside the window", f.Kind, f.At.D())
			}
			if dead[f.Target] {
				t.Fatalf("%s on %s after it was killed: %v", f.Kind, f.Target, fs)
			}
			dead[f.Target] = f.Kind == scenario.FaultKill
		}
		if _, err := planFor(v, fs, 1, i); err != nil {
			t.Fatalf("schedule %v does not resolve: %v", fs, err)
		}
	}
	if len(kinds) != 6 {
		t.Errorf("300 schedules drew only the kinds %v", kinds)
	}
}

// TestFeaturesAndCoverage: notifications with their reason, transitions per
// role, faults, recovery paths and invariant statuses are features; coverage
// reports only what it had not seen.
func TestFeaturesAndCoverage(t *testing.T) {
	en := scenario.EngineName
	ev := func(node, kind string, kv ...any) event.Event {
		f := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			f[kv[i].(string)] = kv[i+1]
		}
		return event.Event{Node: node, Kind: kind, Fields: f}
	}
	evs := []event.Event{
		ev(en, "spawned", "target", "p", "role", "producer"),
		ev(en, "spawned", "target", "c1", "role", "consumer"),
		ev("p", "ready"), ev("c1", "ready"),
		ev(en, "fault", "fault", "kill"),
		ev("p", "notification", "type", "CONSUMER_DIED_NOTIFY", "reason", "process_dead"),
		ev("p", "consumer_died", "reason", "process_dead"),
		ev("c1", "broker_lost"), ev("c1", "broker_reconnected"),
		ev(en, scenario.KindSegmentCheck, "ok", true),
		ev("p", "read", "count", 3.0),
	}
	rep := &verdict.Report{Expectations: []verdict.Verdict{{Name: "invariant registry_matches", Type: "invariant", Status: "pass"}}}
	fs := features(evs, rep)
	for _, want := range []string{
		"notification:producer/CONSUMER_DIED_NOTIFY/process_dead", "died:process_dead", "fault:kill/fired",
		"transition:producer/ready>notification CONSUMER_DIED_NOTIFY", "transition:consumer/broker_lost>broker_reconnected",
		"recovery:reconnect/consumer", "recovery:segment_check/ok=true/error=false", "invariant:invariant registry_matches/pass",
	} {
		if !fs[want] {
			t.Errorf("feature %q missing from %v", want, slices.Sorted(func(yield func(string) bool) {
				for k := range fs {
					if !yield(k) {
						return
					}
				}
			}))
		}
	}
	if fs["kind:producer/read"] {
		t.Error("steady-state reads count as coverage")
	}
	c := coverage{seen: map[string]bool{}}
	if n := len(c.add(fs)); n != len(fs) {
		t.Fatalf("first run added %d of %d", n, len(fs))
	}
	fs["died:heartbeat_timeout"] = true
	if got := c.add(fs); !slices.Equal(got, []string{"died:heartbeat_timeout"}) {
		t.Fatalf("second run added %v", got)
	}
}

const exploreHostsSystem = `name = "xh"
duration = "6s"
[[hosts]]
name = "ctl"
[[hosts]]
name = "cam"
[[hosts]]
name = "lab"
[hub]
host = "ctl"
[[producers]]
name = "p"
host = "cam"
channel = "cam"
shm = false
[[consumers]]
name = "c"
host = "lab"
channel = "cam"
shm = false
[explore]
kinds = ["partition", "host_kill", "schema_conflict", "kill"]
max_faults = 5
window = ["1s", "4s"]
`

// TestGeneratorDrawsHostFaultsAndIntruders: explore draws partition (the
// target host cut off from every other host), host_kill (never the hub's
// host) and schema_conflict (an intruder of its own per fault, with a schema
// no producer has); nothing is drawn on a host, or a node of a host, after
// that host's power cut; every schedule resolves.
func TestGeneratorDrawsHostFaultsAndIntruders(t *testing.T) {
	v := loadVariant(t, exploreHostsSystem)
	g := newGenerator(v)
	hostOf := map[string]string{"p": "cam", "c": "lab", scenario.HubName: "ctl"}
	kinds := map[scenario.FaultKind]bool{}
	for i, fs := range drawSchedules(g, 2, 300) {
		deadHost := map[string]bool{}
		names := map[string]bool{}
		for _, f := range fs {
			kinds[f.Kind] = true
			if deadHost[f.Target] || deadHost[hostOf[f.Target]] {
				t.Fatalf("%s on %s after its host's power cut: %v", f.Kind, f.Target, fs)
			}
			switch f.Kind {
			case scenario.FaultHostKill:
				if f.Target == "ctl" {
					t.Fatalf("host_kill of the hub's host: %v", fs)
				}
				deadHost[f.Target] = true
			case scenario.FaultPartition:
				peers := slices.Clone(f.Peers)
				slices.Sort(peers)
				if !reflect.DeepEqual(f.Hosts, []string{f.Target}) || len(peers) != 2 || slices.Contains(peers, f.Target) || f.Duration <= 0 {
					t.Fatalf("partition of %s: hosts %v peers %v duration %v", f.Target, f.Hosts, f.Peers, f.Duration.D())
				}
			case scenario.FaultSchemaConflict:
				if f.Schema == "" || names[f.Name] {
					t.Fatalf("schema_conflict intruder %q schema %q: %v", f.Name, f.Schema, fs)
				}
				names[f.Name] = true
			}
		}
		if _, err := planFor(v, fs, 1, i); err != nil {
			t.Fatalf("schedule %v does not resolve: %v", fs, err)
		}
	}
	for _, k := range []scenario.FaultKind{scenario.FaultPartition, scenario.FaultHostKill, scenario.FaultSchemaConflict} {
		if !kinds[k] {
			t.Errorf("300 schedules never drew %s (drew %v)", k, kinds)
		}
	}
}
