package scenario

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/pylabhub/plh/chaos"
)

// HubName is the node name of the hub process in events and fault targets.
const HubName = "hub"

// Limits that keep a scenario (and a fuzzed file) bounded.
const (
	MaxInstances    = 64   // per node spec
	MaxRandomFaults = 1000 // per [[random_faults]] block
	MaxVariants     = 256  // matrix combinations
)

// EngineName is the node name of the events the engine itself records.
const EngineName = "plh-sim"

// checker collects the location of validation errors.
type checker struct {
	v *Variant
}

func (c checker) errf(key, val, format string, args ...any) error {
	short := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		short = key[i+1:]
	}
	return c.errAt(lineOf(c.v.src, short, val), key, format, args...)
}

// errAt reports an error at a known line (0: unknown).
func (c checker) errAt(line int, key, format string, args ...any) error {
	where := c.v.File
	if line > 0 {
		where = fmt.Sprintf("%s:%d", c.v.File, line)
	}
	if len(c.v.Vars) > 0 {
		where += " (" + c.v.Scenario.Name + ")"
	}
	return fmt.Errorf("%w: %s: key %q: %s", ErrScenario, where, key, fmt.Sprintf(format, args...))
}

// validate checks what decoding cannot: required keys, references between
// parts, per-kind requirements.
func validate(v *Variant) error {
	s := v.Scenario
	c := checker{v}
	if s.Duration <= 0 {
		return c.errf("duration", "", "required, a positive duration such as \"3s\"")
	}
	names := map[string]string{HubName: "hub", EngineName: "engine"}
	roles := map[string]string{}
	for _, group := range []struct {
		key   string
		role  string
		specs []NodeSpec
	}{{"producers", "producer", s.Producers}, {"consumers", "consumer", s.Consumers}} {
		for i, n := range group.specs {
			if n.Name == "" {
				return c.errf(group.key+".name", "", "every node needs a name")
			}
			if strings.ContainsAny(n.Name, " /\\*?[]") {
				return c.errf(group.key+".name", n.Name, "node name %q may not contain spaces, slashes or glob characters", n.Name)
			}
			if n.Channel == "" {
				return c.errf(group.key+".channel", "", "node %q needs a channel", n.Name)
			}
			if strings.ContainsAny(n.Channel, "/ ") {
				return c.errf(group.key+".channel", n.Channel, "channel %q may not contain '/' or spaces", n.Channel)
			}
			if n.Instances > MaxInstances {
				return c.errf(group.key+".instances", "", "node %q: at most %d instances", n.Name, MaxInstances)
			}
			if n.Instances < 0 || n.SlotSize < 0 || n.Slots < 0 || n.Messages < 0 || n.Rate < 0 {
				return c.errf(group.key, n.Name, "node %q: instances, slot_size, slots, messages and rate must not be negative", n.Name)
			}
			if n.Group != "" && group.role != "consumer" {
				return c.errf(group.key+".group", n.Group, "node %q: group is a consumer's key (a consumer group, B-7)", n.Name)
			}
			if err := c.checkNodeEnums(group.key, &group.specs[i]); err != nil {
				return err
			}
			if err := c.checkProgram(group.key, &group.specs[i]); err != nil {
				return err
			}
			for _, pn := range expandNodes(&Scenario{Producers: []NodeSpec{n}}) {
				if prev, dup := names[pn.Name]; dup {
					lines := linesOf(c.v.src, "name", n.Name)
					return c.errAt(lines[len(lines)-1], group.key+".name", "node name %q is already used by the %s", pn.Name, prev)
				}
				names[pn.Name] = group.role + " " + n.Name
				roles[pn.Name] = group.role
			}
		}
	}
	if s.Hub != nil {
		if err := checkEnum(c, "hub.exit", &s.Hub.Exit, "exit mode", exitModes); err != nil {
			return err
		}
	}
	if err := c.checkNoHub(); err != nil {
		return err
	}
	if err := c.checkHosts(); err != nil {
		return err
	}
	for i := range s.Faults {
		if err := c.checkFaultEnums(&s.Faults[i]); err != nil {
			return err
		}
		if err := c.checkFault(s.Faults[i], roles, "faults"); err != nil {
			return err
		}
	}
	for ri := range s.RandomFaults {
		r := &s.RandomFaults[ri]
		for i := range r.Kinds {
			if err := checkEnum(c, "random_faults.kinds", &r.Kinds[i], "fault kind", FaultKinds); err != nil {
				return err
			}
		}
		if err := c.checkSignal("random_faults.signal", &r.Signal); err != nil {
			return err
		}
		if len(r.Kinds) == 0 || len(r.Targets) == 0 {
			return c.errf("random_faults.kinds", "", "random faults need kinds and targets")
		}
		if len(r.Interval) == 0 || len(r.Interval) > 2 || r.Interval[len(r.Interval)-1] <= 0 {
			return c.errf("random_faults.interval", "", "want [min, max] (or [fixed]) with a positive max")
		}
		if len(r.Window) > 2 || len(r.Duration) > 2 || len(r.Delay) > 2 {
			return c.errf("random_faults.window", "", "window, duration and delay take one or two values")
		}
		if r.Count < 0 || r.Count > MaxRandomFaults {
			return c.errf("random_faults.count", "", "must be between 0 and %d", MaxRandomFaults)
		}
		if pairs := len(r.Kinds) * len(r.Targets); r.Distinct && r.Count > pairs {
			return c.errf("random_faults.count", "", "distinct = true draws each (kind, target) pair at most once: count %d is above the %d pairs", r.Count, pairs)
		}
		lo, hi := Duration(0), s.Duration
		if len(r.Window) > 0 {
			lo = r.Window[0]
		}
		if len(r.Window) > 1 {
			hi = r.Window[1]
		}
		if step := max(r.Interval[0], Duration(1e6)); r.Count == 0 && hi > lo && (hi-lo)/step > MaxRandomFaults {
			return c.errf("random_faults.interval", "", "the window would hold more than %d faults: set count or a longer interval", MaxRandomFaults)
		}
		for _, k := range r.Kinds {
			for _, t := range r.Targets {
				f := FaultSpec{Kind: k, Target: t, Signal: r.Signal, Delay: 1, Duration: 1}
				if len(r.Delay) > 0 {
					f.Delay = r.Delay[0]
				}
				if err := c.checkFault(f, roles, "random_faults"); err != nil {
					return err
				}
			}
		}
	}
	// Nodes spawned by faults (schema_conflict intruders) may be named by
	// expectations too.
	for _, f := range s.Faults {
		if f.Kind == FaultSchemaConflict {
			name := f.Name
			if name == "" {
				name = "intruder"
			}
			roles[name] = "producer"
		}
	}
	if err := c.checkInvariants(s.Invariants, roles); err != nil {
		return err
	}
	if err := c.checkExplore(s.Explore, roles); err != nil {
		return err
	}
	for i := range s.Expect {
		e := &s.Expect[i]
		if err := checkEnum(c, "expect.type", &e.Type, "expectation type", expectTypes); err != nil {
			return err
		}
		if err := c.checkPerFault(*e); err != nil {
			return err
		}
		if handled, err := c.checkResourceOrDelivery(e, roles); err != nil {
			return err
		} else if handled {
			if err := c.checkNodeRef(e.Node, roles); err != nil {
				return err
			}
			continue
		}
		if f, ok := strings.CutPrefix(string(e.Metric), "exit."); !ok || f == "" {
			if err := checkEnum(c, "expect.metric", &e.Metric, "metric", metrics); err != nil {
				return err
			}
		}
		if err := checkEnum(c, "expect.until", &e.Until, "window end", untils); err != nil {
			return err
		}
		if err := c.checkExpect(*e, roles); err != nil {
			return err
		}
	}
	return c.checkReadMinimum(s.Expect, roles)
}

// quietBounds are metrics whose upper bound holds when nothing is read at all.
var quietBounds = []string{"lost", "gaps", "reorders", "checksum_errors", "latency_max_ns", "latency_p50_ns",
	"exit.lost", "exit.gaps", "exit.reorders", "exit.checksum_errors"}

// checkReadMinimum refuses an upper bound on losses, gaps, reorders, checksum
// errors or latency of consumers unless an expectation also asks those
// consumers to read something (metric read or exit.read with min > 0): such
// a bound alone passes when nothing happens.
func (c checker) checkReadMinimum(exps []ExpectSpec, roles map[string]string) error {
	covered := func(name string) bool {
		for _, e := range exps {
			if (e.Metric == "read" || e.Metric == "exit.read") && e.Min != nil && *e.Min > 0 && nodeMatches(e.Node, name) {
				return true
			}
		}
		return false
	}
	for _, e := range exps {
		if e.Type != ExpectMetric || !contains(quietBounds, string(e.Metric)) || e.Max == nil || (e.Min != nil && *e.Min > 0) {
			continue
		}
		names := make([]string, 0, len(roles))
		for name := range roles {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if roles[name] == "consumer" && nodeMatches(e.Node, name) && !covered(name) {
				return c.errf("expect.metric", string(e.Metric), "%s ≤ %v holds when %s reads nothing: add a read minimum "+
					"for it (type = \"metric\", metric = \"read\", node = %q, min = 1)", e.Metric, float64(*e.Max), name, name)
			}
		}
	}
	return nil
}

// nodeMatches reports whether an expectation's node pattern (empty: any)
// matches node name.
func nodeMatches(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

func (c checker) checkFault(f FaultSpec, roles map[string]string, key string) error {
	if f.Kind == "" {
		return c.errf(key+".kind", "", "every fault needs a kind (%s)", strings.Join(FaultKinds, ", "))
	}
	role, known := roles[f.Target]
	if f.Target == HubName {
		known, role = true, HubName
	}
	needTarget := func(want ...string) error {
		if !known {
			return c.errf(key+".target", f.Target, "%s: unknown target %q (a node name%s)", f.Kind, f.Target,
				map[bool]string{true: " or \"hub\"", false: ""}[len(want) == 0 || contains(want, HubName)])
		}
		if len(want) > 0 && !contains(want, role) {
			return c.errf(key+".target", f.Target, "%s: target %q is a %s, want a %s", f.Kind, f.Target, role, strings.Join(want, " or "))
		}
		return nil
	}
	switch f.Kind {
	case FaultKill, FaultPause, FaultResume:
		return needTarget()
	case FaultBrokerRestart:
		if f.Target != "" && f.Target != HubName {
			return c.errf(key+".target", f.Target, "broker_restart targets the hub (omit target)")
		}
	case FaultSchemaConflict:
		if f.Schema == "" {
			return c.errf(key+".schema", "", "schema_conflict needs the intruder's schema")
		}
		if f.Channel == "" {
			return needTarget("producer")
		}
	case FaultSlowConsumer:
		if f.Delay <= 0 {
			return c.errf(key+".delay", "", "slow_consumer needs delay (the new delay per read)")
		}
		return needTarget("consumer")
	case FaultKillHoldingLock:
		if c.isProgram(f.Target) {
			return c.errf(key+".target", f.Target, "kill_holding_lock: target %q runs its own program (command), which has no hold_lock control", f.Target)
		}
		return needTarget("producer")
	case FaultCorruptSlot:
		if f.Channel == "" {
			return needTarget("producer")
		}
	case FaultLinkDelay:
		if f.Delay <= 0 {
			return c.errf(key+".delay", "", "link_delay needs delay (added latency)")
		}
		return needTarget("producer", "consumer")
	case FaultLinkReset:
		return needTarget("producer", "consumer")
	case FaultPartition, FaultHeal, FaultHostKill:
		return c.checkHostFault(f, key)
	default:
		return c.checkMoreFault(f, key, needTarget)
	}
	return nil
}

func (c checker) checkExpect(e ExpectSpec, roles map[string]string) error {
	t := e.Type
	if t == "" {
		t = ExpectEvent
	}
	if err := c.checkNodeRef(e.Node, roles); err != nil {
		return err
	}
	for k, v := range e.Match {
		switch v.(type) {
		case string, bool, int64, float64:
		default:
			return c.errf("expect.match."+k, "", "match values must be strings, numbers or booleans")
		}
	}
	if err := c.checkKindAndMatch(e, t); err != nil {
		return err
	}
	if e.Min != nil && e.Max != nil && *e.Min > *e.Max {
		return c.errf("expect.min", "", "min %v is above max %v", *e.Min, *e.Max)
	}
	switch t {
	case ExpectEvent, ExpectNever, ExpectCount:
		if e.Kind == "" {
			return c.errf("expect.kind", "", "a %s expectation needs the event kind", t)
		}
	case ExpectMetric:
		if e.Metric == "" {
			return c.errf("expect.metric", "", "a metric expectation needs metric (%s)", strings.Join(metrics, ", "))
		}
		if e.Min == nil && e.Max == nil {
			return c.errf("expect.metric", string(e.Metric), "a metric expectation needs min or max")
		}
	case ExpectExit:
		if e.Node == "" {
			return c.errf("expect.node", "", "an exit expectation needs node")
		}
	}
	if e.To > 0 && e.From > e.To {
		return c.errf("expect.from", "", "from is after to")
	}
	if e.Until != "" && (e.Within > 0 || e.To > 0) {
		return c.errf("expect.until", e.Until, "until and within/to both end the window: set one")
	}
	if e.After == AfterStop && e.Until == UntilRunEnd {
		return c.errf("expect.until", e.Until, "a window after stop (run_end) cannot end at run_end")
	}
	if e.Each && (e.Node == "" || t == ExpectExit) {
		return c.errf("expect.each", "", "each = true checks every node matching node one by one: it needs node, and an event, never, count or metric type")
	}
	return nil
}

// checkNodeRef checks an expectation's node pattern (empty: any) names a
// node of the scenario.
func (c checker) checkNodeRef(node string, roles map[string]string) error {
	if node == "" {
		return nil
	}
	if _, err := path.Match(node, "x"); err != nil {
		return c.errf("expect.node", node, "bad node pattern %q", node)
	}
	matched := node == HubName || node == EngineName
	for n := range roles {
		if ok, _ := path.Match(node, n); ok {
			matched = true
		}
	}
	if !matched {
		return c.errf("expect.node", node, "node %q matches no node of the scenario", node)
	}
	return nil
}

// checkPerFault checks per_fault and faults: count and metric bounds only.
func (c checker) checkPerFault(e ExpectSpec) error {
	if e.Faults != "" && !e.PerFault {
		return c.errf("expect.faults", e.Faults, "faults selects the faults per_fault counts: set per_fault = true")
	}
	if !e.PerFault {
		return nil
	}
	if e.Type != ExpectCount && e.Type != ExpectMetric {
		return c.errf("expect.per_fault", "", "per_fault scales the min/max of a count or metric expectation")
	}
	if _, err := path.Match(e.Faults, "x"); err != nil {
		return c.errf("expect.faults", e.Faults, "bad fault id pattern %q", e.Faults)
	}
	return nil
}

// checkKindAndMatch checks the event kind an expectation names and its match
// keys against EventKinds (docs/events.md): a misspelt kind or field would
// never match, so a `never` or a bound on it would pass whatever happened.
func (c checker) checkKindAndMatch(e ExpectSpec, t ExpectType) error {
	kind := e.Kind
	switch t {
	case ExpectMetric:
		if field, ok := strings.CutPrefix(string(e.Metric), "exit."); ok {
			kind = "exit"
			if !hasField(kind, field) {
				return c.errf("expect.metric", string(e.Metric), "exit events have no field %q (fields: %s)",
					field, strings.Join(EventKinds[kind], ", "))
			}
		} else if e.Metric != "" {
			kind, _, _ = MetricSource(e.Metric)
		}
	case ExpectExit:
		kind = ""
	default:
		if _, ok := EventKinds[kind]; !ok && kind != "" {
			return c.errf("expect.kind", kind, "unknown event kind %q (docs/events.md; kinds: %s)", kind, strings.Join(sortedKinds(), ", "))
		}
	}
	if kind == "" {
		return nil
	}
	for k := range e.Match {
		if !hasField(kind, k) {
			return c.errAt(lineOf(c.v.src, "match", k), "expect.match."+k, "%s events have no field %q (fields: %s)",
				kind, k, strings.Join(EventKinds[kind], ", "))
		}
	}
	return nil
}

func sortedKinds() []string {
	out := make([]string, 0, len(EventKinds))
	for k := range EventKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkAfter verifies that every expectation's `after` names a fault of the
// plan; it runs once fault ids are assigned.
func checkAfter(v *Variant, p *Plan) error {
	faults := map[string]FaultSpec{}
	var known []string
	for _, f := range p.Faults {
		faults[f.ID] = f
		known = append(known, f.ID)
	}
	nodes := map[string]bool{HubName: true}
	for _, n := range p.Nodes {
		nodes[n.Name] = true
	}
	for _, f := range p.Faults {
		if f.Kind == FaultSchemaConflict {
			nodes[f.Name] = true
		}
	}
	c := checker{v}
	for _, e := range p.Expect {
		a := e.After
		switch {
		case a == "" || a == AfterStart || a == AfterStop:
		case strings.HasSuffix(a, EndSuffix):
			f, ok := faults[strings.TrimSuffix(a, EndSuffix)]
			if !ok {
				return c.errf("expect.after", a, "no fault with id %q (faults: %s)", strings.TrimSuffix(a, EndSuffix), strings.Join(known, ", "))
			}
			if !f.Ends() {
				return c.errf("expect.after", a, "fault %q has no end (a broker_restart, or a pause, link_delay, link_reset or partition with a duration, has one)", f.ID)
			}
		case strings.HasSuffix(a, ReadySuffix):
			if !nodes[strings.TrimSuffix(a, ReadySuffix)] {
				return c.errf("expect.after", a, "no node %q to be ready", strings.TrimSuffix(a, ReadySuffix))
			}
		default:
			if _, ok := faults[a]; !ok {
				return c.errf("expect.after", a, "no fault with id %q (faults: %s; or start, stop, FAULT:end, NODE:ready)", a, strings.Join(known, ", "))
			}
		}
	}
	return nil
}

// checkEnum normalises *v to its canonical spelling, or reports it.
func checkEnum[T ~string](c checker, key string, v *T, what string, allowed []string) error {
	if *v == "" {
		return nil
	}
	for _, a := range allowed {
		if strings.EqualFold(string(*v), a) {
			*v = T(a)
			return nil
		}
	}
	return c.errf(key, string(*v), "unknown %s %q (want one of %s)", what, string(*v), strings.Join(allowed, ", "))
}

func (c checker) checkSignal(key string, s *Signal) error {
	if *s == "" {
		return nil
	}
	if _, err := chaos.ParseSignal(string(*s)); err != nil {
		return c.errf(key, string(*s), "%v", err)
	}
	*s = Signal(strings.TrimPrefix(strings.ToUpper(string(*s)), "SIG"))
	return nil
}

func (c checker) checkNodeEnums(key string, n *NodeSpec) error {
	if err := checkEnum(c, key+".pattern", &n.Pattern, "pattern", patterns); err != nil {
		return err
	}
	if err := checkEnum(c, key+".policy", &n.Policy, "policy", policies); err != nil {
		return err
	}
	return checkEnum(c, key+".exit", &n.Exit, "exit mode", exitModes)
}

func (c checker) checkFaultEnums(f *FaultSpec) error {
	if err := checkEnum(c, "faults.kind", &f.Kind, "fault kind", FaultKinds); err != nil {
		return err
	}
	if err := checkEnum(c, "faults.slot", &f.Slot, "slot choice", slotPicks); err != nil {
		return err
	}
	if err := checkEnum(c, "faults.control", &f.Control, "control target", chaos.ControlTargets); err != nil {
		return err
	}
	return c.checkSignal("faults.signal", &f.Signal)
}
