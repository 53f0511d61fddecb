package scenario

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// Plan is a resolved scenario: every node named, every fault (fixed or drawn
// from the seed) at an explicit time, every default filled in. The same variant
// and seed always give the same Plan, and Encode gives the same bytes. A Plan is
// what resolved.toml holds and what `plh-sim replay` runs again.
type Plan struct {
	Name           string       `toml:"name"`
	Description    string       `toml:"description,omitempty"`
	Source         string       `toml:"source"`
	Seed           uint64       `toml:"seed"`
	Vars           []Var        `toml:"vars,omitempty"`
	Duration       Duration     `toml:"duration"`
	StartupTimeout Duration     `toml:"startup_timeout"`
	StopGrace      Duration     `toml:"stop_grace"`
	Hosts          []HostSpec   `toml:"hosts,omitempty"`
	Hub            HubSpec      `toml:"hub"`
	Nodes          []PlanNode   `toml:"nodes"`
	Faults         []FaultSpec  `toml:"faults"`
	Expect         []ExpectSpec `toml:"expect"`
	// Invariants holds the built-in invariants a scenario turned off.
	Invariants map[string]InvariantSpec `toml:"invariants,omitempty"`
}

// PlanNode is one process to spawn: a producer or a consumer.
type PlanNode struct {
	Role     string `toml:"role"` // "producer" or "consumer"
	NodeSpec `toml:",inline"`
}

// Defaults applied during resolution.
const (
	DefaultStartupTimeout = 30 * time.Second
	DefaultStopGrace      = 5 * time.Second
)

// Node returns the plan's node named name.
func (p *Plan) Node(name string) (*PlanNode, bool) {
	for i := range p.Nodes {
		if p.Nodes[i].Name == name {
			return &p.Nodes[i], true
		}
	}
	return nil, false
}

// Channels returns the logical channel names used by the plan, sorted.
func (p *Plan) Channels() []string {
	set := map[string]bool{}
	for _, n := range p.Nodes {
		set[n.Channel] = true
	}
	for _, f := range p.Faults {
		if f.Channel != "" {
			set[f.Channel] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Resolve turns a validated variant into a Plan with the given seed. It is a
// pure function of (variant, seed).
func Resolve(v Variant, seed uint64) (*Plan, error) {
	s := v.Scenario
	p := &Plan{
		Name: s.Name, Description: s.Description, Source: v.File, Seed: seed, Vars: v.Vars,
		Duration: s.Duration, StartupTimeout: s.StartupTimeout, StopGrace: s.StopGrace,
		Nodes: expandNodes(s), Hosts: s.Hosts,
	}
	if p.StartupTimeout == 0 {
		p.StartupTimeout = Duration(DefaultStartupTimeout)
	}
	if p.StopGrace == 0 {
		p.StopGrace = Duration(DefaultStopGrace)
	}
	if s.Hub != nil {
		p.Hub = *s.Hub
	}
	p.Invariants = s.Invariants
	ids := map[string]int{}
	addFault := func(f FaultSpec, prefix string) {
		if f.ID == "" {
			f.ID = prefix + string(f.Kind)
			if f.Target != "" {
				f.ID += "-" + f.Target
			}
		}
		if n := ids[f.ID]; n > 0 {
			ids[f.ID] = n + 1
			f.ID = fmt.Sprintf("%s-%d", f.ID, n+1)
		} else {
			ids[f.ID] = 1
		}
		p.Faults = append(p.Faults, f)
	}
	for _, f := range s.Faults {
		addFault(fillFault(p, f), "")
	}
	for i, r := range s.RandomFaults {
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		for _, f := range drawFaults(rng, r, s.Duration) {
			addFault(fillFault(p, f), fmt.Sprintf("random%d-", i+1))
		}
	}
	sort.SliceStable(p.Faults, func(i, j int) bool { return p.Faults[i].At < p.Faults[j].At })
	for _, f := range p.Faults {
		switch f.Kind {
		case FaultKill:
			if f.Signal == "KILL" {
				defaultExit(p, f.Target, ExitKilled)
			} else {
				defaultExit(p, f.Target, ExitAny)
			}
		case FaultKillHoldingLock:
			defaultExit(p, f.Target, ExitKilled)
		case FaultLinkDelay, FaultLinkReset:
			if n, ok := p.Node(f.Target); ok {
				n.LinkProxy = true
			}
		case FaultHostKill:
			hostKilledExits(p, f.Target)
		case FaultCorruptControl:
			scribbledExits(p, f.Channel)
		}
	}
	shmDefaults(p)
	noHubDefaults(p)
	if p.Hub.Exit == "" {
		p.Hub.Exit = ExitClean
	}
	for i := range p.Nodes {
		if p.Nodes[i].Exit == "" {
			p.Nodes[i].Exit = ExitClean
		}
	}
	for _, e := range s.Expect {
		if e.Type == "" {
			e.Type = ExpectEvent
		}
		if e.Name == "" {
			e.Name = expectName(e)
		}
		p.Expect = append(p.Expect, e)
	}
	if v.src != nil {
		if err := checkAfter(&v, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// shmDefaults makes a channel whose producer uses shared memory work without
// more keys: its other nodes use shm too unless they say otherwise, and nodes
// without a secret get one derived from the seed and the channel (a consumer
// attaches only with the producer's secret).
func shmDefaults(p *Plan) {
	shmChannel := map[string]bool{}
	for _, n := range p.Nodes {
		if n.Role == "producer" && n.Shm != nil && *n.Shm {
			shmChannel[n.Channel] = true
		}
	}
	for i := range p.Nodes {
		n := &p.Nodes[i]
		if !shmChannel[n.Channel] || remoteReader(p, n) {
			continue
		}
		if n.Shm == nil {
			yes := true
			n.Shm = &yes
		}
		if n.Secret == 0 {
			n.Secret = channelSecret(p.Seed, n.Channel)
		}
	}
}

// channelSecret derives a non-zero secret from the seed and a channel name.
func channelSecret(seed uint64, channel string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", seed, channel)
	return h.Sum64()>>1 | 1
}

func defaultExit(p *Plan, target string, m ExitMode) {
	if target == HubName && p.Hub.Exit == "" {
		p.Hub.Exit = m
	}
	if n, ok := p.Node(target); ok && n.Exit == "" {
		n.Exit = m
	}
}

// fillFault fills the per-kind defaults of a fault.
func fillFault(p *Plan, f FaultSpec) FaultSpec {
	switch f.Kind {
	case FaultKill, FaultKillHoldingLock, FaultBrokerRestart, FaultProducerRestart:
		if f.Signal == "" {
			f.Signal = "KILL"
		}
	case FaultSchemaConflict:
		if f.Name == "" {
			f.Name = "intruder"
		}
	case FaultCorruptSlot:
		if f.Slot == "" {
			f.Slot = "next"
		}
	}
	if f.Target == "" && (f.Kind == FaultBrokerRestart || f.Kind == FaultHubPause) {
		f.Target = "hub"
	}
	f = fillMoreFault(f)
	if f.Channel == "" && (f.Kind == FaultSchemaConflict || f.Kind == FaultCorruptSlot ||
		f.Kind == FaultConsumerChurn || f.Kind == FaultCorruptControl) {
		if n, ok := p.Node(f.Target); ok {
			f.Channel = n.Channel
		}
	}
	return f
}

// drawFaults draws the faults of one [[random_faults]] block.
func drawFaults(rng *rand.Rand, r RandomSpec, runFor Duration) []FaultSpec {
	lo, hi := Duration(0), runFor
	if len(r.Window) > 0 {
		lo = r.Window[0]
	}
	if len(r.Window) > 1 {
		hi = r.Window[1]
	}
	var out []FaultSpec
	var pairs [][2]int // distinct: the (kind, target) pairs not drawn yet
	if r.Distinct {
		for k := range r.Kinds {
			for t := range r.Targets {
				pairs = append(pairs, [2]int{k, t})
			}
		}
	}
	t := lo + pick(rng, r.Interval)
	for t <= hi && (r.Count == 0 || len(out) < r.Count) {
		k, tg := rng.IntN(len(r.Kinds)), rng.IntN(len(r.Targets))
		if r.Distinct {
			if len(pairs) == 0 {
				break
			}
			i := rng.IntN(len(pairs))
			k, tg = pairs[i][0], pairs[i][1]
			pairs = append(pairs[:i], pairs[i+1:]...)
		}
		f := FaultSpec{
			At:     t,
			Kind:   r.Kinds[k],
			Target: r.Targets[tg],
			Signal: r.Signal,
		}
		if len(r.Duration) > 0 {
			f.Duration = pick(rng, r.Duration)
		}
		if len(r.Delay) > 0 {
			f.Delay = pick(rng, r.Delay)
		}
		out = append(out, f)
		step := pick(rng, r.Interval)
		if step == 0 {
			step = Duration(time.Millisecond)
		}
		t += step
	}
	return out
}

// pick draws uniformly from [r[0], r[1]] (or returns r[0] with one value),
// rounded to the millisecond so resolved files stay readable.
func pick(rng *rand.Rand, r []Duration) Duration {
	switch len(r) {
	case 0:
		return 0
	case 1:
		return r[0]
	}
	lo, hi := int64(r[0])/1e6, int64(r[1])/1e6
	if hi <= lo {
		return Duration(lo * 1e6)
	}
	return Duration((lo + rng.Int64N(hi-lo+1)) * 1e6)
}

// expandNodes gives every instance of every node spec its own name: a spec
// named "c" with instances = 3 becomes c1, c2, c3.
func expandNodes(s *Scenario) []PlanNode {
	var out []PlanNode
	add := func(role string, specs []NodeSpec) {
		for _, ns := range specs {
			n := max(ns.Instances, 1)
			for i := 1; i <= n; i++ {
				pn := PlanNode{Role: role, NodeSpec: ns}
				pn.Instances = 0
				if n > 1 {
					pn.Name = fmt.Sprintf("%s%d", ns.Name, i)
				}
				out = append(out, pn)
			}
		}
	}
	add("producer", s.Producers)
	add("consumer", s.Consumers)
	return out
}

func expectName(e ExpectSpec) string {
	s := string(e.Type)
	switch e.Type {
	case ExpectMetric, ExpectResource:
		s += " " + string(e.Metric)
	case ExpectDelivery:
		s += " " + e.Delivery + " on " + e.Channel
	case ExpectExit:
	default:
		s += " " + e.Kind
		if t, ok := e.Match["type"]; ok {
			s += fmt.Sprintf(" %v", t)
		}
	}
	if e.Node != "" {
		s += " at " + e.Node
	}
	if e.Each {
		s += " (each)"
	}
	if e.After != "" {
		s += " after " + e.After
	}
	if e.Within > 0 {
		s += " within " + e.Within.D().String()
	}
	if e.Until != "" {
		s += " until " + e.Until
	}
	return s
}

// Encode writes the plan as TOML (resolved.toml), deterministically.
func (p *Plan) Encode() ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Resolved schedule of %q (seed %d). `plh-sim replay DIR` runs it again.\n", p.Name, p.Seed)
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(true)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	return buf.Bytes(), nil
}

// LoadPlan reads a resolved.toml written by Encode.
func LoadPlan(file string) (*Plan, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	var p Plan
	if err := decodeStrict(file, src, &p); err != nil {
		return nil, err
	}
	if p.Name == "" || p.Duration == 0 {
		return nil, fmt.Errorf("%w: %s: not a resolved plan (no name or duration)", ErrScenario, file)
	}
	return &p, nil
}
