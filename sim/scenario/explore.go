package scenario

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pylabhub/plh/chaos"
)

// ExploreSpec is a scenario's [explore] table: what `plh-sim explore` may
// draw for each run (docs/scenarios.md, "Exploring"). `plh-sim run` ignores
// it.
type ExploreSpec struct {
	// Kinds are the fault kinds drawn (ExploreKinds).
	Kinds []FaultKind `toml:"kinds"`
	// Targets are the node names faults may hit; default every node. Each
	// kind draws among the targets it fits; broker_restart and hub_pause
	// target the hub.
	Targets []string `toml:"targets,omitempty"`
	// MaxFaults bounds the faults of one run (1..MaxExploreFaults; default 3).
	MaxFaults int `toml:"max_faults,omitempty"`
	// Window is [from, to] offsets from t0 for the faults (default: 10% of
	// the duration to the duration minus 1 s).
	Window []Duration `toml:"window,omitempty"`
	// Duration and Delay are [min, max] drawn per fault when its kind takes
	// one (defaults DefaultExploreDuration, DefaultExploreDelay).
	Duration []Duration `toml:"duration,omitempty"`
	Delay    []Duration `toml:"delay,omitempty"`
}

// Limits and defaults of [explore].
const (
	MaxExploreFaults     = 20
	DefaultExploreFaults = 3
)

// Default ranges drawn by explore.
var (
	DefaultExploreDuration = []Duration{Duration(300 * time.Millisecond), Duration(1500 * time.Millisecond)}
	DefaultExploreDelay    = []Duration{Duration(20 * time.Millisecond), Duration(200 * time.Millisecond)}
)

// ExploreKinds are the fault kinds explore can draw: every kind whose keys it
// can make up. resume and heal are left out: they only end a pause or a
// partition, and explore draws those with a duration instead.
var ExploreKinds = []string{"kill", "pause", "broker_restart", "slow_consumer", "kill_holding_lock",
	"corrupt_slot", "link_delay", "link_reset", "consumer_churn", "producer_restart", "hub_pause", "corrupt_control",
	"schema_conflict", "partition", "host_kill"}

// hostKinds target a declared host, not a node: partition cuts the target
// host off from every other declared host; host_kill cuts its power.
var hostKinds = []FaultKind{FaultPartition, FaultHostKill}

// hubKinds target the hub whatever the targets say.
var hubKinds = []FaultKind{FaultBrokerRestart, FaultHubPause}

// shmKinds need their target producer to use shared memory.
var shmKinds = []FaultKind{FaultKillHoldingLock, FaultCorruptSlot, FaultCorruptControl}

// checkMoreFault checks the kinds of explore's era: consumer_churn,
// producer_restart, hub_pause, corrupt_control.
func (c checker) checkMoreFault(f FaultSpec, key string, needTarget func(...string) error) error {
	switch f.Kind {
	case FaultConsumerChurn:
		if f.Count < 0 || f.Count > MaxRandomFaults {
			return c.errf(key+".count", "", "consumer_churn: count must be between 1 and %d", MaxRandomFaults)
		}
		if f.Channel == "" {
			return needTarget("producer", "consumer")
		}
	case FaultProducerRestart:
		return needTarget("producer")
	case FaultHubPause:
		if f.Target != "" && f.Target != HubName {
			return c.errf(key+".target", f.Target, "hub_pause targets the hub (omit target)")
		}
		if f.Duration <= 0 {
			return c.errf(key+".duration", "", "hub_pause needs duration (how long the hub stays stopped)")
		}
	case FaultCorruptControl:
		if f.Channel == "" {
			return needTarget("producer")
		}
	}
	return nil
}

// fillMoreFault fills the defaults of those kinds.
func fillMoreFault(f FaultSpec) FaultSpec {
	switch f.Kind {
	case FaultConsumerChurn:
		if f.Count == 0 {
			f.Count = 5
		}
		if f.Every == 0 {
			f.Every = Duration(50 * time.Millisecond)
		}
	case FaultCorruptControl:
		if f.Control == "" {
			f.Control = chaos.TargetRandom
		}
	}
	return f
}

// scribbledExits lets every node of a channel whose control zone a
// corrupt_control fault scribbles end as it may (exit "any" unless set): a
// consumer whose heartbeat entry was stolen stops with an error, by design.
func scribbledExits(p *Plan, channel string) {
	for _, n := range p.Nodes {
		if n.Channel == channel {
			defaultExit(p, n.Name, ExitAny)
		}
	}
}

// checkExplore validates [explore]: known explorable kinds and targets, each
// kind fitting at least one target, bounds in order.
func (c checker) checkExplore(x *ExploreSpec, roles map[string]string) error {
	if x == nil {
		return nil
	}
	if len(x.Kinds) == 0 {
		return c.errf("explore.kinds", "", "explore needs kinds (%s)", strings.Join(ExploreKinds, ", "))
	}
	for i := range x.Kinds {
		if err := checkEnum(c, "explore.kinds", &x.Kinds[i], "explorable fault kind", ExploreKinds); err != nil {
			return err
		}
	}
	for _, t := range x.Targets {
		if _, ok := roles[t]; !ok && t != HubName && !c.isHost(t) {
			return c.errf("explore.targets", t, "unknown target %q (a node name, a declared host or \"hub\")", t)
		}
	}
	if x.MaxFaults < 0 || x.MaxFaults > MaxExploreFaults {
		return c.errf("explore.max_faults", "", "must be between 1 and %d", MaxExploreFaults)
	}
	for _, r := range []struct {
		key string
		v   []Duration
	}{{"explore.window", x.Window}, {"explore.duration", x.Duration}, {"explore.delay", x.Delay}} {
		if len(r.v) > 2 || (len(r.v) == 2 && r.v[0] > r.v[1]) {
			return c.errf(r.key, "", "want [min, max] (or [fixed]) with min ≤ max")
		}
	}
	if len(x.Window) > 0 && x.Window[len(x.Window)-1] > c.v.Scenario.Duration {
		return c.errf("explore.window", "", "the window ends after the run (duration %v)", c.v.Scenario.Duration.D())
	}
	pairs := explorePairs(c.v.Scenario, roles)
	for _, k := range x.Kinds {
		if !slices.ContainsFunc(pairs, func(f FaultSpec) bool { return f.Kind == k }) {
			return c.errf("explore.kinds", string(k), "%s fits none of the targets %v", k, x.Targets)
		}
	}
	return nil
}

// ExplorePairs returns the (kind, target) pairs explore may draw for v: one
// FaultSpec per pair, with only Kind and Target set, in a stable order.
func ExplorePairs(v Variant) []FaultSpec {
	roles := map[string]string{}
	for _, n := range expandNodes(v.Scenario) {
		roles[n.Name] = n.Role
	}
	return explorePairs(v.Scenario, roles)
}

func explorePairs(s *Scenario, roles map[string]string) []FaultSpec {
	x := s.Explore
	if x == nil {
		return nil
	}
	targets := x.Targets
	if len(targets) == 0 {
		for _, n := range expandNodes(s) {
			targets = append(targets, n.Name)
		}
		targets = append(targets, HubName)
	}
	shmNode := map[string]bool{}
	for _, n := range expandNodes(s) {
		shmNode[n.Name] = n.Shm != nil && *n.Shm
	}
	c := checker{&Variant{Scenario: s}}
	var out []FaultSpec
	for _, k := range x.Kinds {
		if slices.Contains(hubKinds, k) {
			out = append(out, FaultSpec{Kind: k, Target: HubName})
			continue
		}
		if slices.Contains(hostKinds, k) {
			for _, h := range exploreHosts(s, k) {
				out = append(out, FaultSpec{Kind: k, Target: h})
			}
			continue
		}
		for _, t := range targets {
			f := FaultSpec{Kind: k, Target: t, Delay: 1, Duration: 1}
			if t == HubName {
				continue // the hub: broker_restart and hub_pause (a kill would end the run's broker for good)
			}
			if slices.Contains(shmKinds, k) && !shmNode[t] {
				continue
			}
			if k == FaultSchemaConflict {
				f.Schema = "explore"
			}
			if c.checkFault(f, roles, "explore") == nil {
				out = append(out, FaultSpec{Kind: k, Target: t})
			}
		}
	}
	return out
}

// exploreHosts returns the hosts a host kind may target: the declared hosts
// named in [explore] targets, or every declared host when targets names none.
// partition needs another host to cut the target off from; host_kill never
// targets the hub's host (that would end the run's broker for good).
func exploreHosts(s *Scenario, k FaultKind) []string {
	if k == FaultPartition && len(s.Hosts) < 2 {
		return nil
	}
	var all, named []string
	for _, h := range s.Hosts {
		if k == FaultHostKill && s.Hub != nil && s.Hub.Host == h.Name {
			continue
		}
		all = append(all, h.Name)
		if slices.Contains(s.Explore.Targets, h.Name) {
			named = append(named, h.Name)
		}
	}
	if len(named) > 0 {
		return named
	}
	return all
}

// ExplorePartition fills a drawn partition of the host target: cut off from
// every other declared host, both ways.
func ExplorePartition(v Variant, f FaultSpec) FaultSpec {
	f.Hosts, f.Peers = []string{f.Target}, nil
	for _, h := range v.Scenario.Hosts {
		if h.Name != f.Target {
			f.Peers = append(f.Peers, h.Name)
		}
	}
	return f
}

// ExploreHostOf returns the host a node runs on ("" for the machine itself);
// the hub is HubName.
func ExploreHostOf(v Variant, node string) string {
	if node == HubName {
		if v.Scenario.Hub != nil {
			return v.Scenario.Hub.Host
		}
		return ""
	}
	for _, n := range expandNodes(v.Scenario) {
		if n.Name == node {
			return n.Host
		}
	}
	return ""
}

// ExploreWindow returns the [from, to] offsets explore draws fault times in.
func ExploreWindow(v Variant) (Duration, Duration) {
	d := v.Scenario.Duration
	if x := v.Scenario.Explore; x != nil && len(x.Window) > 0 {
		if len(x.Window) == 1 {
			return x.Window[0], x.Window[0]
		}
		return x.Window[0], x.Window[1]
	}
	hi := d - Duration(time.Second)
	if hi <= d/10 {
		hi = d
	}
	return d / 10, hi
}

// WithFaults returns a copy of v whose faults are exactly fs (its own
// [[faults]] and [[random_faults]] replaced), for Resolve: explore's drawn
// schedules and shrink's candidates resolve like a file that listed them.
func WithFaults(v Variant, fs []FaultSpec) (Variant, error) {
	s, err := cloneScenario(v.Scenario)
	if err != nil {
		return v, err
	}
	s.Faults = append([]FaultSpec(nil), fs...)
	s.RandomFaults = nil
	v.Scenario = s
	return v, nil
}

// SourceVariant loads the scenario file a plan was resolved from and returns
// the variant of the plan's matrix combination (for `plh-sim shrink`).
func SourceVariant(p *Plan) (Variant, error) {
	vs, err := Load(p.Source)
	if err != nil {
		return Variant{}, err
	}
	for _, v := range vs {
		if slices.Equal(v.Vars, p.Vars) {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("%w: %s has no variant %v", ErrScenario, p.Source, p.Vars)
}

// isHost reports whether name is a declared host.
func (c checker) isHost(name string) bool {
	return slices.ContainsFunc(c.v.Scenario.Hosts, func(h HostSpec) bool { return h.Name == name })
}
