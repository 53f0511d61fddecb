package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/sim/scenario"
)

// Hosts. A plan with [[hosts]] runs every process on a simulated machine: the
// engine makes one chaos.Net per run (its bridge and one host per [[hosts]]
// entry) before the hub starts, and closes it after every process ended.
// The janitor learns the init process group of every host and the Net's id,
// so a killed engine leaves no namespace (they die with their init) and no
// link (SweepLinks). A process runs on its host through Host.Argv (nsenter);
// the hub binds tcp://HOSTADDR:0 and a producer its peer endpoint on its
// host's address, so the others reach them across the bridge; a node's link
// proxy (link_delay, link_reset) lives inside the node's host
// (chaos.NewProxyOn). Faults between hosts are rows of faultTable:
// partition (blackhole routes, healed at fault_end when it has a duration),
// heal, host_kill (chaos.Net.PowerCut).

// startHosts makes the plan's hosts (none: nothing to do).
func (r *run) startHosts() error {
	if len(r.plan.Hosts) == 0 {
		return nil
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	n, err := chaos.NewNet(hex.EncodeToString(b[:]))
	if err != nil {
		return fmt.Errorf("%w: hosts: %v", ErrHarness, err)
	}
	r.sup.janitor.add("net", n.ID())
	r.mu.Lock()
	r.net = n
	r.mu.Unlock()
	// logs/hosts.log says which links and inits are the run's.
	f, err := os.Create(filepath.Join(r.dir, "logs", HostsLog))
	if err != nil {
		return fmt.Errorf("%w: hosts: %v", ErrHarness, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "net %s bridge %s\n", n.ID(), n.Bridge())
	start := time.Now()
	for _, h := range r.plan.Hosts {
		host, err := n.AddHost(h.Name, h.Bandwidth, func(pgid int) { r.sup.janitor.add("pgid", fmt.Sprint(pgid)) })
		if err != nil {
			return fmt.Errorf("%w: hosts: %v", ErrHarness, err)
		}
		fmt.Fprintf(f, "host %s addr %s init_pid %d\n", host.Name, host.Addr, host.InitPid())
	}
	fmt.Fprintf(f, "up %d host(s) in %v\n", len(r.plan.Hosts), time.Since(start).Round(time.Microsecond))
	return nil
}

// HostsLog is the file under a run folder's logs/ that names the run's net id,
// bridge and hosts (address, init pid) and how long they took to make.
const HostsLog = "hosts.log"

// closeHosts ends every host (and whatever still runs on one) and removes
// the links.
func (r *run) closeHosts() {
	r.mu.Lock()
	n := r.net
	r.mu.Unlock()
	if err := n.Close(); err != nil {
		r.log.Warn("hosts teardown", "err", err)
	}
}

// host returns the running host named name (nil: none, or no hosts).
func (r *run) host(name string) *chaos.Host {
	r.mu.Lock()
	n := r.net
	r.mu.Unlock()
	if n == nil || name == "" {
		return nil
	}
	return n.Host(name)
}

// onHost wraps argv to run on host name ("" or no hosts: unchanged).
func (r *run) onHost(name string, argv []string) []string {
	h := r.host(name)
	if h == nil {
		return argv
	}
	dir, err := os.Getwd()
	if err != nil {
		dir = "/"
	}
	return h.Argv(dir, argv)
}

// bindOn returns the endpoint to bind on host name: its address, any port;
// without hosts the machine's loopback.
func (r *run) bindOn(name string) string {
	if h := r.host(name); h != nil {
		return "tcp://" + h.Addr + ":0"
	}
	return "tcp://127.0.0.1:0"
}

// newProxy makes node n's link proxy: inside its host when it has one.
func (r *run) newProxy(n scenario.PlanNode, target string) (*chaos.Proxy, error) {
	if n.Host != "" && r.net != nil { // r.mu held by the caller (brokerFor)
		if h := r.net.Host(n.Host); h != nil {
			return chaos.NewProxyOn(h, target)
		}
	}
	return chaos.NewProxy(target)
}

func injectPartition(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	n, err := r.hostsNet()
	if err != nil {
		return "", err
	}
	d, err := n.Partition(f.Hosts, f.Peers, f.OneWay)
	return partitionDetail(d, f), err
}

func undoPartition(r *run, f scenario.FaultSpec) (string, error) {
	n, err := r.hostsNet()
	if err != nil {
		return "", err
	}
	return n.Heal(f.Hosts, f.Peers, f.OneWay)
}

func injectHeal(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	return undoPartition(r, f)
}

func injectHostKill(_ context.Context, r *run, f scenario.FaultSpec) (string, error) {
	n, err := r.hostsNet()
	if err != nil {
		return "", err
	}
	if err := n.PowerCut(f.Target); err != nil {
		return "", err
	}
	var killed []string
	for _, pn := range r.plan.Nodes {
		if pn.Host == f.Target {
			killed = append(killed, pn.Name)
		}
	}
	if r.plan.Hub.Host == f.Target {
		killed = append(killed, scenario.HubName)
	}
	return "power cut: link down, every process SIGKILLed (" + strings.Join(killed, ", ") + ")", nil
}

func partitionDetail(d string, f scenario.FaultSpec) string {
	way := "both ways"
	if f.OneWay {
		way = "one way"
	}
	return fmt.Sprintf("%s (%s)", d, way)
}

func (r *run) hostsNet() (*chaos.Net, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.net == nil {
		return nil, fmt.Errorf("the run has no hosts")
	}
	return r.net, nil
}
