package scenario

// A scenario without a hub: `[hub] enabled = false`. No broker process runs;
// producers and consumers find each other through discovery records in a
// directory of the run (plh-node --discovery-dir, backlog B-5) and talk over
// their peer links. Omitting [hub] still means a hub with its defaults.
//
// What needs a broker is refused at validation: any other [hub] key, [[hosts]],
// faults aimed at the hub or the broker link (broker_restart, schema_conflict
// (its intruder registers through the broker), link_delay, link_reset,
// partition, heal, host_kill) and expectations on node "hub". Resolution turns
// off the invariants about the hub (registry_matches, hub_resources_return,
// hub_resources_steady) with the reason "no hub", and the hub has no exit to
// judge.

// noHubFaults are the fault kinds that need the hub.
var noHubFaults = map[FaultKind]bool{FaultBrokerRestart: true, FaultSchemaConflict: true, FaultLinkDelay: true,
	FaultLinkReset: true, FaultPartition: true, FaultHeal: true, FaultHostKill: true}

// hubInvariants are the invariants about the hub process or its registry.
var hubInvariants = []string{"registry_matches", "hub_resources_return", "hub_resources_steady"}

// noHubReason is the reason the invariants about the hub are turned off.
const noHubReason = "no hub ([hub] enabled = false)"

// Off reports whether the scenario runs without a hub (enabled = false).
func (h HubSpec) Off() bool { return h.Enabled != nil && !*h.Enabled }

// checkNoHub refuses, in a scenario without a hub, what needs one.
func (c checker) checkNoHub() error {
	s := c.v.Scenario
	if s.Hub == nil || !s.Hub.Off() {
		return nil
	}
	h := *s.Hub
	if h.ChannelTimeout != 0 || h.ConsumerTimeout != 0 || len(h.Args) > 0 || h.Exit != "" || h.Host != "" {
		return c.errf("hub.enabled", "false", "[hub] enabled = false takes no other [hub] key")
	}
	if len(s.Hosts) > 0 {
		return c.errf("hosts", "", "[[hosts]] needs the hub ([hub] enabled = false)")
	}
	for _, f := range s.Faults {
		if noHubFaults[f.Kind] || f.Target == HubName {
			return c.errf("faults.kind", string(f.Kind), "fault %s%s needs the hub ([hub] enabled = false)", f.Kind, targetText(f.Target))
		}
	}
	for _, r := range s.RandomFaults {
		for _, k := range r.Kinds {
			if noHubFaults[k] {
				return c.errf("random_faults.kinds", string(k), "fault %s needs the hub ([hub] enabled = false)", k)
			}
		}
		for _, t := range r.Targets {
			if t == HubName {
				return c.errf("random_faults.targets", t, "no hub to target ([hub] enabled = false)")
			}
		}
	}
	for _, e := range s.Expect {
		if e.Node == HubName {
			return c.errf("expect.node", e.Node, "expectation %q: no hub runs ([hub] enabled = false)", e.Name)
		}
	}
	return nil
}

func targetText(t string) string {
	if t == "" {
		return ""
	}
	return " on " + t
}

// noHubDefaults turns off, in a plan without a hub, what judges the hub.
func noHubDefaults(p *Plan) {
	if !p.Hub.Off() {
		return
	}
	p.Hub.Exit = ExitAny
	inv := make(map[string]InvariantSpec, len(p.Invariants)+len(hubInvariants))
	for k, v := range p.Invariants {
		inv[k] = v
	}
	for _, name := range hubInvariants {
		if inv[name].Off == "" {
			inv[name] = InvariantSpec{Off: noHubReason}
		}
	}
	p.Invariants = inv
}
