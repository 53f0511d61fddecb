package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/sim/scenario"
)

// generator draws fault schedules for explore from a scenario's [explore]
// table: fresh ones, and mutations of schedules of the corpus.
type generator struct {
	v        scenario.Variant
	pairs    []scenario.FaultSpec // (kind, target) pairs that may be drawn
	lo, hi   scenario.Duration    // window of fault times
	max      int                  // faults per run at most
	duration []scenario.Duration
	delay    []scenario.Duration
}

func newGenerator(v scenario.Variant) *generator {
	x := v.Scenario.Explore
	g := &generator{v: v, pairs: scenario.ExplorePairs(v), max: x.MaxFaults, duration: x.Duration, delay: x.Delay}
	g.lo, g.hi = scenario.ExploreWindow(v)
	if g.max == 0 {
		g.max = scenario.DefaultExploreFaults
	}
	if len(g.duration) == 0 {
		g.duration = scenario.DefaultExploreDuration
	}
	if len(g.delay) == 0 {
		g.delay = scenario.DefaultExploreDelay
	}
	return g
}

// fresh draws 1..max faults.
func (g *generator) fresh(rng *rand.Rand) []scenario.FaultSpec {
	n := 1 + rng.IntN(g.max)
	out := make([]scenario.FaultSpec, 0, n)
	for range n {
		out = append(out, g.draw(rng, g.pairs[rng.IntN(len(g.pairs))]))
	}
	return g.settle(out)
}

// settle orders a schedule by time, names its intruders and drops the faults
// that could not fire.
func (g *generator) settle(fs []scenario.FaultSpec) []scenario.FaultSpec {
	return nameIntruders(g.dropAfterKill(sortFaults(fs)))
}

// dropAfterKill removes the faults that follow a kill (SIGKILL) or
// kill_holding_lock of the same target, or a host_kill of the target's host
// (or of the target host itself): it is gone, they could not fire.
func (g *generator) dropAfterKill(fs []scenario.FaultSpec) []scenario.FaultSpec {
	dead := map[string]bool{}
	deadHost := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if dead[f.Target] || deadHost[f.Target] || deadHost[scenario.ExploreHostOf(g.v, f.Target)] {
			continue
		}
		out = append(out, f)
		switch {
		case f.Kind == scenario.FaultKillHoldingLock || f.Kind == scenario.FaultKill && (f.Signal == "" || f.Signal == "KILL"):
			dead[f.Target] = true
		case f.Kind == scenario.FaultHostKill:
			deadHost[f.Target] = true
		}
	}
	return out
}

// nameIntruders gives each schema_conflict of a schedule its own intruder
// node name, so two of them in one run do not collide.
func nameIntruders(fs []scenario.FaultSpec) []scenario.FaultSpec {
	k := 0
	for i := range fs {
		if fs[i].Kind == scenario.FaultSchemaConflict {
			k++
			fs[i].Name = fmt.Sprintf("intruder%d", k)
		}
	}
	return fs
}

// intruderSchema is the schema a drawn schema_conflict registers with: one no
// scenario's producer uses, so the intruder always conflicts.
const intruderSchema = "explore-intruder-schema"

// draw fills one fault of the pair's kind and target with a time and the
// keys its kind takes, all drawn from rng.
func (g *generator) draw(rng *rand.Rand, pair scenario.FaultSpec) scenario.FaultSpec {
	f := scenario.FaultSpec{Kind: pair.Kind, Target: pair.Target, At: between(rng, g.lo, g.hi)}
	switch f.Kind {
	case scenario.FaultPause, scenario.FaultHubPause, scenario.FaultLinkReset, scenario.FaultBrokerRestart:
		f.Duration = between(rng, g.duration[0], g.duration[len(g.duration)-1])
	case scenario.FaultPartition:
		f.Duration = between(rng, g.duration[0], g.duration[len(g.duration)-1])
		f = scenario.ExplorePartition(g.v, f)
	case scenario.FaultSchemaConflict:
		f.Schema = intruderSchema
	case scenario.FaultLinkDelay:
		f.Duration = between(rng, g.duration[0], g.duration[len(g.duration)-1])
		f.Delay = between(rng, g.delay[0], g.delay[len(g.delay)-1])
	case scenario.FaultSlowConsumer:
		f.Delay = between(rng, g.delay[0], g.delay[len(g.delay)-1])
	case scenario.FaultConsumerChurn:
		f.Count = 2 + rng.IntN(19)
		f.Every = between(rng, scenario.Duration(20*time.Millisecond), scenario.Duration(100*time.Millisecond))
	case scenario.FaultCorruptControl:
		// A concrete word, so resolved.toml replays the same scribble.
		f.Control = chaos.ControlTargets[rng.IntN(len(chaos.ControlTargets)-1)]
	case scenario.FaultCorruptSlot:
		f.Slot = []scenario.SlotPick{"next", "latest", "all"}[rng.IntN(3)]
	}
	return f
}

// mutate changes a corpus schedule by one or two of: shift a fault in time,
// add one, drop one, retarget one (same kind, another target), redraw one's
// duration or delay.
func (g *generator) mutate(rng *rand.Rand, base []scenario.FaultSpec) ([]scenario.FaultSpec, string) {
	fs := slices.Clone(base)
	var ops []string
	for n := 1 + rng.IntN(2); n > 0; n-- {
		i := rng.IntN(max(len(fs), 1))
		switch op := rng.IntN(5); {
		case op == 0 && len(fs) > 0:
			shift := scenario.Duration(rng.Int64N(int64(2*time.Second))) - scenario.Duration(time.Second)
			fs[i].At = toMillis(min(max(fs[i].At+shift, g.lo), g.hi))
			ops = append(ops, "shift "+faultLabel(fs[i]))
		case op == 1 && len(fs) < g.max || len(fs) == 0:
			f := g.draw(rng, g.pairs[rng.IntN(len(g.pairs))])
			fs = append(fs, f)
			ops = append(ops, "add "+faultLabel(f))
		case op == 2 && len(fs) > 1:
			ops = append(ops, "drop "+faultLabel(fs[i]))
			fs = slices.Delete(fs, i, i+1)
		case op == 3:
			var alt []scenario.FaultSpec
			for _, p := range g.pairs {
				if p.Kind == fs[i].Kind && p.Target != fs[i].Target {
					alt = append(alt, p)
				}
			}
			if len(alt) > 0 {
				old := faultLabel(fs[i])
				fs[i].Target = alt[rng.IntN(len(alt))].Target
				if fs[i].Kind == scenario.FaultPartition {
					fs[i] = scenario.ExplorePartition(g.v, fs[i])
				}
				ops = append(ops, "retarget "+old+" to "+fs[i].Target)
			}
		default:
			d := g.draw(rng, fs[i])
			fs[i].Duration, fs[i].Delay, fs[i].Count, fs[i].Every = d.Duration, d.Delay, d.Count, d.Every
			ops = append(ops, "redraw "+faultLabel(fs[i]))
		}
	}
	return g.settle(fs), strings.Join(ops, ", ")
}

// between draws a duration in [lo, hi], to the millisecond.
func between(rng *rand.Rand, lo, hi scenario.Duration) scenario.Duration {
	a, b := int64(lo)/1e6, int64(hi)/1e6
	if b <= a {
		return scenario.Duration(a * 1e6)
	}
	return scenario.Duration((a + rng.Int64N(b-a+1)) * 1e6)
}

func sortFaults(fs []scenario.FaultSpec) []scenario.FaultSpec {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].At < fs[j].At })
	return fs
}

// scheduleText is a one-line summary of a schedule: "kill c1@1.2s, pause p@2s".
func scheduleText(fs []scenario.FaultSpec) string {
	if len(fs) == 0 {
		return "no faults"
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s@%v", faultLabel(f), f.At.D())
		if f.Duration > 0 {
			parts[i] += fmt.Sprintf("+%v", f.Duration.D())
		}
	}
	return strings.Join(parts, ", ")
}

// faultLabel names a fault in progress lines: its id, else "kind target".
func faultLabel(f scenario.FaultSpec) string {
	if f.ID != "" {
		return f.ID
	}
	return string(f.Kind) + " " + f.Target
}

func toMillis(d scenario.Duration) scenario.Duration { return d / 1e6 * 1e6 }
