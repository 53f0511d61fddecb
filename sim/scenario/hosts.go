package scenario

import (
	"regexp"
	"strings"

	"github.com/pylabhub/plh/chaos"
)

// HostSpec is one [[hosts]] entry: a simulated machine (a set of Linux
// namespaces made by the engine, chaos.Net). Nodes and the hub name theirs
// with host = "...".
type HostSpec struct {
	Name string `toml:"name"`
	// Bandwidth limits the host's link in each direction (tc rate syntax:
	// "100mbit", "10mbps"); "" = none.
	Bandwidth string `toml:"bandwidth,omitempty"`
}

var (
	hostNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)
	bandwidthRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([kmgt]?(bit|bps))$`)
)

// checkHosts checks [[hosts]] and every host key: names unique and usable as
// hostnames; with hosts, the hub and every node name a declared host (without,
// none may); a consumer may not ask for shared memory on another host than
// its channel's producer (a segment is host-local: a remote consumer uses the
// socket data path); kill_holding_lock is refused on a host (the segment's
// lock holder pids belong to the host's pid namespace).
func (c checker) checkHosts() error {
	s := c.v.Scenario
	known := map[string]bool{}
	for _, h := range s.Hosts {
		if !hostNameRE.MatchString(h.Name) {
			return c.errf("hosts.name", h.Name, "host name %q: letters, digits and '-', at most 32", h.Name)
		}
		if known[h.Name] {
			return c.errf("hosts.name", h.Name, "host %q declared twice", h.Name)
		}
		known[h.Name] = true
		if h.Bandwidth != "" && !bandwidthRE.MatchString(strings.ToLower(h.Bandwidth)) {
			return c.errf("hosts.bandwidth", h.Bandwidth, "host %q: bandwidth %q: want a tc rate such as \"100mbit\" or \"10mbps\"", h.Name, h.Bandwidth)
		}
	}
	if len(s.Hosts) > chaos.MaxHosts {
		return c.errf("hosts", "", "at most %d hosts", chaos.MaxHosts)
	}
	check := func(key, who, host string) error {
		switch {
		case len(known) == 0 && host != "":
			return c.errf(key, host, "%s names host %q but the scenario declares no [[hosts]]", who, host)
		case len(known) > 0 && host == "":
			return c.errf(key, "", "%s needs host = \"...\" (the scenario declares [[hosts]]: every node and the hub run on one)", who)
		case len(known) > 0 && !known[host]:
			return c.errf(key, host, "%s: unknown host %q", who, host)
		}
		return nil
	}
	hubHost := ""
	if s.Hub != nil {
		hubHost = s.Hub.Host
	}
	if err := check("hub.host", "the hub", hubHost); err != nil {
		return err
	}
	producerHost := map[string]string{}
	for _, n := range s.Producers {
		if err := check("producers.host", "producer "+n.Name, n.Host); err != nil {
			return err
		}
		producerHost[n.Channel] = n.Host
	}
	for _, n := range s.Consumers {
		if err := check("consumers.host", "consumer "+n.Name, n.Host); err != nil {
			return err
		}
		if ph, ok := producerHost[n.Channel]; ok && ph != n.Host && n.Shm != nil && *n.Shm {
			return c.errAt(lineAfter(c.v.src, "name", n.Name, "shm"), "consumers.shm", "consumer %s on host %q asks for shared memory of channel %q, whose producer is on host %q: "+
				"shared memory is host-local, a remote consumer uses the socket data path (shm = false)", n.Name, n.Host, n.Channel, ph)
		}
	}
	if len(known) > 0 {
		for _, f := range s.Faults {
			if f.Kind == FaultKillHoldingLock {
				return c.errf("faults.kind", string(f.Kind), "kill_holding_lock is not available with [[hosts]] (lock holder pids belong to the host's pid namespace)")
			}
		}
	}
	return nil
}

// lineAfter returns the first line setting key2 after the line where key is
// set to val (the shm line of one node); 0 when not found.
func lineAfter(src []byte, key, val, key2 string) int {
	for _, from := range linesOf(src, key, `"`+val+`"`) {
		if from == 0 {
			break
		}
		rest := strings.Join(strings.Split(string(src), "\n")[from:], "\n")
		if l := lineOf([]byte(rest), key2, ""); l > 0 {
			return from + l
		}
	}
	return 0
}

// checkHostFault checks partition, heal (hosts and peers: declared hosts) and
// host_kill (target: a declared host).
func (c checker) checkHostFault(f FaultSpec, key string) error {
	known := map[string]bool{}
	for _, h := range c.v.Scenario.Hosts {
		known[h.Name] = true
	}
	if len(known) == 0 {
		return c.errf(key+".kind", string(f.Kind), "%s needs [[hosts]]", f.Kind)
	}
	if f.Kind == FaultHostKill {
		if !known[f.Target] {
			return c.errf(key+".target", f.Target, "host_kill: target %q is not a declared host", f.Target)
		}
		return nil
	}
	if len(f.Hosts) == 0 || len(f.Peers) == 0 {
		return c.errf(key+".hosts", "", "%s needs hosts and peers (the two groups of hosts)", f.Kind)
	}
	for _, h := range append(append([]string(nil), f.Hosts...), f.Peers...) {
		if !known[h] {
			return c.errf(key+".hosts", h, "%s: unknown host %q", f.Kind, h)
		}
	}
	return nil
}

// remoteReader reports whether n is a consumer on another host than a
// producer of its channel: it gets no shared-memory default.
func remoteReader(p *Plan, n *PlanNode) bool {
	if n.Role != "consumer" || len(p.Hosts) == 0 {
		return false
	}
	for _, o := range p.Nodes {
		if o.Role == "producer" && o.Channel == n.Channel && o.Host != n.Host {
			return true
		}
	}
	return false
}

// hostKilledExits makes every node on host (and the hub, if there) expected
// to die by a signal, unless its exit is set.
func hostKilledExits(p *Plan, host string) {
	for i := range p.Nodes {
		if p.Nodes[i].Host == host {
			defaultExit(p, p.Nodes[i].Name, ExitKilled)
		}
	}
	if p.Hub.Host == host && p.Hub.Exit == "" {
		p.Hub.Exit = ExitKilled
	}
}
